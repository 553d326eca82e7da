"""LLM decider with scripted (replay) models: pipeline order, counterbalancing, every invalid path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_scenario

from hvae.agents.llm import prompts
from hvae.agents.llm.parsing import parse_reply
from hvae.analysis.runfolder import RunFolder
from hvae.simulation.model import HvaeModel
from hvae.simulation.runner import play_scenario

pytestmark = pytest.mark.llm

SETUP = ["I care about others.", "My goal is that the other person gets as much as possible."]


def llm_scenario(replies: list[str], *, rounds: int = 1, count: int = 1, order: str = "fixed", reasks: int = 2,
                 fallback: str = "random", goal_prompting: bool = True, menus: dict | None = None, value="altruistic"):
    return make_scenario(
        rounds=rounds,
        population=[
            {"name": "llm", "count": count, "value": value, "decider": {
                "kind": "llm", "backend": "script", "order": order, "reasks": reasks,
                "fallback": fallback, "goal_prompting": goal_prompting}},
            {"name": "partner", "count": 1, "value": "prosocial", "decider": {"kind": "fixed", "option": 0}},
        ],
        network={"kind": "complete"},
        matching="all_edges",
        menus=menus or {"kind": "slider"},
        backends={"script": {"kind": "replay", "replies": replies}},
        cache={"enabled": False},
    )


def run(tmp_path, scenario) -> RunFolder:
    return RunFolder(play_scenario(scenario, tmp_path / "run").path)


def llm_rows(run_folder: RunFolder) -> pd.DataFrame:
    decisions = run_folder.decisions()
    return decisions[decisions["group"] == "llm"].sort_values(["round", "agent_id"]).reset_index(drop=True)


def transcript(run_folder: RunFolder) -> list[dict]:
    return [json.loads(line) for line in (run_folder.path / "transcripts.jsonl").read_text().splitlines()]


def test_pipeline_order_value_then_role_and_goal_then_decision(tmp_path) -> None:
    folder = run(tmp_path, llm_scenario([*SETUP, "B"]))
    calls = transcript(folder)
    assert [c["phase"] for c in calls] == ["value", "goal", "decision"]
    value_call, goal_call, decision_call = calls
    assert "altruistic" in value_call["messages"][-1]["content"]
    assert "Describe the traits" in value_call["messages"][-1]["content"]
    # role instruction then the goal prompt, after the agent's own description
    roles = [m["role"] for m in goal_call["messages"]]
    assert roles == ["user", "assistant", "user", "user"]
    assert goal_call["messages"][1]["content"] == SETUP[0]
    assert goal_call["messages"][2]["content"] == prompts.ROLE_INSTRUCTION
    assert "one sentence" in goal_call["messages"][3]["content"]
    # the decision sees the setup conversation and the goal restated
    decision_text = decision_call["messages"][-1]["content"]
    assert SETUP[1] in decision_text and "A: 85, 85" in decision_text
    assert [m["role"] for m in decision_call["messages"]] == ["user", "assistant", "user", "user", "assistant", "user"]
    assert decision_call["messages"][4]["content"] == SETUP[1]
    setup = folder.frame("llm_agents")
    assert setup.loc[0, "description"] == SETUP[0] and setup.loc[0, "goal"] == SETUP[1]
    assert llm_rows(folder).loc[0, "choice"] == 1


def test_without_goal_prompting_the_fixed_goal_is_used(tmp_path) -> None:
    folder = run(tmp_path, llm_scenario([SETUP[0], "C"], goal_prompting=False))
    calls = transcript(folder)
    assert [c["phase"] for c in calls] == ["value", "decision"]
    assert prompts.FIXED_GOAL in calls[1]["messages"][-1]["content"]
    assert folder.frame("llm_agents").loc[0, "goal"] == prompts.FIXED_GOAL


@pytest.mark.parametrize("order", ["fixed", "reverse_half", "shuffle"])
def test_counterbalancing_maps_letters_back(tmp_path, order: str) -> None:
    # Every agent answers "A" (the first option shown): the recorded choice must be the option
    # that was displayed first, whatever the order.
    scenario = llm_scenario([*SETUP] + ["A"] * 6, rounds=6, count=1, order=order)
    folder = run(tmp_path, scenario)
    rows = llm_rows(folder)
    menus = folder.menus()
    for _, row in rows.iterrows():
        shown = [int(x) for x in row["shown_order"].split(",")]
        assert sorted(shown) == list(range(9))
        assert row["choice"] == shown[0]
        assert row["chosen_position"] == 0
        options = menus[menus["menu_id"] == row["menu_id"]].sort_values("option")[["self", "other"]].to_numpy()
        first_shown = row["options_shown"].split("|")[0]
        assert first_shown == f"{int(options[shown[0], 0])},{int(options[shown[0], 1])}"
    if order == "fixed":
        assert (rows["choice"] == 0).all()


@pytest.mark.slow
def test_reverse_half_reverses_about_half(tmp_path) -> None:
    scenario = llm_scenario([*SETUP] + ["A"] * 40, rounds=40, order="reverse_half")
    rows = llm_rows(run(tmp_path, scenario))
    reversed_share = (rows["shown_order"] == "8,7,6,5,4,3,2,1,0").mean()
    assert set(rows["shown_order"]) == {"0,1,2,3,4,5,6,7,8", "8,7,6,5,4,3,2,1,0"}
    assert 0.2 < reversed_share < 0.8


INVALID = {
    "empty": "",
    "refusal": "I'm sorry, but I cannot make this choice.",
    "two letters": "A or B",
    "outside menu": "K",
    "malformed json": '{"choice": "B"',
    "overlong": "B " + "because " * 400,
}


@pytest.mark.parametrize("kind", list(INVALID))
def test_each_invalid_reply_is_reasked_then_recovered(tmp_path, kind: str) -> None:
    folder = run(tmp_path, llm_scenario([*SETUP, INVALID[kind], "D"], reasks=2))
    row = llm_rows(folder).loc[0]
    assert row["valid"] and row["choice"] == 3 and row["attempts"] == 2
    calls = transcript(folder)
    assert calls[-1]["phase"] == "reask"
    assert "could not be used" in calls[-1]["messages"][-1]["content"]
    assert parse_reply(INVALID[kind], 9).problem.split(" ")[0] in calls[-1]["messages"][-1]["content"]


@pytest.mark.parametrize("kind", list(INVALID))
def test_each_invalid_reply_ends_in_the_fallback(tmp_path, kind: str) -> None:
    folder = run(tmp_path, llm_scenario([*SETUP] + [INVALID[kind]] * 3, reasks=2))
    row = llm_rows(folder).loc[0]
    assert not row["valid"] and row["fallback"] == "random" and row["attempts"] == 3
    assert 0 <= row["choice"] < 9
    assert row["raw_reply"] == INVALID[kind]
    summary = folder.summary
    assert summary["llm_invalid"] == 1 and summary["llm_fallbacks"] == 1 and summary["llm_reasks"] == 2
    assert summary["status"] == "complete_with_warnings"  # its one LLM decision is invalid: below the valid-share floor


def test_skip_fallback_voids_the_pair(tmp_path) -> None:
    folder = run(tmp_path, llm_scenario([*SETUP, "nothing"], reasks=0, fallback="skip"))
    rows = folder.decisions().set_index("group")
    assert rows.loc["llm", "choice"] == -1 and not rows.loc["llm", "valid"]
    assert rows.loc["partner", "pair_skipped"] and rows.loc["partner", "payoff"] == 0


def test_backend_failure_is_an_invalid_decision_not_a_crash(tmp_path) -> None:
    # The script runs out after setup: every decision call raises inside the client.
    folder = run(tmp_path, llm_scenario(SETUP, rounds=2))
    rows = llm_rows(folder)
    assert (~rows["valid"]).all() and rows["reason"].str.startswith("backend error").all()
    assert folder.summary["status"] == "complete_with_warnings" and folder.summary["llm_errors"] >= 2


def test_history_is_shown_in_the_prompt(tmp_path) -> None:
    scenario = llm_scenario([*SETUP, "A", "A"], rounds=2, menus={"kind": "dictator", "endowment": 10, "step": 5})
    calls = transcript(run(tmp_path, scenario))
    assert "your partner gave you" not in calls[2]["messages"][-1]["content"]
    assert "round 1: your partner gave you 0 coins and kept 10" in calls[3]["messages"][-1]["content"]


def test_numeric_angles_are_worded_with_their_trade_off() -> None:
    assert "0.58 of a coin" in prompts.value_wording(30.0)
    assert prompts.value_wording(45.0).startswith("prosocial")
    assert prompts.value_wording(90.0).startswith("altruistic")
    assert "as few coins as possible" in prompts.value_wording(-90.0)
    assert "11.43 of a coin" in prompts.value_wording(85.0)
    assert "costs you" in prompts.value_wording(-20.0)


def test_llm_agents_never_have_two_calls_in_flight() -> None:
    from hvae.agents.llm import client as client_module

    scenario = llm_scenario([*SETUP] + ["A"] * 3, rounds=3, count=3)
    model = HvaeModel(scenario)
    in_flight: dict[int, int] = {}
    peak: dict[int, int] = {}
    original = client_module.HvaeClient.complete

    async def tracking_create(self, messages, settings, *args):
        agent = settings.agent_id
        in_flight[agent] = in_flight.get(agent, 0) + 1
        peak[agent] = max(peak.get(agent, 0), in_flight[agent])
        try:
            import asyncio

            await asyncio.sleep(0.001)
            return await original(self, messages, settings, *args)
        finally:
            in_flight[agent] -= 1

    client_module.HvaeClient.complete = tracking_create
    try:
        model.run(3)
    finally:
        client_module.HvaeClient.complete = original
        model.close()
    assert peak and max(peak.values()) == 1
    assert np.array_equal(sorted(peak), sorted(a.index for a in model.agents if a.group == "llm"))


def test_collection_pause_restores_the_collector_after_the_last_overlapping_round() -> None:
    import gc

    from hvae.agents.llm.decider import collection_paused

    assert gc.isenabled()
    with collection_paused():
        with collection_paused():  # two deciders' rounds overlapping on one event loop
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first round is still in flight
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # a collector the user turned off stays off
    finally:
        gc.enable()
