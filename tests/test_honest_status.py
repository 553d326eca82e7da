"""A backend that never answers usably never yields a clean "complete" run (issue 20, item 5).

Before: every reply ``content: null`` (or empty) gave rc 0, status ``complete``, 24 of 24 decisions
invalid, no warning line and ``setup_ok`` True with an empty description. Now an unusable reply
counts toward backend health as an error, an empty setup answer is a failed setup, and a run whose
share of valid LLM decisions is below ``backend_errors.min_valid_share`` ends
``complete_with_warnings`` with a warning line.
"""

from __future__ import annotations

import json

import pytest
import yaml
from llm_stub_server import StubServer

from hvae.agents.llm.health import BackendHealth, BackendUnavailable, HealthPolicy, unusable_reply, valid_share_warning
from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import RunFailed, resume_run, play_scenario
from hvae.simulation.store import RunFolderError

pytestmark = pytest.mark.llm

LLM_AGENTS, ROUNDS = 3, 4


def scenario_data(base_url: str, **backend_errors) -> dict:
    return {
        "name": "unusable-backend", "seed": 1, "rounds": ROUNDS,
        "population": [
            {"name": "llm", "count": LLM_AGENTS, "value": "prosocial", "decider": {"kind": "llm", "backend": "srv", "reasks": 0}},
            {"name": "orc", "count": 3, "value": "prosocial", "decider": "oracle"},
        ],
        "network": {"kind": "complete"},
        "backends": {"srv": {"kind": "openai", "base_url": base_url, "model": "m", "retries": 0, "timeout_s": 5}},
        "cache": {"enabled": False},
        "backend_errors": backend_errors,
    }


@pytest.mark.parametrize("content", [None, "", "   "])
def test_null_or_blank_replies_count_as_failed_calls(content) -> None:
    assert unusable_reply(content) is not None
    health = BackendHealth("srv", "'srv'", HealthPolicy(window=4, max_error_rate=0.5))
    health.succeeded()
    for _ in range(2):
        health.unusable(unusable_reply(content))
    assert health.failures == 2 and health.tripped is None  # 2 of 3: the window of 4 is not full
    with pytest.raises(BackendUnavailable, match="failed 3 of its last 4 calls"):
        health.unusable(unusable_reply(content))
    assert unusable_reply("A") is None


def test_a_backend_answering_only_null_stops_the_run(tmp_path) -> None:
    with StubServer(ok_text=None, setup_text=None) as stub:
        scenario = validate_data(scenario_data(stub.base_url, window=4), "null")
        with pytest.raises(RunFailed, match="failed 4 of its last 4 calls"):
            play_scenario(scenario, tmp_path / "run")
    assert RunFolder(tmp_path / "run").status == "failed"


def test_keep_going_on_empty_replies_is_complete_with_warnings_and_setups_failed(tmp_path, cli) -> None:
    with StubServer(ok_text="", setup_text="") as stub:
        path = tmp_path / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario_data(stub.base_url, keep_going=True)))
        result = cli("run", str(path), "--out", str(tmp_path / "run"), "--no-report", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "complete_with_warnings"
    assert summary["llm_decisions"] == LLM_AGENTS * ROUNDS == summary["llm_invalid"]
    assert summary["llm_setup_failures"] == LLM_AGENTS
    assert summary["backend_health"]["srv"]["failed"] == summary["backend_health"]["srv"]["calls"]  # every reply was empty
    warnings = [line for line in result.stderr.splitlines() if line.startswith("hvae: warning:")]
    assert any(f"only 0 of {LLM_AGENTS * ROUNDS} LLM decisions" in line for line in warnings), result.stderr
    agents = RunFolder(tmp_path / "run").frame("llm_agents")
    assert not agents["setup_ok"].any()


def test_answers_that_are_never_valid_end_complete_with_warnings(tmp_path) -> None:
    """The backend answers (health stays fine), but nothing parses: the floor catches it."""
    with StubServer(ok_text="I would rather not say.") as stub:
        result = play_scenario(validate_data(scenario_data(stub.base_url), "refuses"), tmp_path / "run")
    assert result.summary["status"] == "complete_with_warnings"
    assert result.summary["warnings"] == [valid_share_warning(result.summary, 0.5)]
    # the report says so where the status is shown
    from hvae.analysis.report import write_report

    html = write_report([tmp_path / "run"], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Every run is complete, but with a warning." in html and "Not every run is complete" not in html
    assert f"only 0 of {LLM_AGENTS * ROUNDS} LLM decisions" in html
    # finished is finished: the folder is not resumed again
    with pytest.raises(RunFolderError, match="already complete"):
        resume_run(tmp_path / "run")


def test_the_floor_is_a_setting_and_a_healthy_run_stays_complete(tmp_path) -> None:
    with StubServer(ok_text="I would rather not say.") as stub:
        lenient = play_scenario(validate_data(scenario_data(stub.base_url, min_valid_share=0.0), "lenient"), tmp_path / "a")
    assert lenient.summary["status"] == "complete" and "warnings" not in lenient.summary
    with StubServer() as stub:  # replies "A": every decision valid
        healthy = play_scenario(validate_data(scenario_data(stub.base_url), "healthy"), tmp_path / "b")
    assert healthy.summary["status"] == "complete" and healthy.summary["llm_invalid"] == 0


@pytest.mark.parametrize(("decisions", "invalid", "floor", "warns"), [
    (10, 5, 0.5, False), (10, 6, 0.5, True), (0, 0, 0.5, False), (4, 4, 0.0, False), (4, 0, 1.0, False), (4, 1, 1.0, True),
])
def test_valid_share_floor(decisions: int, invalid: int, floor: float, warns: bool) -> None:
    warning = valid_share_warning({"llm_decisions": decisions, "llm_invalid": invalid}, floor)
    assert (warning is not None) == warns
    if warns:
        assert f"only {decisions - invalid} of {decisions} LLM decisions" in warning


def test_evaluate_on_an_unreachable_backend_is_one_line(tmp_path, cli) -> None:
    """It printed 2–15 tracebacks after its line ("Event loop is closed", "different Context")."""
    scenario = tmp_path / "dead.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "dead", "rounds": 1, "population": [{"name": "a", "count": 2, "value": "prosocial", "decider": "oracle"}],
        "backends": {"srv": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "retries": 0}},
    }))
    result = cli("evaluate", "--backend", "srv", "--scenario", str(scenario), "--repeats", "3", "--out", str(tmp_path / "ev"))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvae: error: backend 'srv'") and "cannot be reached" in lines[0], result.stderr
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["status"] == "failed"
