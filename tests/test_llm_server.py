"""LLM decisions through a real OpenAI-compatible server (llama-cpp-python's, serving SmolLM2).

A module-scoped fixture starts llama-cpp-python's server (through ``hvae.agents.llm.llama_server``,
which only switches off the repacking path that crashes on AMX CPUs) with the embedded SmolLM2 GGUF on a
free localhost port, and tiny scenarios (2 LLM agents, 2 rounds, complete network) run through the
``openai`` backend against it with the response cache off, so every call really goes over HTTP.
SmolLM2 is value-blind: these tests check the pipeline and its records, never what was chosen.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from hvae.agents.llm.health import DEFAULT_MIN_VALID_SHARE
import pytest

from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import play_scenario

pytestmark = [pytest.mark.llm, pytest.mark.slow]

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")

READY_TIMEOUT_S = 60.0


def _model_file() -> Path:
    from hvae.agents.llm.backends import BackendError, embedded_model_path

    try:
        return embedded_model_path()
    except BackendError as error:
        pytest.skip(str(error))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> str:
    """Start llama-cpp-python's OpenAI-compatible server; yield its base URL (``…/v1``)."""
    model = _model_file()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable, "-m", "hvae.agents.llm.llama_server",  # llama_cpp.server, safe on AMX CPUs
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", "1",  # one thread degrades least when the CPUs are shared with other work
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    with open(log_path, "wb") as log:  # a file, not a pipe: the server logs every request
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with code {process.returncode} before it was ready:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server not ready after {READY_TIMEOUT_S:.0f} s:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(process)


def _scenario(name: str, base_url: str, structured: str) -> Any:
    return validate_data(
        {
            "name": name,
            "seed": 11,
            "rounds": 2,
            "population": [
                {
                    "name": "llm_pro",
                    "count": 1,
                    "value": "prosocial",
                    "decider": {"kind": "llm", "backend": "local", "reasks": 1, "setup_max_tokens": 32, "goal_max_tokens": 24},
                },
                {
                    "name": "llm_com",
                    "count": 1,
                    "value": "competitive",
                    "decider": {"kind": "llm", "backend": "local", "goal_prompting": False, "order": "shuffle", "reasks": 1, "setup_max_tokens": 32},
                },
            ],
            "network": {"kind": "complete"},
            "matching": "random",
            "menus": {"kind": "slider"},
            "backends": {
                "local": {
                    "kind": "openai",
                    "base_url": base_url,
                    "model": "smollm2-any-name",
                    "structured": structured,
                    "max_tokens": 40,
                    "timeout_s": 60,
                    "retries": 1,
                    "max_concurrency": 2,
                }
            },
            "cache": {"enabled": False},
        },
        name,
    )


def _run(tmp_path: Path, monkeypatch, scenario) -> tuple[dict, pd.DataFrame, Path]:
    # Should the cache setting be ignored, nothing may be read from or written to ~/.cache.
    monkeypatch.setenv("HVAE_CACHE_DIR", str(tmp_path / "must_stay_unused"))
    result = play_scenario(scenario, tmp_path / "run")
    assert not (tmp_path / "must_stay_unused").exists(), "cache: {enabled: false} still opened a cache"
    decisions = pd.read_parquet(result.path / "decisions.parquet")
    # every round played; a run whose LLM replies are mostly unusable (the value-blind model in free
    # text) is marked so, never plainly complete
    valid_share = decisions["valid"].mean()
    expected = "complete" if valid_share >= DEFAULT_MIN_VALID_SHARE else "complete_with_warnings"
    assert result.summary["status"] == expected, (valid_share, result.summary.get("warnings"))
    return result.summary, decisions, result.path


