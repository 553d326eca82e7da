"""The LLM response cache: unit tests of its keys and storage, and cached reruns with the embedded model.

The run tests use the embedded SmolLM2 in-process (no server): a tiny scenario (2 LLM agents, 2
oracle agents, 2 rounds, complete network, ``all_edges`` matching) is run once into an empty cache
and again with the same seed; the rerun must make no model call and reproduce every decision. The
cache lives under pytest's tmp dir (scenario ``cache.path``); ``$HVAE_CACHE_DIR`` points at another
tmp dir that must stay unused, so the tests never touch ``~/.cache``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hvae.agents.llm.cache import DEFAULT_FILE, ResponseCache, request_key
from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import play_scenario

pytestmark = pytest.mark.llm

# --------------------------------------------------------------------------- unit: keys and storage


def _request(**changes: Any) -> dict[str, Any]:
    """A request described as HvaeClient describes it (model identity, call args, messages)."""
    request: dict[str, Any] = {
        "model": {"kind": "openai", "model": "some-model", "base_url": "http://127.0.0.1:8000/v1"},
        "args": {"temperature": 0.7, "max_tokens": 48, "seed": 1234},
        "messages": [
            {"role": "user", "source": "user", "content": "Describe your values."},
            {"role": "assistant", "source": "agent_0", "content": "I care about others."},
        ],
    }
    for key, value in changes.items():
        part, name = key.split("__")
        request[part] = {**request[part], name: value}
    return request


def test_same_request_same_key():
    assert request_key(_request()) == request_key(_request())
    # Canonical JSON: the order keys were inserted in does not matter.
    reordered = _request()
    reordered["args"] = dict(reversed(list(reordered["args"].items())))
    reordered = dict(reversed(list(reordered.items())))
    assert request_key(reordered) == request_key(_request())
    assert len(request_key(_request())) == 64  # SHA-256 hex


@pytest.mark.parametrize(
    "changes",
    [
        {"args__temperature": 0.0},
        {"args__temperature": 0.70001},
        {"model__model": "other-model"},
        {"model__base_url": "http://127.0.0.1:9000/v1"},
        {"args__seed": 1235},
        {"args__max_tokens": 49},
        {"args__top_p": 0.9},
        {"args__response_format": {"type": "json_object"}},
    ],
    ids=lambda c: ",".join(c),
)
def test_request_differing_in_one_setting_gets_another_key(changes):
    assert request_key(_request(**changes)) != request_key(_request())


def test_message_role_and_sender_are_part_of_the_key():
    other_role = _request()
    other_role["messages"] = [dict(m) for m in other_role["messages"]]
    other_role["messages"][1]["role"] = "user"
    other_sender = _request()
    other_sender["messages"] = [dict(m) for m in other_sender["messages"]]
    other_sender["messages"][1]["source"] = "agent_1"
    keys = {request_key(_request()), request_key(other_role), request_key(other_sender)}
    assert len(keys) == 3


def test_values_persist_across_cache_instances(tmp_path):
    value = {"content": '{"choice": "B", "reason": "fair"}', "finish_reason": "stop", "tokens_in": 120, "tokens_out": 9}
    key = request_key(_request())
    first = ResponseCache(tmp_path)  # a folder: the file inside is responses.sqlite
    assert first.path == tmp_path / DEFAULT_FILE
    assert first.get(key) is None
    first.put(key, value)
    assert first.get(key) == value
    first.close()

    second = ResponseCache(tmp_path / DEFAULT_FILE)  # the same file, named directly
    assert second.get(key) == value
    assert len(second) == 1
    assert second.get(request_key(_request(args__temperature=0.0))) is None
    second.put(key, {**value, "content": "replaced"})  # same key: replaced, not duplicated
    assert len(second) == 1
    second.close()
    assert ResponseCache(tmp_path).get(key)["content"] == "replaced"


def test_client_keys_on_temperature_and_model(tmp_path):
    """Through HvaeClient: a reply stored for one temperature or model is not served to another."""
    from autogen_core.models import UserMessage

    from hvae.agents.llm.backends import ReplayBackend
    from hvae.agents.llm.pool import build_raw_client
    from hvae.agents.llm.client import HvaeClient

    cache = ResponseCache(tmp_path)

    def client(temperature: float, replies: list[str]) -> HvaeClient:
        config = ReplayBackend(kind="replay", replies=replies, temperature=temperature)
        return HvaeClient(build_raw_client(config), config, cache=cache)

    async def ask(c: HvaeClient):
        return await c.complete([UserMessage(content="Pick A or B.", source="user")], None)

    async def scenario():
        first = await ask(client(0.0, ["A", "x"]))
        again = await ask(client(0.0, ["A", "x"]))  # same model and settings: served from the cache
        hotter = await ask(client(1.0, ["A", "x"]))  # another temperature: asked afresh
        other_model = await ask(client(0.0, ["B", "y"]))  # another (scripted) model: asked afresh
        return first, again, hotter, other_model

    first, again, hotter, other_model = asyncio.run(scenario())
    assert (first.content, first.cached) == ("A", False)
    assert (again.content, again.cached) == ("A", True)
    assert hotter.cached is False
    assert (other_model.content, other_model.cached) == ("B", False)
    assert len(cache) == 3
    cache.close()


# --------------------------------------------------------------------------- runs with the embedded model


def _model_available() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from hvae.agents.llm.backends import BackendError, embedded_model_path

    try:
        embedded_model_path()
    except BackendError as error:
        pytest.skip(str(error))


def _scenario(cache: dict[str, Any], rounds: int = 2) -> Any:
    # Kept cheap: no goal prompting and no re-asks, so a run makes exactly 2 setup calls + 1 call
    # per decision (an unusable reply becomes an invalid decision with a reproducible fallback).
    llm = {"kind": "llm", "goal_prompting": False, "reasks": 0, "setup_max_tokens": 16}
    return validate_data(
        {
            "name": "cache_test",
            "seed": 21,
            "rounds": rounds,
            "population": [
                {"name": "llm", "count": 2, "value": "prosocial", "decider": llm},
                {"name": "oracles", "count": 2, "value": "individualistic", "decider": "oracle"},
            ],
            "network": {"kind": "complete"},
            "matching": "all_edges",
            "menus": {"kind": "slider"},
            # The built-in embedded backend, with small replies and one thread (fast on a busy CPU).
            "backends": {"embedded": {"kind": "embedded", "n_threads": 1, "max_tokens": 32}},
            "cache": cache,
        },
        "cache_test",
    )


def _decisions(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "decisions.parquet")


def _transcript(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "transcripts.jsonl").read_text().splitlines() if line.strip()]


def _request_of(record: dict[str, Any]) -> str:
    """What identifies a transcribed request (model, settings incl. seed, messages)."""
    return json.dumps([record["model"], record["settings"], record["messages"]], sort_keys=True)


def _rows(cache: Path) -> int:
    with sqlite3.connect(cache / DEFAULT_FILE) as db:
        return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


@pytest.fixture(scope="module")
def cached_runs(tmp_path_factory):
    """The scenario run twice with the same seed into one cache: (cache dir, [(summary, decisions, folder)…])."""
    _model_available()
    base = tmp_path_factory.mktemp("cache_runs")
    cache_dir = base / "cache"
    unused = base / "env_cache_dir"
    runs = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("HVAE_CACHE_DIR", str(unused))  # the scenario's cache.path must win
        for index in range(2):
            result = play_scenario(_scenario({"path": str(cache_dir)}), base / f"run{index}")
            assert result.summary["status"] == "complete"
            runs.append((result.summary, _decisions(result.path), result.path))
    assert not unused.exists()
    return cache_dir, runs


@pytest.mark.slow
def test_first_run_fills_the_cache(cached_runs):
    cache_dir, [(summary, decisions, _), _] = cached_runs
    assert summary["llm_calls"] == 6  # 2 value descriptions + 2 agents × 2 rounds
    assert summary["llm_cache_hits"] == 0
    assert summary["llm_errors"] == 0
    llm = decisions[decisions["decider"] == "llm"]
    assert len(llm) == 4  # 2 agents × 2 rounds
    assert not llm["cache_hit"].astype(bool).any()
    # Every successful request was stored once (setup and decision calls alike).
    assert _rows(cache_dir) == summary["llm_calls"]


def test_rerun_with_same_seed_is_served_from_cache(cached_runs):
    cache_dir, [(first, decisions1, _), (second, decisions2, folder2)] = cached_runs
    assert second["llm_calls"] == 0
    assert second["llm_cache_hits"] > 0
    assert second["llm_cache_hits"] == first["llm_calls"]  # every request of run 1 asked again, and hit
    assert _rows(cache_dir) == first["llm_calls"]  # nothing new was stored
    assert all(record["cached"] for record in _transcript(folder2))
    for key in ("n_decisions", "n_invalid", "llm_invalid", "llm_reasks", "llm_fallbacks", "llm_setup_failures"):
        assert second[key] == first[key], key

    llm2 = decisions2["decider"] == "llm"
    assert decisions2.loc[llm2, "cache_hit"].astype(bool).all()
    assert decisions2.loc[~llm2, "cache_hit"].isna().all()  # rule deciders have no LLM metadata
    # Decisions are identical apart from latency and the cache flag (token counts included: a
    # cached reply reports the tokens it was made with). Summary totals count computed tokens only.
    assert second["tokens_in"] == second["tokens_out"] == 0 < first["tokens_in"]
    ignored = ["latency_s", "cache_hit"]
    pd.testing.assert_frame_equal(decisions1.drop(columns=ignored), decisions2.drop(columns=ignored))


def test_rerun_reports_the_cached_token_counts(cached_runs):
    _, [(_, decisions1, _), (_, decisions2, _)] = cached_runs
    columns = ["tokens_in", "tokens_out"]
    pd.testing.assert_frame_equal(decisions1[columns], decisions2[columns])


@pytest.mark.slow
def test_disabled_cache_calls_the_backend_again(cached_runs, tmp_path, monkeypatch):
    cache_dir, [(_, _, folder1), _] = cached_runs
    rows_before = _rows(cache_dir)
    unused = tmp_path / "env_cache_dir"
    monkeypatch.setenv("HVAE_CACHE_DIR", str(unused))
    # The populated cache is named, but switched off: it must be neither read nor written. One
    # round is enough (and cheaper): round 0 sends exactly the requests run 1 stored.
    result = play_scenario(_scenario({"enabled": False, "path": str(cache_dir)}, rounds=1), tmp_path / "run")
    summary = result.summary
    assert summary["status"] == "complete"
    assert summary["llm_calls"] == 4  # 2 value descriptions + 2 decisions, all sent to the model
    assert summary["llm_cache_hits"] == 0
    llm = _decisions(result.path).query("decider == 'llm'")
    assert len(llm) == 2
    assert not llm["cache_hit"].astype(bool).any()
    assert (llm["latency_s"] > 0).all()
    records = _transcript(result.path)
    assert len(records) == 4 and not any(record["cached"] for record in records)
    # Each of these requests is one the cache holds a reply for: a cache in use would have hit.
    stored = {_request_of(record) for record in _transcript(folder1)}
    assert all(_request_of(record) in stored for record in records)
    assert _rows(cache_dir) == rows_before
    assert not unused.exists()
