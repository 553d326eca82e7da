"""The surrogate policy (file format, units) and its choice model, against hand-computed logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hvae.agents.deciders import NO_CHOICE, DecisionRequest, History
from hvae.agents.revealed import ChoiceModelFit
from hvae.agents.surrogate import (
    PolicyError,
    PolicyUnit,
    SurrogateDecider,
    SurrogatePolicy,
    choice_probabilities,
    load_policy,
    value_key,
)

MENU = np.array([[10.0, 0.0], [6.0, 6.0], [0.0, 10.0]])


def test_probabilities_match_hand_computed_logits():
    theta, beta, b, rho, gave, first = 30.0, 0.4, 0.7, 1.5, 0.8, 2
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))
    generosity = [0.0, 0.6, 1.0]  # other amounts 0, 6, 10 on a range of 10
    logits = [beta * (c * x + s * y) + rho * g * gave for (x, y), g in zip(MENU, generosity)]
    logits[first] += b
    weights = [math.exp(v) for v in logits]
    expected = [w / sum(weights) for w in weights]
    got = choice_probabilities(np.array([theta]), np.array([beta]), np.array([b]), np.array([rho]), MENU,
                               np.array([first]), np.array([gave]))
    np.testing.assert_allclose(got[0], expected, rtol=1e-12)


@pytest.mark.parametrize("first", [-1, 0, 2])
def test_without_reciprocity_it_is_the_revealed_choice_model(first):
    fit = ChoiceModelFit(theta=-20.0, beta=0.25, position=1.3, log_likelihood=0.0, n=1)
    got = choice_probabilities(np.array([-20.0]), np.array([0.25]), np.array([1.3]), np.array([0.0]), MENU,
                               np.array([first]), np.array([0.9]))
    np.testing.assert_allclose(got[0], fit.probabilities(MENU, first), rtol=1e-12)


def test_per_decision_menus_equal_a_shared_menu_and_rows_are_independent():
    thetas, betas = np.array([0.0, 45.0, 90.0]), np.array([0.1, 0.5, 2.0])
    b, rho, gave, first = np.array([0.0, 1.0, -1.0]), np.array([0.0, 2.0, 1.0]), np.array([0.0, 0.5, 1.0]), np.array([-1, 0, 2])
    shared = choice_probabilities(thetas, betas, b, rho, MENU, first, gave)
    stacked = choice_probabilities(thetas, betas, b, rho, np.stack([MENU] * 3), first, gave)
    np.testing.assert_allclose(shared, stacked, rtol=1e-12)
    for i in range(3):
        one = choice_probabilities(thetas[i:i + 1], betas[i:i + 1], b[i:i + 1], rho[i:i + 1], MENU, first[i:i + 1], gave[i:i + 1])
        np.testing.assert_allclose(shared[i], one[0], rtol=1e-12)
    np.testing.assert_allclose(shared.sum(axis=1), 1.0)


def test_a_menu_that_gives_the_other_the_same_has_no_reciprocity_term():
    flat = np.array([[3.0, 5.0], [7.0, 5.0]])
    with_rho = choice_probabilities(np.array([10.0]), np.array([0.3]), np.array([0.0]), np.array([5.0]), flat, np.array([-1]), np.array([1.0]))
    without = choice_probabilities(np.array([10.0]), np.array([0.3]), np.array([0.0]), np.array([0.0]), flat, np.array([-1]), np.array([1.0]))
    np.testing.assert_allclose(with_rho, without)


def _policy(**overrides) -> SurrogatePolicy:
    data = {
        "by": "group",
        "units": {
            "llm": PolicyUnit(theta=40.0, beta=0.3, position=0.5, invalid_rate=0.1, n_decisions=600,
                              intervals={"theta": (35.0, 45.0), "beta": (0.2, 0.4)},
                              dropped={"reciprocity": "partners' gifts do not vary"}),
        },
        "provenance": {"run": "runs/x", "decisions": 600},
    }
    data.update(overrides)
    return SurrogatePolicy(**data)


def test_policy_file_round_trips(tmp_path):
    policy = _policy()
    path = tmp_path / "policy.yaml"
    policy.save(path)
    assert load_policy(path) == policy
    assert path.read_text().startswith("format: hvae-surrogate-policy/1\n")


def test_by_value_keys_are_canonical_angle_texts(tmp_path):
    assert [value_key(v) for v in (45.0, -22.5, 0.0, -0.0, 12.3456789)] == ["45", "-22.5", "0", "0", "12.345679"]
    policy = _policy(by="value", units={"45": PolicyUnit(theta=44.0, beta=1.0), "-45": PolicyUnit(theta=-40.0, beta=1.0)})
    assert policy.unit_for(theta=45.0).theta == 44.0
    assert policy.unit_for(theta=-45.0).theta == -40.0
    with pytest.raises(PolicyError, match="no unit for value '90'"):
        policy.unit_for(theta=90.0)
    path = tmp_path / "p.yaml"
    path.write_text("format: hvae-surrogate-policy/1\nby: value\nunits:\n  45: {theta: 44.0, beta: 1.0}\n  -22.5: {theta: 1.0, beta: 1.0}\n")
    assert set(load_policy(path).units) == {"45", "-22.5"}


def test_unit_for_each_kind_of_policy():
    group = _policy()
    assert group.unit_for(group="llm").beta == 0.3
    with pytest.raises(PolicyError, match="no unit for group 'other'"):
        group.unit_for(group="other")
    agents = _policy(by="agent", units={"7": PolicyUnit(theta=1.0, beta=2.0)})
    assert agents.unit_for(agent_id=7).beta == 2.0
    with pytest.raises(PolicyError, match="needs the agent"):
        agents.unit_for(group="llm")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("by: group\nunits: {a: {theta: 0, beta: 1}}\n", "not a surrogate policy file"),
        ("format: hvae-surrogate-policy/1\nby: group\nunits: {a: {theta: 100, beta: 1}}\n", "units.a.theta"),
        ("format: hvae-surrogate-policy/1\nunits: {a: {theta: 0, beta: .nan}}\n", "units.a.beta"),
        ("format: hvae-surrogate-policy/1\nunits: {a: {theta: 0, beta: 1, invalid_rate: 1.5}}\n", "units.a.invalid_rate"),
        ("format: hvae-surrogate-policy/1\nunits: {a: {theta: 0, beta: 1, position: 2, dropped: {position: why}}}\n", "position is dropped"),
        ("format: hvae-surrogate-policy/1\nfeatures: [utility]\nunits: {a: {theta: 0, beta: 1, position: 2}}\n", "not among the features"),
        ("format: hvae-surrogate-policy/1\nfeatures: [utility, charm]\nunits: {a: {theta: 0, beta: 1}}\n", "unknown term 'charm'"),
        ("format: hvae-surrogate-policy/1\nunits: {}\n", "at least one unit"),
        ("format: hvae-surrogate-policy/1\nunits: {a: {theta: 0, beta: 1}}\nunits: {b: {theta: 0, beta: 1}}\n", "duplicate key 'units'"),
        ("format: hvae-surrogate-policy/1\nunits: [\n", "YAML syntax error"),
        ("format: hvae-surrogate-policy/1\nby: value\nunits: {'45.0': {theta: 0, beta: 1}}\n", "write the angle as '45'"),
        ("format: hvae-surrogate-policy/1\nunits: {a: {theta: 0, beta: 1, intervals: {beta: [2, 1]}}}\n", "low <= high"),
        ("format: hvae-surrogate-policy/1\nunits: {a: {theta: 0, beta: 1, luck: 3}}\n", "units.a.luck"),
        ("format: hvae-surrogate-policy/1\nunits: {a: !!python/object:os.system {}}\n", "YAML syntax error"),
    ],
)
def test_bad_policy_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_and_unsafe_policy_files(tmp_path):
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="a folder"):
        load_policy(tmp_path)


# --------------------------------------------------------------------------- the decider


def _history(generosity: np.ndarray) -> History:
    n = generosity.shape[0]
    g = generosity.reshape(n, 1)
    return History(given=np.where(np.isnan(g), np.nan, 1.0), kept=np.where(np.isnan(g), np.nan, 1.0), generosity=g,
                   partner=np.zeros((n, 1), dtype=np.int64), round=np.zeros((n, 1), dtype=np.int64))


def _request(n: int, thetas: float | np.ndarray = 0.0, gave: float = np.nan) -> DecisionRequest:
    return DecisionRequest(round=1, menu_id="m", options=MENU, agent_ids=np.arange(n), thetas=np.broadcast_to(thetas, (n,)).astype(float),
                           history_source=_history(np.full(n, gave)))


def _frequencies(decisions, k: int) -> np.ndarray:
    return np.bincount(decisions.choice[decisions.valid], minlength=k) / decisions.valid.sum()


@pytest.mark.parametrize("order", ["fixed", "reverse_half", "shuffle"])
def test_decider_draws_from_the_model_in_each_display_order(order):
    unit = PolicyUnit(theta=30.0, beta=0.3, position=1.0, reciprocity=2.0)
    decider = SurrogateDecider(_policy(units={"g": unit}), group="g", order=order)
    n = 60_000
    decisions = decider.decide(_request(n, gave=0.5), np.random.default_rng(1))
    orders = [np.array(text.split(","), dtype=int) for text in decisions.metadata["shown_order"]]
    first = np.array([o[0] for o in orders])
    assert all(sorted(o.tolist()) == [0, 1, 2] for o in orders[:200])
    if order == "fixed":
        assert (first == 0).all()
    for shown in np.unique(first):
        rows = first == shown
        expected = choice_probabilities(np.array([30.0]), np.array([0.3]), np.array([1.0]), np.array([2.0]), MENU,
                                        np.array([shown]), np.array([0.5]))[0]
        observed = np.bincount(decisions.choice[rows], minlength=3) / rows.sum()
        se = np.sqrt(expected * (1 - expected) / rows.sum())
        assert (np.abs(observed - expected) < 5 * se).all(), (shown, observed, expected)
    if order != "fixed":  # counterbalanced: both ends shown first about equally often
        assert abs((first == 0).mean() - (first == 2).mean()) < 0.03


def test_decider_reciprocates_the_last_gift_and_ignores_unknown_history():
    unit = PolicyUnit(theta=0.0, beta=0.0, reciprocity=3.0)
    decider = SurrogateDecider(_policy(units={"g": unit}), group="g", order="fixed")
    generous = _frequencies(decider.decide(_request(40_000, gave=1.0), np.random.default_rng(2)), 3)
    unknown = _frequencies(decider.decide(_request(40_000, gave=np.nan), np.random.default_rng(3)), 3)
    expected = choice_probabilities(np.zeros(1), np.zeros(1), np.zeros(1), np.array([3.0]), MENU, np.array([0]), np.array([1.0]))[0]
    np.testing.assert_allclose(generous, expected, atol=0.015)
    np.testing.assert_allclose(unknown, [1 / 3] * 3, atol=0.015)


@pytest.mark.parametrize("fallback", ["random", "skip"])
def test_invalid_replies_at_the_units_rate_with_the_llm_fallbacks(fallback):
    unit = PolicyUnit(theta=0.0, beta=50.0, invalid_rate=0.2)  # valid replies are always option 0
    decider = SurrogateDecider(_policy(units={"g": unit}), group="g", fallback=fallback)
    decisions = decider.decide(_request(20_000), np.random.default_rng(4))
    invalid = ~decisions.valid
    assert abs(invalid.mean() - 0.2) < 5 * math.sqrt(0.2 * 0.8 / 20_000)
    assert (decisions.choice[decisions.valid] == 0).all()
    assert set(np.array(decisions.metadata["fallback"], dtype=object)[invalid]) == {fallback}
    if fallback == "skip":
        assert (decisions.choice[invalid] == NO_CHOICE).all()
    else:
        assert set(decisions.choice[invalid].tolist()) == {0, 1, 2}


def test_by_value_follows_each_agents_current_value_and_names_a_missing_one():
    policy = _policy(by="value", units={"90": PolicyUnit(theta=90.0, beta=50.0), "0": PolicyUnit(theta=0.0, beta=50.0)})
    decider = SurrogateDecider(policy, order="fixed")
    thetas = np.array([90.0, 0.0, 90.0, 0.0])
    decisions = decider.decide(_request(4, thetas), np.random.default_rng(5))
    assert decisions.choice.tolist() == [2, 0, 2, 0]  # the altruist gives everything, the individualist keeps it
    with pytest.raises(PolicyError, match="no unit for value '45'"):
        decider.setup(np.arange(3), np.array([90.0, 45.0, 0.0]))


def test_by_agent_policies_and_same_seed_same_decisions():
    policy = _policy(by="agent", units={str(i): PolicyUnit(theta=0.0, beta=0.1 * i, position=0.3) for i in range(5)})
    decider = SurrogateDecider(policy, order="shuffle")
    a = decider.decide(_request(5), np.random.default_rng(6))
    b = decider.decide(_request(5), np.random.default_rng(6))
    assert a.choice.tolist() == b.choice.tolist() and a.metadata == b.metadata
    with pytest.raises(PolicyError, match="no unit for agent '9'"):
        decider.setup(np.array([0, 9]), np.zeros(2))


@pytest.mark.parametrize("module", ["hvae.agents.surrogate", "hvae.files.safe_yaml"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
