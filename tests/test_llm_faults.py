"""Fault injection: a run through the ``openai`` backend against a misbehaving server.

The stub server (:mod:`llm_stub_server`) answers decision requests with timeouts, 500s, 429s,
non-JSON bodies and unusable replies, following a fixed per-call plan. The run must still
complete with one decision row per matched agent per round, count every retry, every invalid
decision and every failed call, and never write the API key anywhere in the run folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import assert_user_error
from llm_stub_server import RETRYABLE, StubServer, plan_behaviour

from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import play_scenario

pytestmark = pytest.mark.llm

KEY_ENV = "HVAE_FAULT_TEST_API_KEY"
SECRET = "sk-hvae-fault-test-9f8e7d6c5b4a"
AGENTS = 4
ROUNDS = 6
RETRIES = 2
TIMEOUT_S = 1.0  # generous: a slow CI machine must not turn an "ok" into a timeout

# One entry per distinct decision call (first-seen order); an entry walks along the retries of
# that call (the same request body). Calls beyond the plan are answered "ok".
DECISION_PLAN = [
    ("http500", "ok"),  # retried once, then fine
    ("http429", "ok"),  # retried once
    ("delay", "ok"),  # past the client timeout, retried once
    ("garbage",),  # 200 with a non-JSON body: not retryable -> failed call -> invalid decision
    ("http500", "http429", "http500"),  # 2 retries, then out of retries -> failed -> invalid
    ("invalid",),  # "I refuse" -> re-ask (see REASK_PLAN)
    ("invalid",),
    ("ok",),
    ("delay", "http500", "ok"),  # 2 retries, then fine
    ("invalid",),
]
REASK_PLAN = [
    ("ok",),  # the re-ask works: valid decision
    ("http429", "invalid"),  # one retry, then still unusable: invalid decision
    ("garbage",),  # the re-ask fails: invalid decision
]
EXPECTED_RETRIES = 1 + 1 + 1 + 2 + 2 + 1  # retryable failures that still had a retry left
EXPECTED_FAILED_CALLS = 3  # decision garbage, decision out of retries, re-ask garbage
EXPECTED_INVALID = 4  # the failed calls + the re-ask that stayed unusable
EXPECTED_REASKS = 3


def _behaviour():
    decisions = plan_behaviour(DECISION_PLAN)
    reasks = plan_behaviour(REASK_PLAN)
    return lambda info: reasks(info) if info.kind == "reask" else decisions(info)


def _scenario_data(base_url: str, api_key_env: str | None) -> dict:
    backend = {
        "kind": "openai", "base_url": base_url, "model": "stub", "timeout_s": TIMEOUT_S,
        "retries": RETRIES, "backoff_s": 0.01, "max_concurrency": 4,
    }
    if api_key_env:
        backend["api_key_env"] = api_key_env
    return {
        "name": "llm-faults",
        "seed": 5,
        "rounds": ROUNDS,
        "population": [
            {"name": "l", "count": AGENTS, "value": "prosocial",
             "decider": {"kind": "llm", "backend": "srv", "reasks": 1, "order": "fixed"}},
        ],
        "network": {"kind": "complete"},
        "matching": "all_edges",
        "menus": {"kind": "slider"},
        "backends": {"srv": backend},
        "cache": {"enabled": False},
    }


def _transcript(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "transcripts.jsonl").read_text().splitlines() if line.strip()]


@dataclass
class FaultyRun:
    run_dir: Path
    served: list
    counts: dict
    retried: int
    auth: set


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory) -> FaultyRun:
    """One run against the faulty stub, shared by the tests below (it takes a few seconds)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(KEY_ENV, SECRET)
        with StubServer(behaviour=_behaviour(), delay_s=TIMEOUT_S + 0.5) as stub:
            scenario = validate_data(_scenario_data(stub.base_url, KEY_ENV), "faults")
            result = play_scenario(scenario, tmp_path_factory.mktemp("faults") / "run")
            return FaultyRun(result.path, stub.served(), dict(stub.counts), stub.retried_failures(RETRIES), set(stub.auth_headers))


