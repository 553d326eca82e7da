"""The per-group summary: one estimator per figure, targets in force when decided, behaviour only."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_scenario

from hvae.agents import svo
from hvae.analysis.rationality import slider_profiles
from hvae.analysis.runfolder import RunFolder
from hvae.analysis.summary import agent_summary, group_summary
from hvae.scenarios.loader import load_scenario
from hvae.simulation.runner import play_scenario


def summary_of(tmp_path, **changes):
    run = RunFolder(play_scenario(make_scenario(**changes), tmp_path / "run").path)
    return run, group_summary(run).set_index("group")


@pytest.mark.slow
def test_a_random_chooser_scores_its_chance_level_on_the_slider(tmp_path) -> None:
    # 40 uniform random agents valued 20° (attainable 10.4°), 800 complete profiles. Slider VR and
    # its chance level must be the same estimator: scoring each agent's *mean* angle over profiles
    # (which averages out near the slider's middle, 22.7°) against the per-profile chance level made
    # a random chooser "beat chance" (0.841 vs 0.811).
    run, table = summary_of(
        tmp_path,
        rounds=120,
        population=[{"name": "rnd", "count": 40, "value": 20, "decider": "random"}],
        network={"kind": "complete"},
    )
    row = table.loc["rnd"]
    assert row["chance_slider_vr"] == pytest.approx(svo.chance_slider_vr(20.0))
    standard_error = 0.15 / np.sqrt(800)  # per-profile VR of a random answerer has sd < 0.15
    assert abs(row["slider_vr"] - row["chance_slider_vr"]) <= 4 * standard_error
    from hvae.analysis.rationality import slider_scores

    profiles = slider_profiles(run.decisions())
    scores = slider_scores(profiles)
    assert row["n_profiles"] == len(profiles) == 800
    assert scores["slider_vr"].std(ddof=1) < 0.15
    # the summary's figure is the mean of the one per-profile definition
    per_agent = scores.groupby(profiles["agent_id"])["slider_vr"].mean()
    assert row["slider_vr"] == pytest.approx(per_agent.mean())
    assert np.allclose(scores["slider_vr"], svo.slider_vr(profiles["angle"].to_numpy(float), 20.0))


@pytest.mark.slow
def test_the_oracle_scores_its_ceiling_on_the_slider(tmp_path) -> None:
    # at 0° every option of item 1 ties: the oracle's angle varies, its expected score is below 1
    _, table = summary_of(
        tmp_path,
        rounds=60,
        population=[{"name": "ind", "count": 10, "value": "individualistic", "decider": "oracle"}],
        network={"kind": "complete"},
    )
    row = table.loc["ind"]
    assert row["ceiling_slider_vr"] == pytest.approx(svo.ceiling_slider_vr(0.0)) and row["ceiling_slider_vr"] < 0.95
    assert abs(row["slider_vr"] - row["ceiling_slider_vr"]) < 0.02
    assert row["decision_vr"] == 1.0


def imitation_pair(every: int) -> dict:
    """A competitive keeper and an altruistic giver; the giver earns less and copies the keeper."""
    return dict(
        rounds=12,
        population=[
            {"name": "keeper", "count": 1, "value": "competitive", "decider": "oracle"},
            {"name": "giver", "count": 1, "value": "altruistic", "decider": "oracle"},
        ],
        network={"kind": "complete"},
        matching="all_edges",
        dynamics={"rule": "imitation", "every": every, "strength": 1000},
    )


def test_figures_are_scored_against_the_value_in_force(tmp_path) -> None:
    # the giver answers six rounds as a perfect altruist, then imitates -45° and answers six
    # rounds as a perfect competitor: every figure is perfect when scored against the value it held
    run, table = summary_of(tmp_path, **imitation_pair(every=6))
    giver = table.loc["giver"]
    assert run.agents().set_index("group").loc["giver", "value_angle"] == -45.0  # it did change
    assert giver["slider_vr"] == pytest.approx(1.0, abs=1e-4)
    assert giver["decision_vr"] == 1.0
    assert giver["n_profiles"] == 2 and giver["ceiling_slider_vr"] == pytest.approx(1.0)
    assert giver["target_angle"] == pytest.approx((90 - 45) / 2)
    assert giver["attainable_angle"] == pytest.approx((svo.attainable_angle(90) + svo.attainable_angle(-45)) / 2)


def test_a_profile_spanning_a_value_change_is_not_scored(tmp_path) -> None:
    # the value changes after round 3, in the middle of the first profile
    run, table = summary_of(tmp_path, **imitation_pair(every=3))
    profiles = slider_profiles(run.decisions())
    giver_id = int(run.agents().set_index("group").loc["giver", "agent_id"])
    mine = profiles[profiles["agent_id"] == giver_id].set_index("profile")
    assert np.isnan(mine.loc[0, "angle"])
    assert not mine.loc[0, "scored"] and np.isnan(mine.loc[0, "value_angle"])
    assert mine.loc[1, "scored"] and mine.loc[1, "value_angle"] == -45.0
    assert table.loc["giver", "n_profiles"] == 1
    assert table.loc["giver", "slider_vr"] == pytest.approx(1.0, abs=1e-4)


def test_fallback_choices_are_not_measured(tmp_path) -> None:
    # an LLM that never answers usably (every reply unparseable, random fallback): its choices are
    # noise from the fallback and must not be "measured" as a random chooser
    llm = {"kind": "llm", "backend": "script", "reasks": 0, "order": "fixed", "fallback": "random"}
    _, table = summary_of(
        tmp_path,
        rounds=12,
        population=[
            {"name": "mute", "count": 4, "value": "prosocial", "decider": llm},
            {"name": "oracles", "count": 4, "value": "prosocial", "decider": "oracle"},
        ],
        network={"kind": "complete"},
        # every decision gets "hmm" (the script never runs out: that would be a backend failure)
        backends={"script": {"kind": "replay", "replies": ["I am kind.", "Be kind."] + ["hmm"] * 12}},
        cache={"enabled": False},
    )
    mute = table.loc["mute"]
    for figure in ("decision_vr", "chance_vr", "slider_vr", "slider_angle", "revealed_theta", "revealed_ci_low"):
        assert np.isnan(mute[figure]), figure
    assert mute["n_decisions"] == 4 * 12 and mute["n_valid"] == 0 and mute["invalid_rate"] == 1.0
    assert mute["n_profiles"] == 0 and mute["revealed_n"] == 0 and mute["revealed_identification"] == "none"
    oracles = table.loc["oracles"]
    assert oracles["n_valid"] == oracles["n_decisions"] == 4 * 12 and oracles["decision_vr"] == 1.0


def test_agent_rows_count_valid_decisions(tmp_path) -> None:
    run, _ = summary_of(tmp_path, rounds=6)
    agents = agent_summary(run)
    assert (agents["n_valid"] == agents["n_decisions"]).all()
    assert (agents["n_decisions"] == run.agents()["n_decisions"].to_numpy()).all()


@pytest.mark.slow
def test_oracle_population_intervals_have_width_and_contain_the_assigned_angles(tmp_path) -> None:
    run = RunFolder(play_scenario(load_scenario("oracle_population"), tmp_path / "run").path)
    table = group_summary(run).set_index("group")
    for group, row in table.iterrows():
        assert row["revealed_identification"] in ("point", "set"), group
        assert row["revealed_ci_low"] < row["revealed_ci_high"], group
        assert row["revealed_ci_low"] <= row["target_angle"] <= row["revealed_ci_high"], group
        if row["revealed_identification"] == "point":
            assert row["revealed_ci_low"] < row["revealed_theta"] < row["revealed_ci_high"], group
        else:
            assert np.isnan(row["revealed_theta"]), group
    # exact oracles: every choice is best at their angle, so each gets a set (issue 19: the
    # consistency set with the likelihood set); the prosocials' is narrow, the competitors' is not
    prosocials = table.loc["prosocials"]
    assert prosocials["revealed_identification"] == "set" and prosocials["revealed_ci_high"] - prosocials["revealed_ci_low"] < 1
    assert table.loc["competitors", "revealed_identification"] == "set"


# ---------------------------------------------------------------------------------- the table as data
REQUIRED_KEYS = {
    "group", "n_agents", "n_valid", "invalid_rate", "decision_vr", "chance_vr", "slider_vr", "chance_slider_vr",
    "revealed_theta", "revealed_ci_low", "revealed_ci_high",
}


def test_a_finished_run_writes_its_group_table(tmp_path) -> None:
    import pandas as pd

    from hvae.experiments.runs import run_to_folder as run_with_groups

    run = RunFolder(run_with_groups(make_scenario(rounds=6), tmp_path / "run").path)
    written = pd.read_parquet(run.path / "groups.parquet")
    pd.testing.assert_frame_equal(written, group_summary(run))
    csv = pd.read_csv(run.path / "groups.csv")
    assert list(csv.columns) == list(written.columns) and csv["group"].tolist() == ["alt", "pro", "ind", "com"]
    assert np.allclose(csv["decision_vr"], written["decision_vr"])


def test_the_simulation_writes_no_analysis_and_a_failing_group_writer_keeps_the_run_complete(tmp_path) -> None:
    import json

    bare = play_scenario(make_scenario(rounds=2), tmp_path / "bare")
    assert bare.summary["status"] == "complete" and not (bare.path / "groups.parquet").exists()

    def broken(path) -> None:
        raise OSError("disk full")

    result = play_scenario(make_scenario(rounds=2), tmp_path / "broken", write_groups=broken)
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["groups_error"] == "OSError: disk full"


@pytest.mark.slow
def test_hvae_summary_json_has_one_object_per_group(tmp_path, cli) -> None:
    import json

    out = tmp_path / "run"
    scenario = tmp_path / "dictator.yaml"
    scenario.write_text(
        "name: dictator\nrounds: 6\nmenus: {kind: dictator, endowment: 10, step: 5}\nnetwork: {kind: complete}\n"
        "population:\n  - {name: splitters, count: 4, value: 45, decider: {kind: fixed, option: 1}}\n"
        "  - {name: givers, count: 4, value: altruistic, decider: oracle}\n"
    )
    assert cli("run", str(scenario), "--out", str(out), "--quiet", "--no-report").returncode == 0
    result = cli("summary", str(out), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["group"] for row in rows] == ["splitters", "givers"]
    for row in rows:
        assert REQUIRED_KEYS <= set(row)
        assert row["n_agents"] == 4 and row["n_valid"] == 24 and row["invalid_rate"] == 0.0
        assert row["slider_vr"] is None and row["chance_slider_vr"] is None  # no slider menus: not defined
    splitters, givers = rows
    # every option ties for a 45° agent on a dictator menu: decision VR undefined, angle not identified
    assert splitters["decision_vr"] is None and splitters["chance_vr"] is None
    assert splitters["revealed_theta"] is None and splitters["revealed_ci_low"] is None
    assert givers["decision_vr"] == 1.0 and givers["revealed_theta"] is None  # only bounded: a set
    assert givers["revealed_ci_high"] == 90.0 and 40 < givers["revealed_ci_low"] < 50
    text = cli("summary", str(out))
    rows = [line.split() for line in text.stdout.splitlines()]
    assert text.returncode == 0 and any(r and r[0] == "splitters" for r in rows) and "n/i" in text.stdout


@pytest.mark.slow
def test_hvae_summary_bad_input(tmp_path, cli) -> None:
    from conftest import assert_user_error

    assert_user_error(cli("summary", str(tmp_path / "missing")), "no such run folder")
    (tmp_path / "empty").mkdir()
    assert_user_error(cli("summary", str(tmp_path / "empty")), "not an hvae run folder")


def test_small_groups_get_a_decision_level_interval_that_covers() -> None:
    # issue 19 item 3: a t-interval over 2 agents, clipped to [0, 1], was [0, 1] in 69% of cases and
    # one agent got none. The cluster bootstrap over agents × decisions covers the mean of agents
    # whose decisions are independent draws (here: decision VR of each decision ~ Beta(4, 2), mean 2/3)
    from hvae.analysis.summary import SMALL_GROUP_METHOD, small_group_interval

    rng = np.random.default_rng(19)
    for agents in (1, 2):
        covered, widths = 0, []
        for draw in range(150):
            values = [rng.beta(4, 2, size=30) for _ in range(agents)]
            low, high, method = small_group_interval(values, resamples=1000, seed=draw)
            covered += low <= 2 / 3 <= high
            widths.append(high - low)
            assert method == SMALL_GROUP_METHOD
        assert covered / 150 >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 150), (agents, covered)
        assert max(widths) < 0.3  # never the uninformative [0, 1]
    low, high, reason = small_group_interval([np.array([0.5])])
    assert np.isnan(low) and np.isnan(high) and reason.startswith("no interval")
