"""Fidelity of a surrogate (issue 23 part 3): the tests behind each of the three checks.

The statistics are checked against references computed another way: the population test against
scipy's exact permutation test, the calibration test's error rate under a true model and its
power against a wrong one, and the split-half agreement against a hand count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hvae.analysis import fidelity


# ------------------------------------------------------------------------------ population test
@pytest.mark.parametrize("seed", range(4))
def test_one_figure_permutation_test_is_scipys_exact_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 5), rng.normal(0.8, 1, 6)
    statistic, p_value, smallest = fidelity.max_t_permutation(a[:, None], b[:, None])
    # two-sided in the sense of |difference| (scipy's "two-sided" doubles the smaller tail instead)
    reference = stats.permutation_test((a, b), lambda x, y: abs(np.mean(x) - np.mean(y)),
                                       permutation_type="independent", alternative="greater", n_resamples=np.inf)
    # the standardisation (sd over all runs) is the same for every relabelling: same ordering, same p
    assert p_value == pytest.approx(reference.pvalue, abs=1e-9)
    assert statistic == pytest.approx(abs(a.mean() - b.mean()) / np.concatenate([a, b]).std(ddof=1))
    assert smallest == pytest.approx(1 / 462)  # C(11, 5) assignments


def test_population_test_rejects_a_clear_difference_in_one_of_several_figures() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, (5, 4))
    b = rng.normal(0, 1, (5, 4))
    b[:, 2] += 10  # one figure moved far
    _, p_value, smallest = fidelity.max_t_permutation(a, b)
    assert p_value == pytest.approx(smallest) and smallest == pytest.approx(2 / 252)
    # a figure that never varies but differs between the sides is an infinite difference
    _, p_const, _ = fidelity.max_t_permutation(np.zeros((4, 1)), np.ones((4, 1)))
    assert p_const == pytest.approx(2 / 70)
    _, p_same, _ = fidelity.max_t_permutation(np.ones((4, 1)), np.ones((4, 1)))
    assert p_same == 1.0


def test_population_test_keeps_its_level_under_the_null() -> None:
    rng = np.random.default_rng(11)
    rejections = 0
    trials = 200
    for _ in range(trials):
        data = rng.normal(0, 1, (10, 3))
        _, p_value, _ = fidelity.max_t_permutation(data[:5], data[5:])
        rejections += p_value < 0.05
    # exact test: at most 5% in expectation (binomial 200, 0.05: sd 3.1)
    assert rejections <= 10 + 3 * 3.1, rejections


# ------------------------------------------------------------------------------ calibration
def _calibration_data(rng: np.random.Generator, n: int, truth: np.ndarray, predicted: np.ndarray):
    k = truth.shape[1]
    menus = rng.integers(0, len(truth), n)
    choice = np.array([rng.choice(k, p=truth[m]) for m in menus])
    frame = pd.DataFrame({"menu_id": [f"m{m}" for m in menus], "choice": choice, "k": k})
    return frame, predicted[menus]


def test_calibration_of_a_true_model_is_rarely_rejected_and_a_wrong_one_is() -> None:
    rng = np.random.default_rng(5)
    truth = rng.dirichlet(np.ones(4), size=3)
    wrong = np.roll(truth, 1, axis=1)
    rejected_true = 0
    for _ in range(60):
        frame, predicted = _calibration_data(rng, 120, truth, truth)
        _, _, p_value = fidelity.calibration(predicted, frame, n_sim=199, seed=int(rng.integers(1 << 30)))
        rejected_true += p_value < 0.05
    assert rejected_true <= 3 + 3 * np.sqrt(60 * 0.05 * 0.95), rejected_true
    frame, predicted = _calibration_data(rng, 120, truth, wrong)
    table, x2, p_value = fidelity.calibration(predicted, frame, n_sim=199)
    assert p_value == pytest.approx(1 / 200)
    # the table holds observed and predicted shares per menu and option
    m0 = table[table["menu_id"] == "m0"]
    observed = (frame.loc[frame["menu_id"] == "m0", "choice"].value_counts(normalize=True)
                .reindex(range(4), fill_value=0.0).to_numpy())
    np.testing.assert_allclose(m0["observed"].to_numpy(), observed)
    np.testing.assert_allclose(m0["predicted"].to_numpy(), wrong[0])
    assert x2 == pytest.approx(fidelity.pearson_x2(
        np.concatenate([np.bincount(frame.loc[frame["menu_id"] == m, "choice"], minlength=4) for m in sorted(set(frame["menu_id"]))]),
        np.concatenate([predicted[(frame["menu_id"] == m).to_numpy()].sum(0) for m in sorted(set(frame["menu_id"]))])))


def test_calibration_keeps_displays_apart_so_a_position_blind_model_fails() -> None:
    """A chooser pulled to the option shown first, under two counterbalanced displays: pooled over
    displays the position-blind model's shares are right, per display they are not."""
    rng = np.random.default_rng(1)  # seeds 1-7: blind p 0.005 (the floor) every time; pooled p 0.2-0.77
    k, n = 3, 600
    shown_first = rng.choice([0, k - 1], n)  # reverse_half: option 0 or option 2 shown first
    base = np.array([0.2, 0.6, 0.2])
    truth = np.tile(base, (n, 1))
    truth[np.arange(n), shown_first] += 0.2
    truth[:, 1] -= 0.2
    choice = np.array([rng.choice(k, p=row) for row in truth])
    blind = np.tile(truth.mean(axis=0), (n, 1))  # the pooled shares: what a model without position predicts
    frame = pd.DataFrame({"menu_id": "m", "shown_first": shown_first, "choice": choice, "k": k})
    table, _, p_blind = fidelity.calibration(blind, frame, n_sim=199)
    assert p_blind == pytest.approx(1 / 200) and set(table["shown_first"]) == {0, k - 1}
    _, _, p_pooled = fidelity.calibration(blind, frame.drop(columns="shown_first"), n_sim=199)
    assert p_pooled > 0.01  # the same model looks calibrated when displays are pooled
    _, _, p_true = fidelity.calibration(truth, frame, n_sim=199)
    assert p_true > 0.01


