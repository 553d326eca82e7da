"""Surrogate agents in a run: reproducible, resumable, recorded like LLM agents, and refused with one line when unusable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, make_scenario

from hvae.agents.surrogate import PolicyUnit, SurrogatePolicy, choice_probabilities, value_key
from hvae.analysis.runfolder import RunFolder
from hvae.simulation.runner import RunInterrupted, play_scenario, resume_run

ANGLES = {"prosocial": 45.0, "individualistic": 0.0}
UNIT = {"beta": 0.2, "position": 1.2, "invalid_rate": 0.1}


@pytest.fixture
def policy_file(tmp_path):
    units = {value_key(angle): PolicyUnit(theta=angle, **UNIT) for angle in ANGLES.values()}
    path = tmp_path / "policy.yaml"
    SurrogatePolicy(by="value", units=units, provenance={"made_by": "test"}).save(path)
    return path


def _scenario(policy, **changes):
    decider = {"kind": "surrogate", "policy": str(policy)}
    data = {
        "rounds": 24, "seed": 9, "network": {"kind": "watts_strogatz", "k": 4, "p": 0.2}, "matching": "random",
        "population": [{"name": name, "count": 10, "value": name, "decider": decider} for name in ANGLES],
        "dynamics": {"rule": "imitation", "every": 4, "strength": 2},
        **changes,
    }
    return make_scenario(**data)


def test_same_seed_same_run_and_resume_after_an_interrupt_gives_identical_tables(policy_file, tmp_path):
    full = RunFolder(play_scenario(_scenario(policy_file), tmp_path / "a").path)
    again = RunFolder(play_scenario(_scenario(policy_file), tmp_path / "b").path)

    def interrupt(model):
        if model.round == 10:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(_scenario(policy_file), tmp_path / "c", on_round=interrupt)
    resume_run(tmp_path / "c")
    resumed = RunFolder(tmp_path / "c")
    assert resumed.status == "complete"
    for name in ("decisions", "rounds", "agents", "value_changes"):
        pd.testing.assert_frame_equal(full.frame(name), again.frame(name), obj=name)
        pd.testing.assert_frame_equal(full.frame(name), resumed.frame(name), obj=name)
    assert len(full.frame("value_changes")) > 0  # values moved, and the agents followed their new value's unit


def test_recorded_displays_and_choices_follow_the_policy(policy_file, tmp_path):
    run = RunFolder(play_scenario(_scenario(policy_file, dynamics={"rule": "none"}, rounds=60), tmp_path / "r").path)
    decisions, menus = run.decisions(), run.menus()
    assert decisions["shown_order"].notna().all()
    assert {"8,7,6,5,4,3,2,1,0", "0,1,2,3,4,5,6,7,8"} == set(decisions["shown_order"])
    n = len(decisions)
    invalid = 1 - decisions["valid"].mean()
    assert abs(invalid - UNIT["invalid_rate"]) < 4 * np.sqrt(0.1 * 0.9 / n)
    assert set(decisions.loc[~decisions["valid"], "fallback"]) == {"random"}
    # the first-position share is what the policy predicts for the displays recorded
    valid = decisions[decisions["valid"]]
    options = {m: rows[["self", "other"]].to_numpy(float) for m, rows in menus.sort_values("option").groupby("menu_id")}
    first = valid["shown_order"].str.split(",").str[0].astype(int).to_numpy()
    p_first = np.array([
        choice_probabilities(np.array([theta]), np.array([UNIT["beta"]]), np.array([UNIT["position"]]), np.zeros(1),
                             options[str(m)], np.array([f]), np.zeros(1))[0, f]
        for theta, m, f in zip(valid["value_angle"], valid["menu_id"], first)
    ])
    observed = int((valid["chosen_position"] == 0).sum())
    assert abs(observed - p_first.sum()) < 4 * np.sqrt((p_first * (1 - p_first)).sum())
    no_bonus = np.array([
        choice_probabilities(np.array([theta]), np.array([UNIT["beta"]]), np.zeros(1), np.zeros(1), options[str(m)],
                             np.array([f]), np.zeros(1))[0, f]
        for theta, m, f in zip(valid["value_angle"], valid["menu_id"], first)
    ])
    assert observed > no_bonus.sum() + 4 * np.sqrt((no_bonus * (1 - no_bonus)).sum())


def test_surrogate_groups_get_the_first_position_figures(policy_file, tmp_path):
    from hvae.cli.tables import summary_table_data

    folder = play_scenario(_scenario(policy_file, dynamics={"rule": "none"}), tmp_path / "r").path
    _, table, bias = summary_table_data(folder)
    assert set(bias["group"]) == set(ANGLES)
    assert table.set_index("group").loc[list(ANGLES), "first_share"].notna().all()


@pytest.mark.slow
def test_unusable_policies_are_one_line_errors(policy_file, tmp_path, cli):
    import yaml

    def scenario_file(**changes) -> str:
        data = _scenario(policy_file).model_dump(mode="json", exclude_none=True)
        data.update(changes)
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    decider = {"kind": "surrogate", "policy": str(policy_file)}
    altruists = [{"name": "alt", "count": 10, "value": "altruistic", "decider": decider}]
    assert_user_error(cli("validate", scenario_file(population=altruists)), "group 'alt' (policy")
    assert_user_error(cli("run", scenario_file(population=altruists), "--out", str(tmp_path / "run")), "no unit for value '90'")
    assert not (tmp_path / "run").exists()
    missing = [{**altruists[0], "decider": {**decider, "policy": str(tmp_path / "nope.yaml")}}]
    assert_user_error(cli("validate", scenario_file(population=missing)), "no such policy file")
    influence = {"rule": "influence", "every": 4, "strength": 0.5}
    assert_user_error(cli("validate", scenario_file(dynamics=influence)), "cannot follow the influence dynamics")


def test_coded_display_orders_record_the_same_rows_as_plain_lists(policy_file, tmp_path, monkeypatch):
    """The surrogate returns its display orders and fallbacks as codes (no string per decision);
    the run's tables must be exactly those of the same decisions given as plain lists."""
    from hvae.agents.deciders import CodedColumn
    from hvae.agents.surrogate import SurrogateDecider

    scenario = _scenario(policy_file, rounds=6)
    coded = RunFolder(play_scenario(scenario, tmp_path / "coded").path)
    decide = SurrogateDecider.decide

    def as_lists(self, request, rng):
        decisions = decide(self, request, rng)
        assert all(isinstance(v, CodedColumn) for v in decisions.metadata.values())
        decisions.metadata = {name: list(values) for name, values in decisions.metadata.items()}
        return decisions

    monkeypatch.setattr(SurrogateDecider, "decide", as_lists)
    plain = RunFolder(play_scenario(scenario, tmp_path / "plain").path)
    for table in ("decisions", "rounds"):
        a, b = getattr(coded, table)(), getattr(plain, table)()
        assert len(a) and a.columns.tolist() == b.columns.tolist()
        pd.testing.assert_frame_equal(a, b)
    assert coded.decisions()["shown_order"].nunique() == 2 and not coded.decisions()["fallback"].dropna().empty
