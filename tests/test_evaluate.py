"""HVAE evaluation mode: oracle at the ceiling, random at chance, LLM pipeline, CLI as a user types it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import TypeAdapter
from conftest import assert_user_error

from hvae.agents import svo
from hvae.agents.llm.backends import BackendConfig
from hvae.experiments.questionnaire import Evaluation, EvaluationPlan

BackendConfigAdapter = TypeAdapter(BackendConfig)

VALUES = ["altruistic", "prosocial", "individualistic", "competitive"]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    Evaluation(EvaluationPlan(agents=["oracle", "random"], values=VALUES + ["30"], repeats=200, seed=4)).run(out)
    return pd.read_parquet(out / "evaluation.parquet"), pd.read_parquet(out / "evaluation_summary.parquet")


def test_oracle_is_the_ceiling(baseline_run) -> None:
    repeats, table = baseline_run
    oracle = repeats[repeats["agent"] == "oracle"]
    assert (oracle["decision_vr"] == 1.0).all()
    assert (oracle["invalid"] == 0).all() and oracle["transitive"].all()
    for value, part in oracle.groupby("value"):
        target = svo.attainable_angle(part["value_angle"].iloc[0])
        angles = part["angle"].to_numpy()
        if np.ptp(angles) < 1e-9:  # no ties on any item: exactly the attainable angle
            assert angles[0] == pytest.approx(target, abs=1e-9)
            assert np.allclose(part["slider_vr"], 1.0)
        else:  # ties broken at random: equal in expectation
            assert abs(angles.mean() - target) <= 4 * angles.std(ddof=1) / np.sqrt(len(angles)), value
    rows = table[table["agent"] == "oracle"]
    assert (rows["ceiling_vr"] == 1.0).all()
    # the oracle's per-profile slider VR is its own ceiling (below 1 where items tie), within sampling error
    for _, row in rows.iterrows():
        part = oracle[oracle["value"] == row["value"]]
        error = 4 * part["slider_vr"].std(ddof=1) / np.sqrt(len(part)) + 1e-12
        assert abs(row["slider_vr"] - row["ceiling_slider_vr"]) <= error, row["value"]
    assert rows.set_index("value").loc["individualistic", "ceiling_slider_vr"] < 0.95  # item 1 ties at 0°


def test_random_chooser_matches_its_analytic_expectation(baseline_run) -> None:
    repeats, table = baseline_run
    random_rows = repeats[repeats["agent"] == "random"]
    for value, part in random_rows.groupby("value"):
        theta = part["value_angle"].iloc[0]
        # exact mean and variance of one repeat's decision VR (mean of six independent items)
        means, variances = [], []
        for item in svo.PRIMARY_ITEMS:
            u = svo.menu_utilities(theta, item)
            if u.max() - u.min() <= 1e-9:
                continue
            scores = (u - u.min()) / (u.max() - u.min())
            means.append(scores.mean())
            variances.append(scores.var())
        expected = np.mean(means)
        sd_of_mean = np.sqrt(np.sum(variances) / len(variances) ** 2 / len(part))
        assert abs(part["decision_vr"].mean() - expected) <= 4 * sd_of_mean, value
        assert part["chance_vr"].iloc[0] == pytest.approx(expected)
    chance = table[table["agent"] == "random"]
    assert (abs(chance["slider_vr"] - chance["chance_slider_vr"]) < 0.05).all()


def test_summary_keys_and_shares(baseline_run) -> None:
    _, table = baseline_run
    for _, row in table.iterrows():
        assert sum(row["category_shares"].values()) == pytest.approx(1.0)
        assert row["angle_ci_low"] <= row["angle_mean"] <= row["angle_ci_high"]
    # rule deciders have no prompt: one row per (agent, value), goal prompting empty, no duplicates
    assert table["goal_prompting"].isna().all()
    assert len(table) == table[["agent", "value"]].drop_duplicates().shape[0] == 2 * 5


def test_angle_intervals_stay_on_the_slider_with_few_repeats(tmp_path) -> None:
    # two repeats: the raw t-interval (t = 12.7) runs far outside [-90, 90]; the mean of slider
    # angles cannot leave the slider's range, so neither may its interval
    out = tmp_path / "ev"
    Evaluation(EvaluationPlan(agents=["random"], values=VALUES, repeats=2, seed=1)).run(out)
    table = pd.read_parquet(out / "evaluation_summary.parquet")
    possible = svo.random_slider_angles()
    assert (table["angle_ci_low"] >= possible[0]).all() and (table["angle_ci_high"] <= possible[-1]).all()
    assert (table["angle_ci_low"] <= table["angle_mean"]).all() and (table["angle_mean"] <= table["angle_ci_high"]).all()


def test_invalid_answers_are_not_measured(tmp_path) -> None:
    # an LLM that never answers usably: every answer is a random fallback; nothing may be measured
    # (the script never runs out: an exhausted script is a backend failure, which stops the run)
    replies = ["Hm.", "Hm."] + ["no idea"] * 6 * 3  # six items, each asked and re-asked twice
    backends = {"script": BackendConfigAdapter.validate_python({"kind": "replay", "replies": replies})}
    plan = EvaluationPlan(agents=["llm"], values=["prosocial"], goal_prompting=[True], repeats=6, backend="script",
                          backends=backends, cache_enabled=False, order="fixed", seed=2)
    out = Evaluation(plan).run(tmp_path / "ev")
    repeats = pd.read_parquet(out / "evaluation.parquet")
    row = pd.read_parquet(out / "evaluation_summary.parquet").iloc[0]
    assert (repeats["invalid"] == 6).all() and (repeats["n_valid"] == 0).all()
    assert repeats["angle"].isna().all() and repeats["decision_vr"].isna().all()
    assert row["invalid_rate"] == 1.0 and row["n_valid"] == 0 and row["n_scored"] == 0
    assert np.isnan(row["decision_vr"]) and np.isnan(row["slider_vr"]) and np.isnan(row["angle_mean"])


def scripted_backend_file(tmp_path, replies: list[str]):
    path = tmp_path / "backends.yaml"
    path.write_text(yaml.safe_dump({"backends": {"script": {"kind": "replay", "replies": replies}}, "cache": {"enabled": False}}))
    return path


@pytest.mark.slow
@pytest.mark.llm
def test_cli_evaluate_json_with_scripted_llm_and_baselines(cli, tmp_path) -> None:
    # every agent: description, goal, then "I" to all six items (options shown in fixed order)
    backends = scripted_backend_file(tmp_path, ["A caring person.", "Help the other."] + ["I"] * 6)
    out = tmp_path / "ev"
    result = cli(
        "evaluate", "--agent", "llm", "--backend", "script", "--scenario", str(backends), "--values", "altruistic,30",
        "--goal-prompting", "on", "--repeats", "2", "--order", "fixed", "--baselines", "--out", str(out), "--json",
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    keys = {"agent", "value", "goal_prompting", "repeats", "angle_mean", "angle_ci_low", "angle_ci_high",
            "category_shares", "transitive_rate", "decision_vr", "slider_vr"}
    assert all(keys <= set(row) for row in rows)
    assert {row["agent"] for row in rows} == {"llm", "oracle", "random"}
    llm = [row for row in rows if row["agent"] == "llm"]
    # answering "I" on every item is the profile IIIIII
    assert all(row["angle_mean"] == pytest.approx(svo.slider_angle([8] * 6)) for row in llm)
    assert all(row["repeats"] == 2 and row["goal_prompting"] is True for row in llm)
    answers = pd.read_parquet(out / "answers.parquet")
    assert answers.loc[answers["agent"] == "llm", "shown_order"].eq("0,1,2,3,4,5,6,7,8").all()
    assert (out / "figures" / "radar_slider_vr.png").stat().st_size > 10_000
    assert (out / "figures" / "svo_ring.svg").exists()
    setup = pd.read_parquet(out / "llm_agents.parquet")
    assert set(setup["goal"]) == {"Help the other."}


@pytest.mark.slow
def test_cli_evaluate_secondary_items(cli, tmp_path) -> None:
    out = tmp_path / "ev"
    result = cli("evaluate", "--agent", "oracle", "--values", "prosocial", "--repeats", "3", "--secondary", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert set(row["subtype_shares"]) == {"inequality_averse", "joint_gain_max", "undefined"}
    repeats = pd.read_parquet(out / "evaluation.parquet")
    assert {f"item{i}" for i in range(1, 16)} <= set(repeats.columns)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--agent", "wizard"], "unknown agent 'wizard'"),
        (["--agent", "oracle", "--values", "altruist"], "unknown value 'altruist'"),
        (["--agent", "oracle", "--values", "95"], "outside [-90, 90]"),
        (["--agent", "oracle", "--repeats", "0"], "--repeats must be at least 1"),
        (["--agent", "llm", "--backend", "nowhere"], "--backend 'nowhere' is not defined"),
        (["--agent", "oracle", "--order", "sideways"], "Invalid value for '--order'"),
        (["--agent", "llm", "--scenario", "missing.yaml"], "no such file"),
    ],
)
@pytest.mark.slow
def test_cli_evaluate_bad_input(cli, tmp_path, args, fragment) -> None:
    result = cli("evaluate", *args, "--out", str(tmp_path / "ev"), cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not (tmp_path / "ev").exists()


def test_evaluation_from_python_draws_its_figures(tmp_path) -> None:
    plan = EvaluationPlan(agents=["oracle"], values=["prosocial"], repeats=3, seed=1)
    out = Evaluation(plan).run(tmp_path / "with")
    assert {p.name for p in (out / "figures").iterdir()} >= {"radar_slider_vr.png", "radar_decision_vr.svg", "svo_ring.png"}
    bare = Evaluation(plan).run(tmp_path / "without", figures=False)
    assert not (bare / "figures").exists()
