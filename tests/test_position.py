"""Position bias (first-shown share and its exact test) and the headline sentences built on it."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from hvae.analysis.headline import headline_lines
from hvae.analysis.position import first_position_p_value, poisson_binomial_pmf, position_bias


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_poisson_binomial_pmf_matches_enumeration(probabilities):
    p = np.array(probabilities)
    expected = np.zeros(len(p) + 1)
    for outcome in itertools.product([0, 1], repeat=len(p)):
        o = np.array(outcome)
        expected[o.sum()] += np.prod(np.where(o == 1, p, 1 - p))
    np.testing.assert_allclose(poisson_binomial_pmf(p), expected, atol=1e-12)


def test_p_value_equals_the_binomial_test_for_one_menu_size():
    p = np.full(40, 1 / 9)
    for successes in (0, 4, 12, 40):
        assert first_position_p_value(successes, p) == pytest.approx(binomtest(successes, 40, 1 / 9).pvalue)


def test_p_value_with_mixed_menu_sizes_by_enumeration():
    p = np.array([1 / 2, 1 / 3, 1 / 9, 1 / 9])
    pmf = poisson_binomial_pmf(p)
    for s in range(5):
        assert first_position_p_value(s, p) == pytest.approx(pmf[pmf <= pmf[s] * (1 + 1e-9)].sum())


def _decisions(positions, sizes, valid=None, group="g"):
    options = ["|".join(["1,1"] * k) for k in sizes]
    return pd.DataFrame({
        "group": group, "chosen_position": positions, "options_shown": options,
        "valid": True if valid is None else valid,
    })


def test_position_bias_counts_valid_decisions_only():
    frame = _decisions([0, 0, 0, 3, 0, 1], [9, 9, 9, 9, 2, 2], valid=[True, True, True, True, False, True])
    [row] = position_bias(frame, ["group"]).to_dict("records")
    assert row["n_valid"] == 5
    assert row["first_share"] == pytest.approx(3 / 5)
    assert row["first_expected"] == pytest.approx((4 / 9 + 1 / 2) / 5)
    assert 0 < row["p_value"] < 1


def test_an_always_first_chooser_is_flagged_and_a_uniform_one_is_not():
    rng = np.random.default_rng(0)
    always = _decisions([0] * 60, [9] * 60, group="always")
    uniform = _decisions(rng.integers(0, 9, 60), [9] * 60, group="uniform")
    bias = position_bias(pd.concat([always, uniform]), ["group"]).set_index("group")
    assert bias.loc["always", "first_share"] == 1.0 and bias.loc["always", "p_value"] < 1e-20
    assert bias.loc["uniform", "p_value"] > 0.01


def _groups():
    return pd.DataFrame({
        "group": ["o", "r", "l1", "l2"], "decider": ["oracle", "random", "llm", "llm"], "n_agents": [1, 2, 2, 2],
        "decision_vr": [1.0, 0.5, 0.4, 0.6], "chance_vr": [0.5, 0.5, 0.5, 0.5],
    })


def test_headline_names_ceiling_chance_and_position_bias():
    bias = pd.DataFrame({"group": ["l1", "l2"], "n_valid": [10, 30], "first_share": [1.0, 0.5],
                         "first_expected": [1 / 9, 1 / 9], "p_value": [1e-9, 1e-6]})
    lines = headline_lines(_groups(), bias)
    assert lines[0].startswith("Ceiling") and "decision VR 1.000" in lines[0]
    assert lines[1].startswith("Chance") and "0.500" in lines[1]
    assert "decision VR 0.500 (chance 0.500" in lines[2]  # pooled over the two LLM groups by agents
    assert "62% of 40 valid decisions" in lines[2] and "11%" in lines[2] and "drives" in lines[2]


def test_headline_does_not_claim_bias_without_evidence():
    bias = pd.DataFrame({"group": ["l1", "l2"], "n_valid": [10, 10], "first_share": [0.1, 0.2],
                         "first_expected": [1 / 9, 1 / 9], "p_value": [0.9, 0.4]})
    assert "drives" not in headline_lines(_groups(), bias)[2]


def test_a_bias_free_value_follower_is_not_flagged_and_a_biased_one_is():
    # issue 19 item 5: a value-following chooser without a position preference, slider items shown
    # in order or reversed: the 1/k test calls it biased, the display-adjusted test does not
    from hvae.agents.svo import PRIMARY_ITEMS

    rng = np.random.default_rng(19)
    rows = []
    for bias in (0.0, 3.0):
        for r in range(120):
            for item, menu in enumerate(np.asarray(PRIMARY_ITEMS, dtype=float)):
                order = list(range(9)) if r % 2 == 0 else list(range(8, -1, -1))
                logits = 0.5 * (np.cos(np.radians(30)) * menu[:, 0] + np.sin(np.radians(30)) * menu[:, 1])
                logits[order[0]] += bias
                p = np.exp(logits - logits.max())
                choice = int(rng.choice(9, p=p / p.sum()))
                rows.append({"group": f"bias{bias:g}", "menu_id": f"slider{item + 1}", "choice": choice,
                             "value_angle": 30.0, "shown_order": ",".join(map(str, order)),
                             "chosen_position": order.index(choice), "options_shown": "|".join(["1,1"] * 9),
                             "valid": True})
    table = position_bias(pd.DataFrame(rows), ["group"]).set_index("group")
    free, biased = table.loc["bias0"], table.loc["bias3"]
    assert free["adjusted"] and free["first_chance"] == pytest.approx(1 / 9)
    assert free["chance_p_value"] < 1e-3 and free["first_share"] > 0.2  # 1/k calls it biased
    assert free["p_value"] > 0.01 and abs(free["first_share"] - free["first_expected"]) < 0.05
    assert biased["p_value"] < 1e-6 and biased["first_share"] > biased["first_expected"]


@pytest.mark.parametrize(("n", "values"), [
    (2500, [0.05, 0.11, 0.3, 0.5, 0.62, 0.9, 0.0, 1.0]),  # just past the exact limit
    (6000, [1 / 9, 0.2, 0.45, 0.8]),
    (4000, [0.001, 0.002, 0.999]),  # a narrow distribution: the transform's window wraps
    (3000, [0.0, 1.0]),  # no variance at all
])
def test_large_poisson_binomial_matches_the_exact_convolution(n, values) -> None:
    """Past EXACT_TRIALS the pmf comes from the characteristic function on a window; it must agree
    with trial-by-trial convolution to about 1e-12, and so must every two-sided p-value."""
    from hvae.analysis.position import EXACT_TRIALS, poisson_binomial_pmf

    assert n > EXACT_TRIALS
    p = np.random.default_rng(n).choice(values, n)
    exact = np.array([1.0])
    for q in p:
        exact = np.convolve(exact, [1.0 - q, q])
    fast = poisson_binomial_pmf(p)
    assert fast.shape == exact.shape and fast.min() >= 0 and abs(fast.sum() - 1) < 1e-12
    assert np.abs(fast - exact).max() < 5e-12
    for s in range(0, n + 1, n // 200):
        p_exact = exact[exact <= exact[s] * (1 + 1e-9)].sum()
        p_fast = fast[fast <= fast[s] * (1 + 1e-9)].sum()
        assert abs(p_exact - p_fast) < 5e-12
