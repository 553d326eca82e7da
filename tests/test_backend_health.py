"""A dead backend never produces a "complete" run (issue 11, item 4).

By default a run stops as ``failed`` (resumable) with one line naming the backend and its error
when the backend cannot be reached at setup or fails too often; ``--keep-going`` (or the scenario's
``backend_errors.keep_going``) goes on with fallbacks and warns with the error counts.
"""

from __future__ import annotations

import json

import pytest
import yaml
from llm_stub_server import StubServer

from hvae.agents.llm.backends import BackendUnavailable
from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import RunFailed, resume_run, play_scenario

pytestmark = pytest.mark.llm

DEAD_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there


def scenario_data(base_url: str, **extra) -> dict:
    data = {
        "name": "dead-backend",
        "seed": 1,
        "rounds": 4,
        "population": [
            {"name": "llm", "count": 3, "value": "prosocial", "decider": {"kind": "llm", "backend": "srv"}},
            {"name": "orc", "count": 3, "value": "prosocial", "decider": "oracle"},
        ],
        "network": {"kind": "complete"},
        "backends": {"srv": {"kind": "openai", "base_url": base_url, "model": "m", "retries": 1, "backoff_s": 0.01,
                             "timeout_s": 5}},
        "cache": {"enabled": False},
    }
    data.update(extra)
    return data


def write(tmp_path, data: dict):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_unreachable_backend_stops_the_run_as_failed(tmp_path, cli) -> None:
    out = tmp_path / "run"
    result = cli("run", str(write(tmp_path, scenario_data(DEAD_URL))), "--out", str(out), "--no-report")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hvae: error: the run stopped: backend 'srv' (openai, model m at http://127.0.0.1:9/v1) cannot be reached")
    assert "APIConnectionError" in lines[0] and f"hvae run --resume {out}" in lines[0] and "--keep-going" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["resumable"] is True
    assert "cannot be reached" in summary["error"] and "APIConnectionError" in summary["error"]


@pytest.mark.slow
def test_keep_going_keeps_todays_behaviour_and_warns(tmp_path, cli) -> None:
    out = tmp_path / "run"
    result = cli("run", str(write(tmp_path, scenario_data(DEAD_URL))), "--out", str(out), "--no-report", "--keep-going")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete_with_warnings"  # every round written, but no LLM decision is valid
    assert summary["llm_fallbacks"] == summary["llm_invalid"] == 4 * 3  # every LLM decision fell back
    warnings = [line for line in result.stderr.splitlines() if line.startswith("hvae: warning:")]
    assert len(warnings) == 2, result.stderr
    assert "only 0 of 12 LLM decisions (0%) are valid" in warnings[1]
    failed = summary["backend_health"]["srv"]["failed"]
    assert failed == summary["llm_errors"] > 0
    assert f"{failed} of {failed} calls failed" in warnings[0] and "APIConnectionError" in warnings[0]
    assert "12 random fallbacks" in warnings[0]
    assert "keep_going: true" in (out / "scenario.yaml").read_text()  # recorded with the run


def test_scenario_setting_keeps_going_too(tmp_path) -> None:
    data = scenario_data(DEAD_URL, backend_errors={"keep_going": True})
    result = play_scenario(validate_data(data, "keep-going"), tmp_path / "run")
    assert result.summary["status"] == "complete_with_warnings"  # it went on, and says the LLM results are void


def test_error_rate_over_the_window_stops_the_run_and_it_resumes_later(tmp_path) -> None:
    """Setup works, then every decision call fails: the window trips; once fixed, the run resumes."""
    data = scenario_data("", backend_errors={"window": 4, "max_error_rate": 0.5})
    with StubServer(default="http500") as stub:
        data["backends"]["srv"]["base_url"] = stub.base_url
        scenario = validate_data(data, "error-rate")
        with pytest.raises(RunFailed) as stopped:
            play_scenario(scenario, tmp_path / "run")
        assert isinstance(stopped.value.cause, BackendUnavailable)
        assert "failed 3 of its last 4 calls" in str(stopped.value)
        assert "stub: internal server error" in str(stopped.value)
        run = RunFolder(tmp_path / "run")
        assert run.status == "failed" and run.summary["resumable"]

        stub.default = "ok"  # the backend is fixed
        result = resume_run(tmp_path / "run")
    assert result.summary["status"] == "complete"
    decisions = RunFolder(tmp_path / "run").decisions()
    assert decisions["valid"].all() and len(decisions) == 4 * 6  # every agent, every round


def test_health_rules() -> None:
    from hvae.agents.llm.health import BackendHealth, HealthPolicy

    fresh = BackendHealth("a", "'a' (openai)", HealthPolicy())
    with pytest.raises(BackendUnavailable, match="'a' \\(openai\\) cannot be reached.*last error: boom"):
        fresh.failed("boom")

    window = BackendHealth("b", "'b'", HealthPolicy(window=4, max_error_rate=0.5))
    window.succeeded()
    window.failed("e1")
    window.failed("e2")  # 2 of 3: the window is not full yet
    window.succeeded()  # 2 of 4 = 50 %: not more than the threshold
    with pytest.raises(BackendUnavailable, match="failed 3 of its last 4 calls"):
        window.failed("e3")

    going = BackendHealth("c", "'c'", HealthPolicy(keep_going=True))
    going.failed("down")
    assert going.tripped and going.failures == 1 and going.report()["failed"] == 1
