"""The lean client path: same requests as autogen's, same decisions, replicas, and its queue.

* :class:`~hvae.agents.llm.wire.WireClient` sends the body autogen-ext's
  ``OpenAIChatCompletionClient`` sends (both captured by the stub server, compared as JSON);
* a decision sent straight to the client carries exactly the messages ``AssistantAgent`` sends
  after ``load_state`` of the setup conversation (the old path), for both value placements;
* a run with ``client: lean`` and one with ``client: autogen`` make the same decisions and the
  same requests, and the same run twice gives the same decisions;
* replicas: requests spread by fewest in flight; one replica stopped mid-run gives one warning
  line and the run completes; all stopped ends the run as a dead backend;
* :class:`~hvae.agents.llm.client.Slots` is FIFO, bounded and survives cancelled waiters;
  :class:`~hvae.agents.llm.client.CallStats` percentiles match a computation of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from autogen_core.models import AssistantMessage, SystemMessage, UserMessage
from conftest import make_scenario
from llm_stub_server import StubServer

from hvae.agents.llm.backends import BackendUnavailable, OpenAIBackend
from hvae.agents.llm.client import CallStats, Slots
from hvae.agents.llm.pool import build_raw_client
from hvae.simulation.model import HvaeModel

pytestmark = pytest.mark.llm


def _letter(info) -> str:
    """A reply that depends on the request only (the last user message and the seed)."""
    digest = hashlib.sha256((info.last_user_text + str(info.body.get("seed"))).encode()).digest()
    return "ABCDEFGHI"[digest[0] % 9]


def _scenario(base_url, client: str = "lean", *, count: int = 4, rounds: int = 2, placement_system: bool = False, **backend):
    return make_scenario(
        seed=5,
        rounds=rounds,
        population=[{"name": "llm", "count": count, "value": "prosocial",
                     "decider": {"kind": "llm", "backend": "srv", "order": "shuffle", "reasks": 1}}],
        network={"kind": "complete"},
        matching="all_edges",
        menus={"kind": "slider"},
        backends={"srv": {"kind": "openai", "base_url": base_url, "model": "stub", "client": client,
                          "retries": 0, "max_concurrency": 3, **backend}},
        cache={"enabled": False},
    )


def _decisions(model: HvaeModel) -> list[tuple]:
    rows = model.log.decision_rows().to_pylist()
    return sorted((r["round"], r["agent_id"], r["choice"], r["shown_order"], r["raw_reply"], r["valid"]) for r in rows)


# --------------------------------------------------------------------------- same request body
def test_wire_body_equals_autogens_body() -> None:
    bodies: list[dict] = []

    def capture(info) -> str:
        bodies.append(info.body)
        return "ok"

    messages = [
        SystemMessage(content="You hold a value."),
        UserMessage(content="Describe the traits — in two sentences.", source="user"),
        AssistantMessage(content="I share.", source="agent_3"),
        UserMessage(content="Choose one option.\n\nA: 85, 85", source="user"),
    ]
    args = {"temperature": 0.7, "max_tokens": 12, "seed": 99,
            "response_format": {"type": "json_object", "schema": {"type": "object"}}}
    with StubServer(behaviour=capture) as server:
        for client in ("autogen", "lean"):
            config = OpenAIBackend(kind="openai", base_url=server.base_url, model="stub", client=client)
            raw = build_raw_client(config)

            async def ask(raw=raw):
                result = await raw.create(messages, extra_create_args=args)
                await raw.close()
                return result

            assert asyncio.run(ask()).content == "A"
    assert len(bodies) == 2
    assert bodies[1] == bodies[0], json.dumps(bodies, indent=1)
    assert [m["role"] for m in bodies[1]["messages"]] == ["system", "user", "assistant", "user"]


# --------------------------------------------------------------------------- same messages as AssistantAgent
@pytest.mark.parametrize("placement", ["user", "system"])
def test_direct_decision_sends_what_assistant_agent_sends(placement) -> None:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.messages import TextMessage
    from autogen_core import CancellationToken

    from hvae.agents.llm.chat_client import TextChatClient
    from hvae.agents.llm.decider import LLMDecider
    from hvae.agents.llm.pool import BackendPool
    from hvae.agents.llm.backends import ReplayBackend
    from hvae.agents.llm.config import LLMConfig

    class Recorder(TextChatClient):
        def __init__(self) -> None:
            self.seen: list = []

        async def answer(self, messages, args):
            from autogen_core.models import CreateResult, RequestUsage

            self.seen.append(list(messages))
            return CreateResult(finish_reason="stop", content="C", usage=RequestUsage(prompt_tokens=1, completion_tokens=1), cached=False)

        @property
        def model_info(self):
            return {"vision": False, "function_calling": False, "json_output": False, "family": "unknown", "structured_output": False}

    replies = ["I share.", "My goal: fairness."]
    pool = BackendPool({"r": ReplayBackend(kind="replay", replies=replies)})
    decider = LLMDecider(LLMConfig(kind="llm", backend="r"), pool, placement=placement)
    decider.setup(np.array([7]), np.array([45.0]))
    asyncio.run(decider.ensure_setup())
    prompt = "Choose one option.\n\nA: 85, 85\nB: 50, 100"

    recorder = Recorder()
    system = decider._system_message(7)
    agent = AssistantAgent("agent_7", model_client=recorder, system_message=system)

    async def old_path():
        await agent.load_state(decider.setups[7].state)
        await agent.on_messages([TextMessage(content=prompt, source="user")], CancellationToken())

    asyncio.run(old_path())
    direct = [*decider._setup_messages(7), UserMessage(content=prompt, source="user")]

    def plain(ms):
        return [(type(m).__name__, getattr(m, "source", None), m.content) for m in ms]

    assert plain(direct) == plain(recorder.seen[0])
    assert len(direct) == (6 if placement == "user" else 7)  # value, reply, role, goal, reply, decision (+ system)


# --------------------------------------------------------------------------- same decisions
def test_lean_and_autogen_clients_make_the_same_decisions_and_requests() -> None:
    outcomes = {}
    with StubServer(reply=_letter) as server:
        for label, client in (("lean", "lean"), ("lean again", "lean"), ("autogen", "autogen")):
            before = len(server.log)
            model = HvaeModel(_scenario(server.base_url, client))
            try:
                model.run(2)
            finally:
                model.close()
            outcomes[label] = _decisions(model)
            assert len(server.log) > before
    assert outcomes["lean"] == outcomes["autogen"]
    assert outcomes["lean"] == outcomes["lean again"]
    assert {row[4] for row in outcomes["lean"]} - set("ABCDEFGHI") == set()
    assert len({row[2] for row in outcomes["lean"]}) > 1  # replies really depend on the requests


# --------------------------------------------------------------------------- replicas
class _StubProcess:
    """``tests/llm_stub_server.py`` in a process of its own, so it can be killed like a crashed server."""

    def __enter__(self) -> _StubProcess:
        script = Path(__file__).with_name("llm_stub_server.py")
        self.process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self.process.stdout.readline().strip()
        assert self.base_url.startswith("http://127.0.0.1:"), self.base_url
        return self

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stub/stats", timeout=10) as reply:
            return json.load(reply)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        self.kill()


def test_one_replica_killed_mid_run_gives_one_warning_and_the_run_completes(capfd) -> None:
    with _StubProcess() as first, _StubProcess() as second:
        model = HvaeModel(_scenario([first.base_url, second.base_url], count=6, rounds=4))
        try:
            model.step()
            model.step()
            assert len(first.stats()["log"]) > 0 and len(second.stats()["log"]) > 0  # both replicas served
            first.kill()
            before = len(second.stats()["log"])
            model.step()
            model.step()
            after = len(second.stats()["log"])
            traffic = model.llm_pool.traffic()["srv"]
        finally:
            model.close()
    rows = model.log.decision_rows().to_pylist()
    assert len(rows) == 4 * 6
    assert all(r["valid"] for r in rows)
    assert after - before >= 2 * 6  # the two last rounds all went to the live replica
    warnings = [line for line in capfd.readouterr().err.splitlines() if "replica" in line]
    assert len(warnings) == 1, warnings
    assert first.base_url in warnings[0] and "1 of 2 replicas left" in warnings[0]
    assert [r["alive"] for r in traffic["replicas"]] == [False, True]
    assert traffic["calls"] == sum(r["requests"] for r in traffic["replicas"]) - traffic["replicas"][0]["connection_failures"]


def test_all_replicas_killed_stops_the_run() -> None:
    with _StubProcess() as first, _StubProcess() as second:
        model = HvaeModel(_scenario([first.base_url, second.base_url], count=3, rounds=3))
        try:
            model.step()
            first.kill()
            second.kill()
            with pytest.raises(BackendUnavailable):
                model.step()
                model.step()
        finally:
            model.close()


def test_requests_go_to_the_replica_with_fewest_in_flight() -> None:
    from hvae.agents.llm.wire import WireClient

    client = WireClient(["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", "http://127.0.0.1:3/v1"], "m", {})
    a, b, c = client.replicas
    a.in_flight, b.in_flight, c.in_flight = 2, 1, 1
    assert client.pick() is b  # fewest; ties go to the first listed
    b.alive = False
    assert client.pick() is c
    a.alive = c.alive = False
    assert client.pick() is b  # none alive: all are candidates again, fewest in flight first


def test_a_reply_larger_than_the_bound_is_refused_unread() -> None:
    from hvae.agents.llm.wire import MAX_REPLY_BYTES, ReplyFormatError, WireClient

    async def scenario():
        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n{" % (MAX_REPLY_BYTES + 1))
            await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = WireClient([f"http://127.0.0.1:{port}/v1"], "m", {})
        try:
            with pytest.raises(ReplyFormatError, match="announced a reply"):
                await client.post(b"{}")
        finally:
            server.close()
            await client.close()

    asyncio.run(scenario())


def test_base_url_list_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        OpenAIBackend(kind="openai", base_url=[], model="m")
    with pytest.raises(ValidationError):
        OpenAIBackend(kind="openai", base_url=["http://a/v1", "http://b/v1"], model="m", client="autogen")
    assert OpenAIBackend(kind="openai", base_url="http://a/v1", model="m").base_urls == ["http://a/v1"]


# --------------------------------------------------------------------------- Slots and CallStats
def test_slots_are_fifo_bounded_and_skip_cancelled_waiters() -> None:
    async def scenario():
        slots = Slots(2)
        order: list[int] = []
        active = peak = 0

        async def worker(i: int) -> None:
            nonlocal active, peak
            async with slots:
                order.append(i)
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0)
                active -= 1

        tasks = [asyncio.ensure_future(worker(i)) for i in range(8)]
        await asyncio.sleep(0)  # 0 and 1 hold the slots, 2..7 wait
        tasks[3].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return order, peak, slots._free

    order, peak, free = asyncio.run(scenario())
    assert order == [0, 1, 2, 4, 5, 6, 7]
    assert peak == 2 and free == 2


def test_call_stats_percentiles_and_report() -> None:
    stats = CallStats(window=100)
    latencies = [0.001 * k for k in range(1, 41)]
    for latency in latencies:
        stats.started()
        stats.finished(latency)
    ordered = sorted(latencies)
    assert stats.percentile(0.5) == ordered[20] and stats.percentile(0.95) == ordered[38]
    report = stats.report()
    assert report["calls"] == 40 and report["in_flight"] == 0 and report["peak_in_flight"] == 1
    assert json.loads(json.dumps(report)) == report
    assert "0 in flight" in stats.line()
