"""Revealed-angle estimator: synthetic logit choosers are recovered at the advertised rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae.agents import svo
from hvae.analysis.revealed import fit_revealed_angle, revealed_angles
from hvae.simulation.menus import ring_schedule, slider_schedule

RING = [m.options for m in ring_schedule(24, 2).menus]
SLIDER = [m.options for m in slider_schedule().menus]


def logit_choices(theta: float, beta: float, menus: list[np.ndarray], n: int, rng: np.random.Generator):
    options = [menus[i % len(menus)] for i in range(n)]
    choices = []
    for menu in options:
        u = svo.menu_utilities(theta, menu)
        p = np.exp(beta * (u - u.max()))
        choices.append(rng.choice(len(menu), p=p / p.sum()))
    return options, np.array(choices)


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
