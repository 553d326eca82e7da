"""Revealed-angle estimator: synthetic logit choosers are recovered at the advertised rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae.agents import svo
from hvae.agents.revealed import fit_revealed_angle
from hvae.analysis.revealed import revealed_angles
from hvae.simulation.menus import ring_schedule, slider_schedule

RING = [m.options for m in ring_schedule(24, 2).menus]
SLIDER = [m.options for m in slider_schedule().menus]


def logit_choices(theta: float, beta: float, menus: list[np.ndarray], n: int, rng: np.random.Generator):
    """``n`` draws of a logit chooser P(c) ∝ exp(β·U_θ(c)), cycling through ``menus`` (Gumbel-max)."""
    options = [menus[i % len(menus)] for i in range(n)]
    choices = np.empty(n, dtype=np.int64)
    for m, menu in enumerate(menus):
        rows = np.arange(m, n, len(menus))
        u = svo.menu_utilities(theta, menu)
        gumbel = -np.log(-np.log(rng.random((rows.size, len(menu)))))
        choices[rows] = (beta * u[None, :] + gumbel).argmax(axis=1)
    return options, choices


@pytest.mark.slow
def test_interval_covers_the_true_angle_at_the_advertised_rate() -> None:
    rng = np.random.default_rng(20261127)
    draws, covered = 150, 0
    for _ in range(draws):
        theta, beta = rng.uniform(-90, 90), rng.uniform(0.2, 1.0)
        options, choices = logit_choices(theta, beta, RING, 96, rng)
        fit = fit_revealed_angle(options, choices)
        assert np.isfinite(fit.ci_low)  # 96 ring decisions always identify the angle
        covered += fit.ci_low <= theta <= fit.ci_high
    rate = covered / draws
    tolerance = 3 * np.sqrt(0.95 * 0.05 / draws)  # three binomial standard errors
    assert 0.95 - tolerance <= rate <= 1.0, rate


@pytest.mark.slow
def test_sharp_choosers_with_many_decisions_keep_an_interval_that_covers() -> None:
    # 1,920 slider decisions of a sharp logit chooser: the true 95% interval is narrower than the
    # 2° grid. It must keep a non-zero width and cover the true angle at the advertised rate, at
    # angles off the grid (45° is on it, 27° and -23° are not on the 2° grid's even degrees).
    rng = np.random.default_rng(20261128)
    fits = []
    for theta in (45.0, 27.0, -23.0):
        for beta in (0.5, 2.0):
            for _ in range(25):
                options, choices = logit_choices(theta, beta, SLIDER, 1920, rng)
                fits.append((theta, fit_revealed_angle(options, choices)))
    assert all(fit.identification == "point" for _, fit in fits)
    widths = np.array([fit.ci_high - fit.ci_low for _, fit in fits])
    assert (widths > 0).all() and widths.max() < 4
    assert all(fit.ci_low < fit.theta < fit.ci_high for _, fit in fits)
    rate = np.mean([fit.ci_low <= theta <= fit.ci_high for theta, fit in fits])
    tolerance = 3 * np.sqrt(0.95 * 0.05 / len(fits))
    assert rate >= 0.95 - tolerance, rate


def test_interval_ends_are_where_the_profile_crosses_the_threshold() -> None:
    # the defining property of the profile-likelihood interval, checked directly at both ends
    from hvae.agents.revealed import CHI2_95, _Profile

    rng = np.random.default_rng(11)
    options, choices = logit_choices(33.0, 1.5, SLIDER, 1200, rng)
    fit = fit_revealed_angle(options, choices)
    profile = _Profile([np.asarray(o, float) for o in options], choices)
    values, _ = profile.evaluate(np.array([fit.ci_low, fit.ci_high, fit.theta]))
    threshold = fit.log_likelihood - CHI2_95 / 2
    assert np.allclose(values[:2], threshold, atol=1e-3)
    assert values[2] == pytest.approx(fit.log_likelihood)


@given(st.floats(-85, 85), st.integers(0, 2**31 - 1))
@settings(max_examples=25, deadline=None)
def test_value_rational_choices_are_recovered(theta: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    options = [RING[i % 24] for i in range(72)]
    choices = np.array([rng.choice(svo.best_options(theta, menu)) for menu in options])
    fit = fit_revealed_angle(options, choices)
    # (an angle exactly on a decision boundary sits within the fine grid's 0.1 degree of an end)
    assert fit.ci_low - 0.1 <= theta <= fit.ci_high + 0.1
    assert abs(fit.theta - theta) <= 16  # the ring's 15° spacing bounds what choices can show
    assert fit.beta > 1


def test_random_chooser_has_low_beta() -> None:
    rng = np.random.default_rng(3)
    options = [SLIDER[i % 6] for i in range(60)]
    fit = fit_revealed_angle(options, rng.integers(0, 9, size=60))
    assert fit.beta < 0.1


def test_uninformative_decisions_are_unidentified() -> None:
    menu = np.array([[5.0, 5.0], [5.0, 5.0]])  # every option is the same for every value
    fit = fit_revealed_angle([menu] * 5, np.array([0, 1, 0, 1, 0]))
    assert np.isnan(fit.ci_low) and np.isnan(fit.ci_high)
    assert np.isnan(fit.theta) and fit.identification == "none"  # never "0 degrees"


def test_a_flat_likelihood_is_not_reported_as_zero_degrees() -> None:
    # alternately keep everything and give everything away, never the generous equal split (6, 6):
    # no angle explains both, β̂ = 0 at every angle, so the likelihood is flat in θ and no angle is
    # identified (never "0 degrees")
    menu = np.array([[10.0, 0.0], [6.0, 6.0], [0.0, 10.0]])
    fit = fit_revealed_angle([menu] * 12, 2 * (np.arange(12) % 2))
    assert fit.identification == "none" and np.isnan(fit.theta)


def test_always_the_equal_split_is_not_identified() -> None:
    # the equal split of a dictator menu is a best option only at 45° (where every option ties), so
    # its consistency set is that one angle; but a logit chooser's likelihood is flat in θ here (the
    # split is never the unique best), and the identified set is the union of both: not identified
    menu = np.array([[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]])
    fit = fit_revealed_angle([menu] * 12, np.ones(12, dtype=int))
    assert fit.consistent and fit.pieces[0][0] == pytest.approx(45.0, abs=1e-5)
    assert fit.identification == "none" and np.isnan(fit.theta)


def test_partially_identified_angles_are_sets() -> None:
    # an individualist oracle on dictator menus keeps everything: consistent with every angle below 45°
    menu = np.array([[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]])
    fit = fit_revealed_angle([menu] * 12, np.zeros(12, dtype=int))
    assert fit.identification == "set" and fit.ci_low == -90.0 and fit.ci_high == pytest.approx(45.0, abs=1e-5)
    # a competitive oracle on the slider: only bounded above
    options = [SLIDER[i % 6] for i in range(24)]
    choices = np.array([int(svo.best_options(-45.0, menu)[0]) for menu in options])
    fit = fit_revealed_angle(options, choices)
    assert fit.identification == "set" and fit.ci_low == -90.0 and fit.ci_high > -45


def test_revealed_text_shows_only_what_is_identified() -> None:
    from hvae.analysis.revealed import format_revealed

    assert format_revealed(45.0, 44.96, 45.04, "point") == "45.00 (44.96, 45.04)"
    assert format_revealed(45.0, 44.2, 45.7, "point") == "45.0 (44.2, 45.7)"
    assert format_revealed(-72.0, -90.0, -30.0, "set") == "bounded [-90.0, -30.0]"
    assert format_revealed(float("nan"), float("nan"), float("nan"), "none") == "n/i"
    assert format_revealed(-1e-7, -2e-6, 2e-6, "point") == "0.0 (exact)"  # never "-0.0"


def test_estimates_stay_in_the_legal_range() -> None:
    # always the most generous slider option: consistent with every angle above ~60 degrees
    options = [SLIDER[i % 6] for i in range(12)]
    choices = np.array([int(np.argmax(menu[:, 1])) for menu in options])
    fit = fit_revealed_angle(options, choices)
    assert 45 < fit.theta <= 90 and fit.ci_high == 90.0


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        fit_revealed_angle([], np.array([]))
    with pytest.raises(ValueError):
        fit_revealed_angle([np.array([[1.0, 2.0]])], np.array([3]))


def test_revealed_angles_per_group_from_tables() -> None:
    import pandas as pd

    rng = np.random.default_rng(5)
    rows, menu_rows = [], []
    for i, menu in enumerate(SLIDER):
        for j, (s, o) in enumerate(menu):
            menu_rows.append({"menu_id": f"slider{i + 1}", "option": j, "self": s, "other": o})
    for agent, theta in ((0, 60.0), (1, -30.0)):
        options, choices = logit_choices(theta, 1.0, SLIDER, 60, rng)
        for k, choice in enumerate(choices):
            rows.append({"agent_id": agent, "menu_id": f"slider{k % 6 + 1}", "choice": choice, "value_angle": theta})
    fits = revealed_angles(pd.DataFrame(rows), pd.DataFrame(menu_rows), ["agent_id"]).set_index("agent_id")
    assert fits.loc[0, "theta"] > 20 and fits.loc[1, "theta"] < 0
    assert fits.loc[0, "target_angle"] == 60.0 and fits.loc[1, "n"] == 60


def test_menus_are_the_same_however_they_are_passed() -> None:
    # the estimator converts each distinct menu once (shared objects are recognised by identity, then
    # merged by content): one shared array per menu, a fresh copy per decision, a 3-D array and
    # nested lists must all give exactly the same fit
    from hvae.agents.revealed import fit_at_angle, fit_choice_model

    rng = np.random.default_rng(2)
    options, choices = logit_choices(35.0, 0.3, RING, 240, rng)
    first = rng.integers(-1, 2, size=len(choices))
    forms = [options, [o.copy() for o in options], np.stack(options), [o.tolist() for o in options]]
    fits = [fit_revealed_angle(form, choices, first) for form in forms]
    assert fits[0].identification == "point" and all(f == fits[0] for f in fits[1:])
    models = [fit_choice_model(form, choices, first) for form in forms]
    assert all(m == models[0] for m in models[1:])
    at = [fit_at_angle(form, choices, first, 35.0) for form in forms]
    assert all(np.array_equal(a, b, equal_nan=True) for other in at[1:] for a, b in zip(at[0], other))


def test_identical_decisions_are_fitted_once_weighted_by_their_count() -> None:
    # reference: a dict over (menu bytes, shape, choice, first) in order of first appearance
    from hvae.agents.revealed import _Profile

    rng = np.random.default_rng(4)
    n = 400
    options = [RING[i] for i in rng.integers(0, 5, n)]
    choices = rng.integers(0, 2, n)
    first = rng.integers(-1, 2, n)
    unique: dict[tuple, int] = {}
    inverse, counts, picked, shown, menus = [], [], [], [], []
    for menu, c, f in zip(options, choices.tolist(), first.tolist()):
        key = (menu.tobytes(), menu.shape, c, f)
        if key not in unique:
            unique[key] = len(counts)
            counts.append(0.0)
            picked.append(c)
            shown.append(f)
            menus.append(menu)
        counts[unique[key]] += 1
        inverse.append(unique[key])
    profile = _Profile(options, choices, first)
    assert profile.inverse.tolist() == inverse and profile.weights.tolist() == counts
    assert profile.choices.tolist() == picked
    assert np.array_equal(profile.selfs, np.stack([m[:, 0] for m in menus]))
    assert np.array_equal(profile.flags.argmax(axis=1)[np.array(shown) >= 0], np.array(shown)[np.array(shown) >= 0])


def test_choices_and_first_options_outside_their_menu_are_refused() -> None:
    menu = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="choice lies outside"):
        fit_revealed_angle([menu, menu], np.array([0, -1]))
    with pytest.raises(ValueError, match="shown first lies outside"):
        fit_revealed_angle([menu, menu], np.array([0, 1]), np.array([-1, 2]))
    with pytest.raises(ValueError, match="differ in length"):
        fit_revealed_angle([menu, menu], np.array([0, 1]), np.array([0]))
