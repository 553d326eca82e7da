"""Retries that do not march in lockstep (issue 11, item 3): full jitter and a bounded Retry-After.

Agents that hit a rate limit together must not all retry after the same wait, and a server's
``Retry-After`` must be honoured (capped at ``max_backoff_s``). The waits are recorded by replacing
the client module's ``asyncio.sleep``, so nothing here waits for real and nothing is timed.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from llm_stub_server import StubServer, plan_behaviour

from hvae.agents.llm import client as client_module
from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import play_scenario

pytestmark = pytest.mark.llm

AGENTS = 8


class _RecordingAsyncio:
    """The client module's view of asyncio, with ``sleep`` recorded instead of waited."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float, result=None):
        self.sleeps.append(seconds)
        return result

    def __getattr__(self, name: str):
        return getattr(asyncio, name)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Every backoff the LLM client waits, in seconds (nothing waits for real)."""
    recorder = _RecordingAsyncio()
    monkeypatch.setattr(client_module, "asyncio", recorder)
    return recorder.sleeps


def _scenario(base_url: str, *, backoff_s: float, max_backoff_s: float | None = None, retries: int = 2):
    backend = {"kind": "openai", "base_url": base_url, "model": "stub", "retries": retries,
               "backoff_s": backoff_s, "max_concurrency": AGENTS}
    if max_backoff_s is not None:
        backend["max_backoff_s"] = max_backoff_s
    return validate_data(
        {
            "name": "retries",
            "seed": 2,
            "rounds": 1,
            "population": [{"name": "l", "count": AGENTS, "value": "prosocial",
                            "decider": {"kind": "llm", "backend": "srv", "order": "fixed"}}],
            "network": {"kind": "complete"},
            "matching": "all_edges",
            "backends": {"srv": backend},
            "cache": {"enabled": False},
        },
        "retries",
    )


def test_agents_rate_limited_together_do_not_retry_together(tmp_path, waits) -> None:
    # every agent's decision gets a 429 (no Retry-After) and then succeeds
    with StubServer(behaviour=plan_behaviour([("http429", "ok")] * AGENTS), retry_after=None) as stub:
        result = play_scenario(_scenario(stub.base_url, backoff_s=1.0), tmp_path / "run")
    assert result.summary["status"] == "complete"
    assert result.summary["llm_retries"] == AGENTS == len(waits)  # accounting kept: one retry each
    assert all(0.0 <= w <= 1.0 for w in waits), waits  # full jitter on the first retry: [0, backoff_s]
    assert len(set(waits)) == AGENTS, waits  # spread out, not in lockstep


def test_retry_after_is_honoured(tmp_path, waits) -> None:
    with StubServer(behaviour=plan_behaviour([("http429", "ok")] * AGENTS), retry_after="7") as stub:
        result = play_scenario(_scenario(stub.base_url, backoff_s=0.5), tmp_path / "run")
    assert result.summary["status"] == "complete" and result.summary["llm_retries"] == AGENTS
    assert len(waits) == AGENTS
    assert all(7.0 <= w <= 7.5 for w in waits), waits  # the server's 7 s plus the jitter


def test_retry_after_is_bounded(tmp_path, waits) -> None:
    with StubServer(behaviour=plan_behaviour([("http429", "ok")] * AGENTS), retry_after="86400") as stub:
        play_scenario(_scenario(stub.base_url, backoff_s=0.5, max_backoff_s=4.0), tmp_path / "run")
    assert len(waits) == AGENTS
    assert all(4.0 <= w <= 4.5 for w in waits), waits  # a day is capped at max_backoff_s


def test_backoff_delay_full_jitter_and_cap() -> None:
    rng = random.Random(1)
    third = [client_module.backoff_delay(3, 0.5, 30.0, None, rng) for _ in range(2000)]
    assert min(third) >= 0.0 and max(third) <= 2.0  # 0.5 * 2**2
    assert min(third) < 0.05 and max(third) > 1.95  # the whole range is used
    assert abs(sum(third) / len(third) - 1.0) < 0.05  # uniform: mean is half the ceiling
    capped = [client_module.backoff_delay(12, 0.5, 3.0, None, rng) for _ in range(500)]
    assert max(capped) <= 3.0
    assert client_module.backoff_delay(1, 0.0, 30.0, None, rng) == 0.0


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _RateLimited(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429")
        self.response = _Response(headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: no wait
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers, expected) -> None:
    assert client_module.retry_after_s(_RateLimited(headers)) == expected
