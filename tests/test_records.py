"""Per-round population figures: the vectorised Gini against a plain reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hvae.simulation.records import gini, grouped_gini


def reference_gini(values: np.ndarray) -> float:
    x = np.sort(values)
    if x.size == 0:
        return float("nan")
    if x[0] < 0:
        x = x - x[0]
    if x.sum() <= 0:
        return float("nan")
    n = x.size
    # mean absolute difference over all pairs / (2 * mean)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean()))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 1, 1, 1], 0.0), ([0, 0, 0, 4], 0.75), ([1, 2, 3, 4], 0.25), ([-1, -1, 3], 2 / 3)],
)
def test_gini_reference_table(values, expected) -> None:
    assert gini(np.array(values, float)) == pytest.approx(expected)


@given(
    # payoffs are amounts of coins: multiples of 0.01
    arrays(np.float64, st.integers(1, 40), elements=st.integers(-5000, 20000).map(lambda c: c / 100)),
    st.integers(0, 2**31),
)
@settings(max_examples=100, deadline=None)
def test_grouped_gini_matches_reference(values: np.ndarray, seed: int) -> None:
    key = np.random.default_rng(seed).integers(0, 4, size=values.size)
    result = grouped_gini(values, key, 5)
    expected = np.array([reference_gini(values[key == j]) for j in range(5)])
    np.testing.assert_allclose(result, expected, rtol=1e-7, atol=1e-9, equal_nan=True)


def test_coded_column_reads_as_the_list_it_codes() -> None:
    from hvae.agents.deciders import CodedColumn

    a = CodedColumn(np.array([1, 0, 1]), ["x", "y"])
    assert list(a) == ["y", "x", "y"] and a[0] == "y" and a[1:] == ["x", "y"] and len(a) == 3
    assert a == ["y", "x", "y"] and a != ["y", "x"] and a.take(np.array([2, 1])) == ["y", "x"]
    joined = CodedColumn.concat([a, None, CodedColumn(np.array([0, 0]), ["y"])], [3, 2, 2])
    assert joined.tolist() == ["y", "x", "y", None, None, "y", "y"] and len(joined.values) == 3
    with pytest.raises(ValueError, match="index"):
        CodedColumn(np.array([2]), ["x", "y"])


def test_round_figures_per_grouping_match_a_direct_computation_while_values_move() -> None:
    """The round table keeps each grouping's agents ordered by group between rounds; after the
    dynamics move values (categories change) every figure must still be the direct one."""
    from conftest import make_scenario

    from hvae.agents.svo import CATEGORY_ORDER, categories
    from hvae.simulation.model import HvaeModel

    model = HvaeModel(make_scenario(rounds=8, dynamics={"rule": "imitation", "every": 2, "strength": 3}))
    changed = False
    for _ in range(8):
        theta = model.state.theta.copy()  # the values the round's figures are taken with
        model.step()
        changed |= not np.array_equal(theta, model.state.theta)
        rows = model.log.round_rows().to_pandas()
        rows = rows[rows["round"] == model.round - 1].set_index(["grouping", "group"])
        payoff = model.state.cumulative_payoff
        keys = {"all": np.array(["all"] * payoff.size, dtype=object),
                "group": np.array(model.group_names, dtype=object)[model.state.group_code],
                "category": categories(theta)}
        decisions = model.log.decision_rows().to_pandas()
        decisions = decisions[decisions["round"] == model.round - 1]
        decided = np.zeros(payoff.size, dtype=bool)
        decided[decisions["agent_id"]] = True
        invalid = np.zeros(payoff.size, dtype=bool)
        invalid[decisions.loc[~decisions["valid"], "agent_id"]] = True
        for (grouping, name), row in rows.iterrows():
            members = keys[grouping] == name
            assert row["n_agents"] == members.sum()
            assert (row["n_decided"], row["n_invalid"]) == ((members & decided).sum(), (members & invalid).sum())
            assert row["mean_cumulative_payoff"] == pytest.approx(payoff[members].mean())
            assert row["gini_cumulative_payoff"] == pytest.approx(reference_gini(payoff[members]), nan_ok=True)
        present = {name for name in CATEGORY_ORDER if (keys["category"] == name).any()}
        assert set(rows.loc["category"].index) == present
    assert changed  # the dynamics did move values, so the kept order was rebuilt