def test_a_choice_the_model_calls_impossible_fails_calibration() -> None:
    frame = pd.DataFrame({"menu_id": ["m"] * 3, "choice": [0, 0, 1], "k": 2})
    predicted = np.array([[1.0, 0.0]] * 3)
    _, x2, p_value = fidelity.calibration(predicted, frame, n_sim=99)
    assert x2 == np.inf and p_value == pytest.approx(1 / 100)


# ------------------------------------------------------------------------------ folds and bootstrap
def test_agents_are_split_into_balanced_folds_reproducibly() -> None:
    ids = list(range(11)) * 3
    folds = fidelity.agent_folds(ids, 2, seed=4)
    assert sorted(folds) == list(range(11))
    assert sorted(np.bincount(list(folds.values()))) == [5, 6]
    assert folds == fidelity.agent_folds(ids, 2, seed=4)
    assert folds != fidelity.agent_folds(ids, 2, seed=5)


def test_cluster_bootstrap_of_a_ratio_of_sums_centres_on_the_pooled_mean() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 20, 30).astype(float)
    sums = n * rng.normal(1.0, 0.2, 30)
    replicates = fidelity._cluster_means(sums[:, None], n, 4000, rng)[:, 0]
    assert replicates.mean() == pytest.approx(sums.sum() / n.sum(), abs=0.01)
    # spread: the delta-method standard error of a ratio estimator over clusters
    ratio = sums.sum() / n.sum()
    se = np.sqrt(((sums - ratio * n) ** 2).sum()) / n.sum()
    assert replicates.std() == pytest.approx(se, rel=0.1)


# ------------------------------------------------------------------------------ agents (policy on the LLM's displays)
def _policy(units: dict, features=("utility", "position")):
    from hvae.agents.surrogate import PolicyUnit, SurrogatePolicy

    return SurrogatePolicy(by="group", features=features, units={k: PolicyUnit(**v) for k, v in units.items()})


def _logit_run(theta: float, beta: float, position: float, seed: int, agents: int = 12, rounds: int = 24):
    """A run of agents playing the policy itself (the surrogate decider), recorded like an LLM run."""
    import hvae

    return hvae.Simulation.build(
        name="logit", rounds=rounds, seed=seed, network={"kind": "complete"}, menus={"kind": "slider"},
        population=[{"name": "llm", "count": agents, "value": theta, "decider": "oracle"}],
        deciders={"llm": _surrogate_decider(theta, beta, position)}).run().run


def _surrogate_decider(theta: float, beta: float, position: float):
    from hvae.agents.surrogate import SurrogateDecider

    return SurrogateDecider(_policy({"llm": {"theta": theta, "beta": beta, "position": position}}), group="llm")