def _check_choice_maps_back(rows: pd.DataFrame) -> None:
    for row in rows.itertuples():
        assert isinstance(row.shown_order, str) and row.shown_order, row
        order = [int(x) for x in row.shown_order.split(",")]
        assert sorted(order) == list(range(len(order))), row.shown_order
        if row.choice >= 0:
            assert 0 <= row.chosen_position < len(order)
            assert order[row.chosen_position] == row.choice, (row.shown_order, row.chosen_position, row.choice)
        else:  # no choice (fallback: skip)
            assert row.chosen_position < 0


def _transcripts(folder: Path) -> list[dict]:
    path = folder / "transcripts.jsonl"
    assert path.is_file(), "no transcripts.jsonl in the run folder"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_openai_backend_structured_json_object_schema(llama_server, tmp_path, monkeypatch):
    summary, decisions, folder = _run(tmp_path, monkeypatch, _scenario("server_json", llama_server, "json_object_schema"))

    llm = decisions[decisions["decider"] == "llm"]
    assert len(llm) == 4  # 2 agents × 2 rounds, complete network: everyone decides every round
    assert summary["llm_calls"] > 0
    assert summary["llm_cache_hits"] == 0
    assert summary["llm_errors"] == 0, summary
    assert summary["tokens_in"] > 0 and summary["tokens_out"] > 0

    assert llm["raw_reply"].notna().all() and (llm["raw_reply"].str.len() > 0).all()
    assert (llm["latency_s"] > 0).all()
    assert (llm["tokens_in"] > 0).all()
    assert (llm["attempts"] >= 1).all()
    assert (~llm["cache_hit"].astype(bool)).all()
    _check_choice_maps_back(llm)
    # With the schema enforced by the server, replies are JSON naming a shown letter.
    for row in llm[llm["valid"]].itertuples():
        reply = json.loads(row.raw_reply)
        assert reply["choice"] == "ABCDEFGHI"[row.chosen_position]
    assert summary["n_invalid"] == int((~llm["valid"]).sum())

    records = _transcripts(folder)
    phases = {r["phase"] for r in records}
    assert {"value", "goal", "decision"} <= phases, phases
    assert all(r["error"] is None for r in records)
    assert all(r["model"] == "smollm2-any-name" for r in records)
    decision_records = [r for r in records if r["phase"] == "decision"]
    assert all(r["settings"]["response_format"]["type"] == "json_object" for r in decision_records)
    assert all("schema" in r["settings"]["response_format"] for r in decision_records)
    assert len(records) == summary["llm_calls"]  # cache off: every call is a transcribed request

    agents = pd.read_parquet(folder / "llm_agents.parquet")
    assert sorted(agents["agent_id"]) == sorted(llm["agent_id"].unique())
    assert len(agents) == 2
    assert agents["description"].str.strip().str.len().gt(0).all()
    assert agents["goal"].str.strip().str.len().gt(0).all()
    assert set(agents["backend"]) == {"local"}


def test_openai_backend_free_text_letter_parsing(llama_server, tmp_path, monkeypatch):
    summary, decisions, folder = _run(tmp_path, monkeypatch, _scenario("server_text", llama_server, "none"))

    llm = decisions[decisions["decider"] == "llm"]
    assert len(llm) == 4
    assert summary["llm_calls"] > 0
    assert summary["llm_errors"] == 0, summary
    assert llm["raw_reply"].notna().all()
    assert (llm["latency_s"] > 0).all()
    assert (llm["attempts"] >= 1).all()
    _check_choice_maps_back(llm)
    # Every decision is valid or counted invalid (with its fallback applied), never lost.
    invalid = llm[~llm["valid"]]
    assert summary["llm_invalid"] == len(invalid) == summary["n_invalid"]
    assert (invalid["fallback"] == "random").all()
    assert summary["llm_fallbacks"] == len(invalid)
    assert llm.loc[llm["valid"], "fallback"].isna().all()

    records = _transcripts(folder)
    decision_records = [r for r in records if r["phase"] in ("decision", "reask")]
    assert decision_records and all("response_format" not in r["settings"] for r in decision_records)
