"""Pre-play talk: pipeline order, message records, paired arms, promise keeping, resume after SIGKILL.

Scripted models stand in for an LLM: the ``replay`` backend (replies in order, one script per
agent) and the OpenAI-compatible stub server (tests/llm_stub_server.py) with a reply function that
reads the request — it names an option in talk and, when deciding, picks the option it named,
so every number below is known in advance.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, make_scenario
from llm_stub_server import RequestInfo, StubServer

from hvae.agents.llm.config import DEFAULT_RULE_LINE
from hvae.analysis.runfolder import RunFolder
from hvae.analysis.talk import ArmsMismatch, check_paired, promise_summary, promises, stated_option
from hvae.experiments.talk import resume_comparison, run_comparison
from hvae.scenarios.loader import load_scenario
from hvae.simulation.runner import resume_run, play_scenario

pytestmark = pytest.mark.llm

SETUP = ["I share fairly.", "Share fairly."]
VARYING = ["latency_s", "cache_hit"]  # wall-clock time, and whether a reply came from the cache


def talk_scenario(backend: dict, *, rounds: int = 2, turns: int = 2, llm: int = 2, rule: int = 0, **extra):
    population = [{"name": "llm", "count": llm, "value": "prosocial",
                   "decider": {"kind": "llm", "backend": "script", "order": "reverse_half"}}]
    if rule:
        population.append({"name": "rule", "count": rule, "value": "individualistic", "decider": "oracle"})
    data = {"rounds": rounds, "population": population, "network": {"kind": "complete"},
            "backends": {"script": backend}, "cache": {"enabled": False},
            "communication": {"turns": turns, **extra.pop("communication", {})}}
    data.update(extra)
    return make_scenario(**data)


def transcript(folder: RunFolder) -> list[dict]:
    return [json.loads(line) for line in (folder.path / "transcripts.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------- a scripted model
_AMOUNTS = re.compile(r"^- (\S+) for you, (\S+) for your partner$", re.M)
_LETTERED = re.compile(r"^([A-Z]): (\S+), (\S+)$", re.M)
_MY_PLAN = re.compile(r'You: "I will take (\S+), (\S+)\."')


def keeps_its_word(info: RequestInfo) -> str:
    """Talk: name one option (chosen by a hash of the prompt); decide: take the option it named."""
    text = info.last_user_text
    if info.kind == "talk":
        options = _AMOUNTS.findall(text)
        pick = int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(options)
        return f"I will take {options[pick][0]}, {options[pick][1]}."
    plan = _MY_PLAN.search(text)
    for letter, own, other in _LETTERED.findall(text):
        if plan and (own, other) == plan.groups():
            return letter
    return "A"


@pytest.fixture(scope="module")
def stub():
    with StubServer(reply=keeps_its_word) as server:
        yield server


def stub_backend(stub) -> dict:
    return {"kind": "openai", "model": "stub", "base_url": stub.base_url, "max_concurrency": 4}


# ---------------------------------------------------------------------------------- pipeline
def one_pair_one_round(tmp_path, replies: list[str]) -> RunFolder:
    """Two replay LLM agents (the same script each), slider item 1, options in canonical order, two messages."""
    scenario = make_scenario(
        rounds=1, network={"kind": "complete"}, cache={"enabled": False},
        population=[{"name": "llm", "count": 2, "value": "prosocial",
                     "decider": {"kind": "llm", "backend": "script", "order": "fixed"}}],
        backends={"script": {"kind": "replay", "replies": replies}}, communication={"turns": 2})
    return RunFolder(play_scenario(scenario, tmp_path / "run").path)


def test_scripted_talk_order_messages_and_decisions_line_up(tmp_path) -> None:
    # one pair of LLM agents, slider item 1 (A = 85,85; B = 85,76), options in canonical order
    folder = one_pair_one_round(tmp_path, [*SETUP, "I will take 85, 76.", "B"])
    said = folder.frame("messages")
    decisions = folder.decisions().sort_values("agent_id")
    first, second = int(said["speaker"].iloc[0]), int(said["speaker"].iloc[1])
    # two messages, alternating, from the pair that the decisions record
    assert said[["round", "pair", "turn"]].values.tolist() == [[0, 0, 0], [0, 0, 1]]
    assert {first, second} == {0, 1} and said["listener"].tolist() == [second, first]
    partner = dict(zip(decisions["agent_id"], decisions["partner_id"]))
    assert partner[first] == second and partner[second] == first
    assert said["text"].tolist() == ["I will take 85, 76.", "I will take 85, 76."]
    assert (said["speaker_kind"] == "llm").all() and (said["tokens"] > 0).all()
    # each agent: setup, then its talk turn, then its decision, which shows the conversation
    calls = transcript(folder)
    for agent in (first, second):
        mine = [c for c in calls if c["agent_id"] == agent]
        assert [c["phase"] for c in mine] == ["value", "goal", "talk", "decision"]
        assert mine[2]["attempt"] == (0 if agent == first else 1)  # the turn
        decision_prompt = mine[3]["messages"][-1]["content"]
        assert 'You: "I will take 85, 76."' in decision_prompt and 'Your partner: "I will take 85, 76."' in decision_prompt
    second_talk = next(c for c in calls if c["agent_id"] == second and c["phase"] == "talk")
    assert 'Your partner: "I will take 85, 76."' in second_talk["messages"][-1]["content"]  # it heard the first
    first_talk = next(c for c in calls if c["agent_id"] == first and c["phase"] == "talk")
    assert "Nobody has said anything yet." in first_talk["messages"][-1]["content"]
    assert decisions["choice"].tolist() == [1, 1] and decisions["valid"].all()
    kept = promises(folder)
    assert kept["stated_option"].tolist() == [1, 1] and kept["kept"].tolist() == [1.0, 1.0]
    # talk is accounted: 2 setup + 1 talk + 1 decision calls per agent
    assert folder.summary["llm_calls"] == 8 and folder.summary["talk_messages"] == 2


def test_rule_deciders_say_the_fixed_line_or_nothing(tmp_path) -> None:
    replies = [*SETUP] + ["I will take 85, 85.", "A"] * 4
    backend = {"kind": "replay", "replies": replies}
    folder = RunFolder(play_scenario(talk_scenario(backend, llm=2, rule=2, turns=3), tmp_path / "line").path)
    said = folder.frame("messages")
    rule_ids = set(folder.agents().query("group == 'rule'")["agent_id"])
    rule_lines = said[said["speaker"].isin(rule_ids)]
    assert len(rule_lines) > 0 and (rule_lines["text"] == DEFAULT_RULE_LINE).all()
    assert (rule_lines["speaker_kind"] == "rule").all() and rule_lines["tokens"].isna().all()
    pairs = said.groupby(["round", "pair"])["speaker"].agg(set)
    assert not any(p <= rule_ids for p in pairs)  # two rule deciders never talk
    silent = RunFolder(play_scenario(
        talk_scenario(backend, llm=2, rule=2, turns=3, communication={"rule_line": None}), tmp_path / "silent").path)
    quiet = silent.frame("messages")
    assert not quiet["speaker"].isin(rule_ids).any() and len(quiet) > 0
    # rule deciders decide exactly as without talk
    without = RunFolder(play_scenario(talk_scenario(backend, llm=2, rule=2, turns=0), tmp_path / "none").path)
    assert not (without.path / "messages.parquet").exists() and promises(without).empty
    for run in (folder, silent):
        rule_rows = run.decisions().query("decider == 'oracle'").reset_index(drop=True)
        pd.testing.assert_frame_equal(rule_rows, without.decisions().query("decider == 'oracle'").reset_index(drop=True))


def test_talk_and_no_talk_arms_play_the_same_games(tmp_path, stub) -> None:
    talk = RunFolder(play_scenario(talk_scenario(stub_backend(stub), llm=4, rule=2, rounds=4), tmp_path / "talk").path)
    none = RunFolder(play_scenario(talk_scenario(stub_backend(stub), llm=4, rule=2, rounds=4, turns=0), tmp_path / "none").path)
    same = ["round", "agent_id", "partner_id", "menu_id", "shown_order", "options_shown"]
    pd.testing.assert_frame_equal(talk.decisions()[same], none.decisions()[same])
    check_paired(none, talk)
    with pytest.raises(ArmsMismatch):
        check_paired(talk, none)
    # the scripted model keeps its word: every LLM decision after talk took the option it named
    summary = promise_summary(talk).set_index("group")
    assert summary.loc["llm", "n_stated"] == summary.loc["llm", "n_decisions"] == 16
    assert summary.loc["llm", "kept_rate"] == 1.0 and summary.loc["llm", "chance_kept_rate"] == pytest.approx(1 / 9)
    # without talk it has no plan and takes the first option shown
    llm_none = none.decisions().query("decider == 'llm'")
    assert (llm_none["chosen_position"] == 0).all()
    # the baseline (issue 19 item 4): how often the no-talk choice of the same agent in the same
    # round matches the option it stated with talk; Δ = kept − baseline
    stated = promises(talk).set_index(["round", "agent_id"])["stated_option"]
    plain = llm_none.set_index(["round", "agent_id"])["choice"].reindex(stated.index)
    baseline = float((plain.to_numpy() == stated.to_numpy()).mean())
    paired = promise_summary(talk, none).set_index("group").loc["llm"]
    assert paired["baseline"] == "no-talk arm" and paired["baseline_kept_rate"] == pytest.approx(baseline)
    assert paired["delta_kept"] == pytest.approx(1.0 - baseline) and paired["delta_kept_low"] <= 1.0 - baseline
    # without the arm: Σ_j P(state j) P(choose j) per menu, from the talk arm itself
    alone = summary.loc["llm"]
    assert alone["baseline"] == "independence" and 0 < alone["baseline_kept_rate"] < 1


def test_keeping_by_a_model_that_ignores_the_conversation_is_at_its_baseline(tmp_path) -> None:
    # issue 19 item 4: a server whose choices ignore the conversation (β = 0.1) "kept" 0.31-0.42
    # against a 1/k of 0.11; against the paired no-talk arm the effect of talk is about zero
    from hvae.agents.llm.oracle_server import OracleModel, OracleServer

    with OracleServer(OracleModel(beta=0.1, seed=3)) as server:
        backend = {"kind": "openai", "model": "hvae-oracle", "base_url": server.base_url, "max_concurrency": 4}
        talk = RunFolder(play_scenario(talk_scenario(backend, llm=6, rounds=12, seed=2), tmp_path / "talk").path)
        none = RunFolder(play_scenario(talk_scenario(backend, llm=6, rounds=12, seed=2, turns=0), tmp_path / "none").path)
    row = promise_summary(talk, none).set_index("group").loc["llm"]
    assert row["n_stated"] >= 30 and row["kept_rate"] > 2 * row["chance_kept_rate"]  # well above 1/k
    assert row["delta_kept_low"] <= 0.0 <= row["delta_kept_high"]
    assert abs(row["delta_kept"]) < 0.2


def test_talk_replies_come_from_the_cache_the_second_time(tmp_path, stub) -> None:
    backend = stub_backend(stub)
    scenario = talk_scenario(backend, llm=2, rule=2, rounds=2, cache={"enabled": True, "path": str(tmp_path / "cache")})
    first = RunFolder(play_scenario(scenario, tmp_path / "one").path)
    served = len(stub.log)
    again = RunFolder(play_scenario(scenario, tmp_path / "two").path)
    assert len(stub.log) == served  # not one request reached the server
    assert again.summary["llm_calls"] == 0 and again.summary["llm_cache_hits"] == first.summary["llm_calls"] > 0
    pd.testing.assert_frame_equal(first.frame("messages").drop(columns=VARYING), again.frame("messages").drop(columns=VARYING))
    llm = again.frame("messages").query("speaker_kind == 'llm'")
    assert llm["cache_hit"].all()
    talk_calls = [c for c in transcript(first) if c["phase"] == "talk"]
    assert len(talk_calls) == len(llm) and first.summary["tokens_out"] >= sum(c["tokens_out"] for c in talk_calls)


# ---------------------------------------------------------------------------------- promise measure
def test_stated_option_reads_consecutive_amounts() -> None:
    menu = np.array([[85, 85], [85, 76], [85, 68]], dtype=float)
    assert stated_option("I will take 85, 76.", menu) == 1
    assert stated_option("85 for me and 68 for you", menu) == 2
    assert stated_option("first 85, 85 then maybe 85, 68", menu) == 2  # the last one named
    assert stated_option("You get 76, I keep 85", menu) is None  # the other way round is not read
    assert stated_option("I will be fair.", menu) is None and stated_option(None, menu) is None


def test_broken_promises_are_counted(tmp_path) -> None:
    # says B (85, 76) on slider item 1, then chooses C
    folder = one_pair_one_round(tmp_path, [*SETUP, "I will take 85, 76.", "C"])
    summary = promise_summary(folder).iloc[0]
    assert (summary["n_stated"], summary["kept_rate"]) == (2, 0.0)


# ---------------------------------------------------------------------------------- comparison
@pytest.mark.slow
def test_talk_comparison_from_the_command_line(tmp_path, stub, cli) -> None:
    scenario = tmp_path / "talk.yaml"
    scenario.write_text(textwrap.dedent(f"""\
        name: talk_cli
        seed: 4
        rounds: 6
        population:
          - {{name: llm_pro, count: 4, value: prosocial, decider: {{kind: llm, backend: stub}}}}
          - {{name: llm_com, count: 2, value: competitive, decider: {{kind: llm, backend: stub}}}}
          - {{name: oracle, count: 2, value: individualistic, decider: oracle}}
        backends:
          stub: {{kind: openai, model: stub, base_url: "{stub.base_url}"}}
        communication: {{turns: 2, compare: true}}
        cache: {{enabled: false}}
        """))
    out = tmp_path / "cmp"
    result = cli("run", str(scenario), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "no talk arm" in result.stdout and f"report: {out / 'report.html'}" in result.stdout
    assert json.loads((out / "comparison.json").read_text())["status"] == "complete"
    for arm in ("no_talk", "talk"):
        assert RunFolder(out / arm).status == "complete" and (out / arm / "report.html").is_file()
    groups = pd.read_parquet(out / "talk_groups.parquet")
    assert set(groups["arm"]) == {"no_talk", "talk"} and len(groups) == 6
    # the comparison's figures are the arms' own per-group figures
    for arm in ("no_talk", "talk"):
        own = pd.read_parquet(out / arm / "groups.parquet").set_index("group")["decision_vr"]
        mine = groups[groups["arm"] == arm].set_index("group")["decision_vr"]
        pd.testing.assert_series_equal(mine.sort_index(), own.sort_index(), check_names=False)
    oracle = groups[groups["group"] == "oracle"].iloc[0]
    assert oracle["delta_decision_vr"] == 0.0  # rule deciders act the same with or without talk
    assert pd.read_parquet(out / "talk_promises.parquet").set_index("group").loc["llm_pro", "kept_rate"] == 1.0
    html = (out / "report.html").read_text()
    for stem in ("talk_vr", "talk_value_pairs", "talk_promises"):
        assert f'id="fig-{stem}"' in html and (out / "report_figures" / f"{stem}.png").is_file()
    # a comparison folder is reported again as a comparison
    again = cli("report", str(out))
    assert again.returncode == 0 and "report.html" in again.stdout


def test_comparison_settings_are_checked(tmp_path, cli) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nrounds: 2\npopulation:\n  - {name: a, count: 2, value: 0, decider: oracle}\n"
                   "communication: {compare: true}\n")
    assert_user_error(cli("validate", str(bad)), "communication.compare needs communication.turns > 0")
    edges = tmp_path / "edges.yaml"
    edges.write_text("name: e\nrounds: 2\nmatching: all_edges\npopulation:\n  - {name: a, count: 2, value: 0, decider: oracle}\n"
                     "communication: {turns: 2}\n")
    assert_user_error(cli("validate", str(edges)), "communication needs matching: random")
    assert_user_error(cli("validate", "public_goods", "--set", "communication.turns=1"),
                      "communication is for two-player games")


# ---------------------------------------------------------------------------------- resume
CHILD = textwrap.dedent(
    """
    import sys, time
    from hvae.scenarios.loader import load_scenario
    from hvae.simulation.runner import play_scenario

    def report(model):
        print(model.round, flush=True)
        time.sleep(0.5)  # the parent kills it during this pause

    play_scenario(load_scenario(sys.argv[2]), sys.argv[1], on_round=report)
    """
)
TABLES = ("decisions", "rounds", "agents", "messages")


@pytest.mark.slow
def test_talk_run_killed_with_sigkill_resumes_with_identical_tables(tmp_path, stub) -> None:
    from hvae.scenarios.loader import dump_scenario

    # checkpoints every 3 rounds, rows every round: the kill leaves a round's rows past the checkpoint
    scenario = talk_scenario(stub_backend(stub), llm=4, rule=2, rounds=8, output={"flush_every": 1, "checkpoint_every": 3})
    path = tmp_path / "talk.yaml"
    path.write_text(dump_scenario(scenario))
    whole = RunFolder(play_scenario(load_scenario(path), tmp_path / "whole").path)
    folder = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if int(line) >= 4:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert json.loads((folder / "summary.json").read_text())["status"] == "running"
    assert RunFolder(folder).frame("messages")["round"].max() >= 3  # written after the last checkpoint (round 3)
    resume_run(folder)
    resumed = RunFolder(folder)
    assert resumed.status == "complete"
    for name in TABLES:
        expected, actual = whole.frame(name), resumed.frame(name)
        drop = [c for c in VARYING if c in expected]
        pd.testing.assert_frame_equal(expected.drop(columns=drop), actual.drop(columns=drop), obj=name)
    # the transcript holds each talk call once: the killed round's lines were cut on resume
    talk_lines = [c for c in transcript(resumed) if c["phase"] == "talk"]
    assert len(talk_lines) == int((resumed.frame("messages")["speaker_kind"] == "llm").sum())


@pytest.mark.slow
def test_interrupted_comparison_resumes(tmp_path, stub) -> None:
    from hvae.simulation.runner import RunInterrupted

    scenario = talk_scenario(stub_backend(stub), llm=2, rule=2, rounds=3, communication={"compare": True})

    def stop(model):
        if model.round == 2:
            raise KeyboardInterrupt

    out = tmp_path / "cmp"
    with pytest.raises(RunInterrupted) as stopped:
        run_comparison(scenario, out, on_round=stop)
    assert stopped.value.path == out  # the hint names the comparison folder, not the arm
    assert json.loads((out / "comparison.json").read_text())["status"] == "interrupted"  # never "complete" before both arms are
    assert RunFolder(out / "no_talk").status == "interrupted" and not (out / "talk").exists()
    result = resume_comparison(out)
    assert result.report.is_file() and RunFolder(out / "talk").status == "complete"
    assert len(RunFolder(out / "talk").frame("messages")) > 0


def test_visible_values_tell_each_speaker_its_partners_value(tmp_path) -> None:
    replies = [*SETUP] + ["I will take 85, 85.", "A"] * 2
    backend = {"kind": "replay", "replies": replies}
    shown = RunFolder(play_scenario(
        talk_scenario(backend, llm=2, rule=2, rounds=1, communication={"visible_values": True}), tmp_path / "shown").path)
    hidden = RunFolder(play_scenario(talk_scenario(backend, llm=2, rule=2, rounds=1), tmp_path / "hidden").path)
    talk_prompts = {name: [c["messages"][-1]["content"] for c in transcript(run) if c["phase"] == "talk"]
                    for name, run in (("shown", shown), ("hidden", hidden))}
    assert talk_prompts["shown"] and talk_prompts["hidden"]
    assert all("Your partner's value system: " in p for p in talk_prompts["shown"])
    assert not any("value system: " in p for p in talk_prompts["hidden"])
    # each LLM speaker is told exactly its own partner's value
    said = shown.frame("messages").query("speaker_kind == 'llm'")
    listener_of = dict(zip(said["speaker"], said["listener"]))  # one round: one partner each
    angles = dict(zip(shown.agents()["agent_id"], shown.agents()["value_angle"]))
    for call in (c for c in transcript(shown) if c["phase"] == "talk"):
        expected = "individualistic" if angles[listener_of[call["agent_id"]]] == 0 else "prosocial"
        assert f"Your partner's value system: {expected}" in call["messages"][-1]["content"]