def test_replay_uses_the_llms_displays_and_draws_from_the_policy() -> None:
    run = _logit_run(45.0, 0.2, 1.5, seed=1)
    decisions, menus = run.decisions(), run.menus()
    policy = _policy({"llm": {"theta": 45.0, "beta": 0.2, "position": 1.5}})
    replayed = fidelity.replay(policy, decisions, menus, seed=3)
    assert (replayed["shown_order"].to_numpy() == decisions["shown_order"].to_numpy()).all()
    orders = [list(map(int, o.split(","))) for o in replayed["shown_order"]]
    assert all(order[p] == c for order, p, c in zip(orders, replayed["chosen_position"], replayed["choice"]))
    # the replayed choice frequencies are the policy's probabilities (chi-square goodness of fit)
    p = fidelity.probabilities(policy, decisions, menus)
    many = pd.concat([fidelity.replay(policy, decisions, menus, seed=s) for s in range(20)])
    observed = np.bincount(many["choice"], minlength=p.shape[1])
    expected = np.tile(p, (20, 1)).sum(axis=0)
    keep = expected > 5
    assert stats.chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()).pvalue > 1e-3


def test_agents_check_passes_the_true_policy_and_fails_one_without_the_position_term() -> None:
    run = _logit_run(30.0, 0.15, 2.0, seed=4, agents=16, rounds=36)
    decisions, menus = run.decisions(), run.menus()
    true = _policy({"llm": {"theta": 30.0, "beta": 0.15, "position": 2.0}})
    check = fidelity.agents_check(true, decisions, menus, seed=1, n_boot=500)
    assert check.verdict == "pass", check.table.T
    blind = _policy({"llm": {"theta": 30.0, "beta": 0.15}}, features=("utility",))
    check = fidelity.agents_check(blind, decisions, menus, seed=1, n_boot=500)
    assert check.verdict == "fail"
    row = check.table.iloc[0]
    assert row["first share diff high"] < 0  # the blind surrogate takes the first option far less often


# ------------------------------------------------------------------------------ the record and the report
def _fake_result(verdicts: tuple[str, str, str]) -> fidelity.Fidelity:
    checks = tuple(fidelity.Check(name, verdict, f"criterion of {name}", pd.DataFrame({"x": [1.0, np.inf]}),
                                  {"p": float("nan")})
                   for name, verdict in zip(("decisions", "agents", "population"), verdicts))
    return fidelity.Fidelity(checks, "p.yaml", ("runs/x",))


def test_label_is_failing_when_any_check_fails_and_passing_only_when_all_pass() -> None:
    assert _fake_result(("pass", "pass", "pass")).label == "passing"
    assert _fake_result(("pass", "fail", "untested")).label == "failing"
    assert _fake_result(("pass", "pass", "untested")).label == "incomplete"


def test_report_shows_the_record_of_the_policy_that_played_and_flags_a_missing_or_stale_one(tmp_path) -> None:
    import hvae
    from hvae.analysis.report import _surrogate_section, write_report

    policy = _policy({"llm": {"theta": 30.0, "beta": 0.2, "position": 1.0}})
    path = tmp_path / "policy.yaml"
    policy.save(path)
    sim = hvae.Simulation.build(name="sur", rounds=2, seed=1, population=[
        {"name": "llm", "count": 4, "value": 30, "decider": {"kind": "surrogate", "policy": str(path), "group": "llm"}}])
    run = sim.run().run

    def section() -> str:
        return _surrogate_section(run.scenario)

    html = write_report([run], tmp_path / "report.html").read_text(encoding="utf-8")  # the page holds the section
    assert section() in html
    assert "unmeasured" in section() and "no fidelity record" in section()
    record = fidelity.save_record(_fake_result(("pass", "fail", "pass")), path)
    assert record == tmp_path / "policy.fidelity.json"
    text = section()
    assert "failing" in text and "criterion of agents" in text and "may be artefacts" in text
    fidelity.save_record(_fake_result(("pass", "pass", "pass")), path)
    assert "passing" in section() and "warning" not in section()
    path.write_text(path.read_text() + "\n# edited\n")
    assert "another version of the policy" in section()


def test_fidelity_command_bad_input_is_one_line(cli, tmp_path) -> None:
    from conftest import assert_user_error

    (tmp_path / "bad.yaml").write_text("format: something-else\n")
    assert_user_error(cli("fidelity", str(tmp_path / "bad.yaml"), str(tmp_path)), "not a surrogate policy file")
    policy = _policy({"llm": {"theta": 30.0, "beta": 0.2}})
    policy.save(tmp_path / "p.yaml")
    assert_user_error(cli("fidelity", str(tmp_path / "p.yaml"), str(tmp_path / "nowhere")), "not an hvae run folder")