@pytest.mark.slow
def test_faulty_server_run_completes_and_counts_everything(faulty_run: FaultyRun) -> None:
    served, counts, retried, auth = faulty_run.served, faulty_run.counts, faulty_run.retried, faulty_run.auth
    run_dir = faulty_run.run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["rounds_completed"] == ROUNDS

    # the stub really served every fault kind, and the key really was sent (to the stub only)
    for behaviour in ("ok", "delay", "http500", "http429", "garbage", "invalid"):
        assert counts.get(behaviour, 0) > 0, counts
    assert counts["setup"] == 2 * AGENTS
    assert auth == {f"Bearer {SECRET}"}

    # no round lost or duplicated: all_edges on a complete graph -> every agent decides every round
    decisions = pd.read_parquet(run_dir / "decisions.parquet")
    assert len(decisions) == ROUNDS * AGENTS == summary["n_decisions"]
    assert not decisions.duplicated(["round", "agent_id"]).any()
    per_round = decisions.groupby("round")["agent_id"].apply(lambda ids: sorted(ids.tolist()))
    assert per_round.index.tolist() == list(range(ROUNDS))
    assert all(ids == list(range(AGENTS)) for ids in per_round)
    assert (decisions["n_partners"] == AGENTS - 1).all()
    assert decisions["partner_id"].eq(-1).all()

    # retries: every retryable failure that still had a retry left, nothing else
    retryable_served = sum(1 for s in served if s.behaviour in RETRYABLE)
    assert summary["llm_retries"] == retried == EXPECTED_RETRIES
    assert retryable_served == EXPECTED_RETRIES + 1  # the last 500 of the exhausted call

    # invalid decisions: summary, decisions.parquet and the plan agree
    invalid = int((~decisions["valid"]).sum())
    assert summary["llm_invalid"] == invalid == EXPECTED_INVALID
    assert summary["n_invalid"] == invalid
    assert summary["llm_reasks"] == EXPECTED_REASKS
    assert summary["llm_fallbacks"] == invalid  # fallback: random
    assert decisions.loc[~decisions["valid"], "fallback"].eq("random").all()
    assert decisions.loc[decisions["valid"], "fallback"].isna().all()
    backend_errors = decisions.loc[~decisions["valid"], "reason"].str.startswith("backend error").sum()
    assert backend_errors == EXPECTED_FAILED_CALLS
    assert (decisions.loc[~decisions["valid"], "raw_reply"] == "I refuse").sum() == 1

    # transcripts: one error record per failed call, retries add up, nothing lost
    calls = _transcript(run_dir)
    errors = [c for c in calls if c["error"]]
    assert len(errors) == summary["llm_errors"] == EXPECTED_FAILED_CALLS
    assert all(c["reply"] is None and c["phase"] in ("decision", "reask") for c in errors)
    assert sum(1 for c in errors if "JSON" in c["error"] or "Decode" in c["error"]) >= 1
    # retries of calls that succeeded in the end (failed calls: see the test below)
    assert sum(c["retries"] for c in calls if not c["error"]) == EXPECTED_RETRIES - 2
    decision_calls = [c for c in calls if c["phase"] == "decision"]
    assert len(decision_calls) == ROUNDS * AGENTS
    assert len([c for c in calls if c["phase"] == "reask"]) == EXPECTED_REASKS
    # every request that reached the server is either a transcribed call or one of its retries
    assert len(served) == len(decision_calls) + EXPECTED_REASKS + summary["llm_retries"]

    # the API key is nowhere in the run folder (any file, text or binary)
    secret = SECRET.encode()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "transcripts.jsonl" for p in files)
    leaked = [str(p) for p in files if secret in p.read_bytes()]
    assert not leaked, leaked


def test_transcript_retries_add_up_to_summary(faulty_run: FaultyRun) -> None:
    summary = json.loads((faulty_run.run_dir / "summary.json").read_text())
    calls = _transcript(faulty_run.run_dir)
    exhausted = [c for c in calls if c["error"] and "500" in c["error"]]
    assert len(exhausted) == 1
    assert exhausted[0]["retries"] == RETRIES
    assert sum(c["retries"] for c in calls) == summary["llm_retries"]


@pytest.mark.slow
def test_missing_api_key_fails_before_run_folder(tmp_path, monkeypatch, cli) -> None:
    unset = "HVAE_FAULT_TEST_UNSET_KEY"
    monkeypatch.delenv(unset, raising=False)
    scenario_file = tmp_path / "needs_key.yaml"
    # nothing listens on this port; the run must stop before any request anyway
    scenario_file.write_text(yaml.safe_dump(_scenario_data("http://127.0.0.1:9/v1", unset)))
    out = tmp_path / "run"
    result = cli("run", str(scenario_file), "--out", str(out), "--quiet", timeout=120)
    assert_user_error(result, unset)
    assert not out.exists()
