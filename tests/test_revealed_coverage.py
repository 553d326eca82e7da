"""Revealed angle (issue 19 item 1): exact choosers are covered by their consistency set, the set is
exact, and the first-position term keeps a position-biased chooser's angle honest.

Every check computes its expectation on its own: a brute-force grid of angles for the consistency
set, an exact maximiser with random tie-breaks and a logit chooser written here for the data, and
scipy's general-purpose optimiser for the maximum likelihood.
"""

from __future__ import annotations

import numpy as np
import pytest

from hvae.agents import svo
from hvae.agents.revealed import consistency_set, fit_choice_model, fit_revealed_angle
from hvae.simulation.menus import ring_schedule, slider_schedule

SLIDER = [m.options for m in slider_schedule().menus]
RING = [m.options for m in ring_schedule(24, 2).menus]
RING3 = [m.options for m in ring_schedule(24, 3).menus]


def exact_choices(theta: float, menus: list[np.ndarray], agents: int, rounds: int, rng: np.random.Generator):
    """An exact maximiser per agent: every best option (within 1e-9 of the maximum) equally likely."""
    options, choices = [], []
    for _ in range(agents):
        for r in range(rounds):
            menu = menus[r % len(menus)]
            u = np.cos(np.radians(theta)) * menu[:, 0] + np.sin(np.radians(theta)) * menu[:, 1]
            best = np.flatnonzero(u >= u.max() - 1e-9 * max(1.0, abs(u.max())))
            options.append(menu)
            choices.append(int(rng.choice(best)))
    return options, np.array(choices)