# ------------------------------------------------------------------------------ decisions: held out
def test_split_half_agreement_is_the_other_halfs_smoothed_shares_counted_by_hand() -> None:
    run = _logit_run(45.0, 0.2, 1.0, seed=6)
    decisions, menus = run.decisions(), run.menus()
    policy = _policy({"llm": {"theta": 45.0, "beta": 0.2, "position": 1.0}})
    frame, predicted = fidelity.held_out(policy, decisions, menus, folds=2, seed=3)
    folds = fidelity.agent_folds(decisions["agent_id"], 2, seed=3)
    rows = decisions.reset_index(drop=True)
    first = [int(str(o).split(",")[0]) for o in rows["shown_order"]]
    for i in range(0, len(rows), 7):
        own = folds[rows.loc[i, "agent_id"]]
        same = [j for j in range(len(rows)) if folds[rows.loc[j, "agent_id"]] != own
                and rows.loc[j, "menu_id"] == rows.loc[i, "menu_id"] and first[j] == first[i]]
        k = 9
        hits = sum(int(rows.loc[j, "choice"]) == int(rows.loc[i, "choice"]) for j in same)
        assert frame.loc[i, "ll_split"] == pytest.approx(np.log((hits + 0.5) / (len(same) + 0.5 * k)))
        assert frame.loc[i, "ll_uniform"] == pytest.approx(-np.log(k))
        assert frame.loc[i, "ll_surrogate"] == pytest.approx(np.log(predicted[i, rows.loc[i, "choice"]]))
    assert np.allclose(predicted.sum(axis=1), 1.0)


def test_decisions_check_says_why_it_is_untested() -> None:
    run = _logit_run(45.0, 0.2, 1.0, seed=6, agents=3, rounds=12)
    policy = _policy({"llm": {"theta": 45.0, "beta": 0.2, "position": 1.0}})
    check = fidelity.decisions_check(policy, run.decisions(), run.menus())
    assert check.verdict == "untested" and "3 agents" in check.notes[0]


def test_only_the_llm_decisions_of_the_policys_units_are_measured() -> None:
    decisions = pd.DataFrame({"decider": ["llm", "llm", "oracle", "llm"], "group": ["a", "b", "a", "c"],
                              "value_angle": [45.0, 0.0, 45.0, -22.5], "agent_id": [1, 2, 3, 4]})
    by_group = _policy({"a": {"theta": 45.0, "beta": 0.2}, "b": {"theta": 0.0, "beta": 0.2}})
    assert fidelity.covered(by_group, decisions).tolist() == [True, True, False, False]
    from hvae.agents.surrogate import PolicyUnit, SurrogatePolicy

    by_value = SurrogatePolicy(by="value", features=("utility",),
                               units={"-22.5": PolicyUnit(theta=-22.5, beta=0.1), "45": PolicyUnit(theta=45.0, beta=0.1)})
    assert fidelity.covered(by_value, decisions).tolist() == [True, False, False, True]
    # a run without LLM rows (a stand-in played the part): every row of the policy's units
    assert fidelity.covered(by_group, decisions.assign(decider="oracle")).tolist() == [True, True, True, False]


def test_a_part_too_small_to_refit_leaves_the_decisions_check_untested() -> None:
    run = _logit_run(45.0, 0.2, 1.0, seed=6, agents=4, rounds=4)  # 16 decisions: no part reaches distil's minimum
    policy = _policy({"llm": {"theta": 45.0, "beta": 0.2, "position": 1.0}})
    check = fidelity.decisions_check(policy, run.decisions(), run.menus())
    assert check.verdict == "untested" and "refit on a part failed" in check.notes[0]


def test_text_lists_the_items_outside_the_models_range_and_the_record_keeps_every_item(tmp_path) -> None:
    import json

    items = pd.DataFrame({"menu_id": ["m0", "m0", "m1"], "option": [0, 1, 0], "n": [10, 10, 5],
                          "observed": [0.9, 0.1, 0.2], "predicted": [0.5, 0.5, 0.2], "low": [0.2, 0.2, 0.0],
                          "high": [0.8, 0.8, 0.5]})
    check = fidelity.Check("decisions", "fail", "c", pd.DataFrame(), {}, (), {"calibration": items})
    result = fidelity.Fidelity((check,), "p.yaml", ("r",))
    text = result.text()
    assert "2 of 3 items (menu, option shown first, option) observed outside the model's 95% range:" in text
    assert "m1" not in text.split("outside the model's 95% range:")[1]  # m1 option 0 lies inside
    path = tmp_path / "p.yaml"
    _policy({"llm": {"theta": 1.0, "beta": 0.1}}).save(path)
    record = json.loads(fidelity.save_record(result, path).read_text())
    assert [row["menu_id"] for row in record["checks"][0]["calibration"]] == ["m0", "m0", "m1"]