def logit_with_display(theta: float, beta: float, bias: float, menus: list[np.ndarray], n: int,
                       rng: np.random.Generator):
    """A logit chooser with a bonus ``bias`` for the option shown first, half the displays reversed."""
    options, choices, first = [], [], []
    for i in range(n):
        menu = menus[i % len(menus)]
        top = 0 if (i // len(menus)) % 2 == 0 else len(menu) - 1
        logits = beta * (np.cos(np.radians(theta)) * menu[:, 0] + np.sin(np.radians(theta)) * menu[:, 1])
        logits[top] += bias
        p = np.exp(logits - logits.max())
        options.append(menu)
        choices.append(int(rng.choice(len(menu), p=p / p.sum())))
        first.append(top)
    return options, np.array(choices), np.array(first)


def brute_force_set(options: list[np.ndarray], choices: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Grid angles at which every choice is within 1e-9 (relative) of its menu's best utility."""
    ok = np.ones(grid.size, dtype=bool)
    for menu, c in zip(options, choices):
        u = np.outer(np.cos(np.radians(grid)), menu[:, 0]) + np.outer(np.sin(np.radians(grid)), menu[:, 1])
        top = u.max(axis=1)
        ok &= u[:, c] >= top - 1e-9 * np.maximum(1.0, np.abs(top))
    return ok


def inside(pieces: list[tuple[float, float]], angles: np.ndarray, margin: float = 0.0) -> np.ndarray:
    return np.array([any(lo - margin <= a <= hi + margin for lo, hi in pieces) for a in angles])


@pytest.mark.parametrize("seed", range(12))
def test_consistency_set_matches_a_brute_force_grid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    menus = [rng.integers(0, 20, size=(rng.integers(2, 5), 2)).astype(float) for _ in range(6)]
    theta = rng.uniform(-90, 90)
    n = int(rng.integers(1, 8))
    options = [menus[int(rng.integers(len(menus)))] for _ in range(n)]
    # half the cases: an exact chooser (a non-empty set); the others: random choices (often empty)
    choices = np.array([int(rng.choice(svo.best_options(theta, m))) if seed % 2 else int(rng.integers(len(m)))
                        for m in options])
    grid = np.linspace(-90, 90, 36001)  # 0.005° steps
    truth = brute_force_set(options, choices, grid)
    pieces = consistency_set(options, choices)
    claimed = inside(pieces, grid)
    # away from the ends (one grid step), the exact set and the brute force agree everywhere
    near_end = np.array([any(abs(g - e) <= 0.006 for piece in pieces for e in piece) for g in grid])
    assert (claimed[~near_end] == truth[~near_end]).all()
    if seed % 2:
        assert inside(pieces, np.array([theta]), 1e-6).all()


def test_consistency_set_at_tie_angles_is_exact() -> None:
    # slider item 5 at 45°: C (88, 63) and G (63, 88) tie; seeing both pins the angle to 45° exactly
    item5 = SLIDER[4]
    (low, high), = consistency_set([item5, item5], np.array([2, 6]))
    assert (low, high) == pytest.approx((45.0, 45.0), abs=1e-5)
    # only C: every angle where C beats or ties every other option of item 5 (C vs G gives θ ≤ 45°;
    # C vs A (100, 50) gives tan θ ≥ 12/13, tighter than C vs B (94, 56), tan θ ≥ 6/7)
    (low, high), = consistency_set([item5], np.array([2]))
    assert low == pytest.approx(np.degrees(np.arctan2(12, 13)), abs=1e-5) and high == pytest.approx(45.0, abs=1e-5)
    # slider item 1 at 0°: every option has 85 for self; a middle option is best only at exactly 0°
    (low, high), = consistency_set([SLIDER[0]], np.array([4]))
    assert (low, high) == pytest.approx((0.0, 0.0), abs=1e-5)
    # keeping all (θ ≤ atan(4/6)) and giving all (θ ≥ atan(6/4)) with the split (6, 6) on offer: no angle
    split = np.array([[10.0, 0.0], [6.0, 6.0], [0.0, 10.0]])
    assert consistency_set([split, split], np.array([0, 2])) == []
    (low, high), = consistency_set([split], np.array([0]))
    assert low == -90.0 and high == pytest.approx(np.degrees(np.arctan2(4, 6)), abs=1e-5)
    # options equal for both players: every angle
    assert consistency_set([np.array([[5.0, 5.0], [5.0, 5.0]])], np.array([1])) == [(-90.0, 90.0)]


@pytest.mark.parametrize("agents", [1, 2, 3, 4])
@pytest.mark.parametrize(("theta", "menus"), [(0.0, "slider"), (45.0, "slider"), (7.5, "ring"), (52.5, "ring"),
                                              (-37.5, "ring"), (15.0, "ring3")])
def test_exact_choosers_at_tie_angles_are_always_covered(theta: float, menus: str, agents: int) -> None:
    # the review measured 0.76 (slider 0°, 1 agent), 0.75 (slider 45°, 3 agents) and 0.00 (ring 7.5°
    # and 52.5°, 3 agents). An exact maximiser's choices are all best at its angle, so its consistency
    # set contains the angle every time: coverage 1, whatever the tie-breaks
    rng = np.random.default_rng(int(abs(theta) * 10) + agents)
    pool = {"slider": SLIDER, "ring": RING, "ring3": RING3}[menus]
    for _ in range(15):
        options, choices = exact_choices(theta, pool, agents, 2 * len(pool), rng)
        fit = fit_revealed_angle(options, choices)
        assert fit.consistent and fit.identification in ("point", "set")
        assert fit.ci_low <= theta <= fit.ci_high, (fit, theta)


def test_a_single_zero_degree_oracle_is_not_labelled_by_the_beta_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    # the quickstart's oracle_individualistic: label and set do not depend on how far β may go
    import hvae.agents.revealed as revealed

    options, choices = exact_choices(0.0, SLIDER, 1, 12, np.random.default_rng(4))
    fits = []
    for scale in (50.0, 500.0, 5000.0):
        monkeypatch.setattr(revealed, "BETA_SCALE", scale)
        fits.append(fit_revealed_angle(options, choices))
    assert len({f.identification for f in fits}) == 1 and all(f.pieces == fits[0].pieces for f in fits)
    assert all(f.ci_low <= 0.0 <= f.ci_high for f in fits)


@pytest.mark.parametrize(("theta", "beta", "bias"), [(0.0, 2.0, 0.0), (0.0, 2.0, 2.0), (-45.0, 2.0, 0.0),
                                                   pytest.param(30.0, 0.3, 1.0, marks=pytest.mark.slow)])
def test_logit_choosers_with_position_bias_are_covered(theta: float, beta: float, bias: float) -> None:
    # the review measured 0.75 (β = 2 on the slider) and 0.54 (with a position bias); at −45° a β = 2
    # chooser's occasional near-best choice is often explained exactly by one wrong angle (the
    # consistency set alone covered 0.42 of 60 draws): the likelihood set joined to it covers
    rng = np.random.default_rng(int(abs(theta)) + int(10 * bias))
    draws, covered = 80, 0
    for _ in range(draws):
        options, choices, first = logit_with_display(theta, beta, bias, SLIDER, 36, rng)
        fit = fit_revealed_angle(options, choices, first)
        covered += fit.identification == "none" or fit.ci_low <= theta <= fit.ci_high
    tolerance = 3 * np.sqrt(0.95 * 0.05 / draws)  # three binomial standard errors
    assert covered / draws >= 0.95 - tolerance, covered / draws


def test_position_term_removes_the_bias_of_the_angle() -> None:
    # a chooser at 20° with a strong bonus for the first option, half the displays reversed: without
    # the term the fit drifts; with it the interval covers 20° and b is recovered
    rng = np.random.default_rng(8)
    options, choices, first = logit_with_display(20.0, 0.3, 2.0, SLIDER, 1200, rng)
    fit = fit_revealed_angle(options, choices, first)
    assert fit.identification == "point" and fit.ci_low <= 20.0 <= fit.ci_high
    assert fit.position == pytest.approx(2.0, abs=0.3)


def test_choice_model_fit_is_the_maximum_likelihood() -> None:
    from scipy.optimize import minimize

    rng = np.random.default_rng(9)
    options, choices, first = logit_with_display(25.0, 0.4, 1.5, SLIDER, 240, rng)
    fit = fit_choice_model(options, choices, first)

    def negative_ll(params: np.ndarray) -> float:
        theta, beta, bias = params
        total = 0.0
        for menu, c, top in zip(options, choices, first):
            logits = beta * (np.cos(np.radians(theta)) * menu[:, 0] + np.sin(np.radians(theta)) * menu[:, 1])
            logits[top] += bias
            m = logits.max()
            total += logits[c] - m - np.log(np.exp(logits - m).sum())
        return -total

    best = minimize(negative_ll, x0=[0.0, 0.1, 0.0], method="Nelder-Mead",
                    options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 20000, "maxfev": 20000})
    assert -best.fun <= fit.log_likelihood + 1e-6  # nothing scipy finds beats the fit
    assert fit.log_likelihood == pytest.approx(-negative_ll(np.array([fit.theta, fit.beta, fit.position])), abs=1e-6)
    assert fit.theta == pytest.approx(best.x[0], abs=0.2) and fit.position == pytest.approx(best.x[2], abs=0.05)
    # with b = 0 the position-free chooser: probabilities sum to 1 and ignore the display
    p = fit.probabilities(SLIDER[0], first=0, position=0.0)
    assert p.sum() == pytest.approx(1.0) and np.allclose(p, fit.probabilities(SLIDER[0], first=8, position=0.0))
