"""A small OpenAI-compatible stub server for tests and benchmarks (stdlib only, 127.0.0.1 only).

It answers ``POST /v1/chat/completions`` with a valid ``chat.completion`` object and
``GET /v1/models`` with one model, from a :class:`hvae.agents.llm.loopback.LoopbackService` running in a
background thread::

    with StubServer(latency_s=0.2, max_parallel=16) as server:
        base_url = server.base_url            # "http://127.0.0.1:PORT/v1"
        ...                                   # point an ``openai`` backend at it
    server.counts                             # {"ok": 40, "http500": 2, ...}

What a request gets is its **behaviour**:

``ok``        200 with the reply text (``ok_text``, default ``"A"``, ``None`` for ``content: null``;
              or ``reply(info)`` when a ``reply`` callable is given: scripted replies that depend
              on the request)
``delay``     sleep ``delay_s`` (set it longer than the client's timeout), then reply as ``ok``
``http500``   500 with an OpenAI-style error body
``http429``   429 with an OpenAI-style error body and ``Retry-After: <retry_after>`` (default ``0``;
              ``None`` sends no header)
``garbage``   200 whose body is not JSON (``Content-Type: application/json`` all the same)
``invalid``   200 with a reply that is not an answer (``invalid_text``, default ``"I refuse"``)

Setup requests (hvae's value-description and goal prompts) always get ``ok`` with a short text;
**decision requests** (everything else: decisions, re-asks and ``talk`` turns of pre-play talk)
get their behaviour from, in order of precedence:

* ``behaviour``: a callable ``f(info: RequestInfo) -> str`` deciding per request;
* ``script``: a list of behaviours consumed in order, one per decision request; when it runs out
  requests get ``default``.

:class:`RequestInfo` carries the request's ``index`` among decision requests, its ``kind``
(``value``, ``goal``, ``decision``, ``reask``), its parsed body, and ``repeat`` — how many times
the very same body was seen before. hvae retries a failed call with an identical body (the
per-call seed is part of it), so ``repeat`` is the retry number of that call; a callable keyed on
it gives deterministic fault patterns however concurrent agents interleave (see
:func:`plan_behaviour`).

**Throughput model.** A request waits ``latency_s + latency_per_inflight_s × in_flight`` seconds
once it is served, where ``in_flight`` is the number of requests being served at that moment
(itself included): with ``latency_per_inflight_s`` > 0 the latency grows with the batch, as on a
continuous-batching server (vLLM). ``max_parallel`` (C) bounds the requests served at once — the
rest wait for a slot before their latency starts, like a server with C slots. Every
served request is logged (:attr:`StubServer.log`) and counted by behaviour
(:attr:`StubServer.counts`); ``peak_parallel`` is the most requests served at once.
``GET /stub/stats`` returns the same as JSON (times are ``time.perf_counter()`` values).

The HTTP side is :mod:`hvae.agents.llm.loopback` (one asyncio loop: keep-alive, bounded bodies,
validated requests); a request with nothing to wait for is answered without a task, so the stub
serves thousands of requests a second (``benchmarks/bench_loopback.py``). ``behaviour`` and
``reply`` callables run on the server's event loop: they must not block.

Run as a script it serves in its own process (so it does not share the client's GIL, as in a
benchmark) until its stdin closes or it is interrupted; the first stdout line is the base URL::

    python tests/llm_stub_server.py --latency 0.2 --max-parallel 16 [--latency-per-inflight 0.001] [--port 0]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvae.agents.llm.loopback import LoopbackService, raise_open_file_limit, Request, Response, chat_completion, chat_request, message_text

BEHAVIOURS = ("ok", "delay", "http500", "http429", "garbage", "invalid")
RETRYABLE = frozenset({"delay", "http500", "http429"})  # what hvae's client retries


@dataclass
class RequestInfo:
    """What the stub knows about one chat-completions request when choosing its behaviour."""

    index: int  # 0-based among decision requests (-1 for setup requests)
    kind: str  # "value", "goal", "decision" or "reask"
    repeat: int  # times this exact body was seen before (= retry number of the same call)
    body: dict[str, Any] = field(repr=False)
    auth: str | None = field(default=None, repr=False)

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.body.get("messages") or []):
            if message.get("role") == "user":
                return message_text(message.get("content"))
        return ""


@dataclass
class Served:
    """One request as served (in :attr:`StubServer.log`)."""

    index: int
    kind: str
    repeat: int
    behaviour: str
    started: float
    finished: float | None = None


def classify(body: dict[str, Any]) -> str:
    """hvae's call kind from the last user message: ``value``, ``goal``, ``decision``, ``reask``."""
    text = ""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            text = message_text(message.get("content"))
            break
    if "Describe the traits" in text:
        return "value"
    if "what goal" in text:
        return "goal"
    if "could not be used" in text:
        return "reask"
    if "you can talk with the participant" in text:
        return "talk"
    return "decision"


def plan_behaviour(plan: Sequence[Sequence[str]], default: str = "ok") -> Callable[[RequestInfo], str]:
    """A ``behaviour`` callable that gives each *distinct call* its own sequence of behaviours.

    The n-th distinct decision/re-ask body seen gets ``plan[n]``; its retries (same body) walk
    along that sequence (``plan[n][repeat]``, ``default`` past its end). Distinct calls beyond
    the plan get ``default``. Which agent gets which entry depends on scheduling, but how many
    of each pattern are served does not.
    """
    plan = [tuple(entry) for entry in plan]
    for entry in plan:
        for name in entry:
            if name not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {name!r}")
    lock = threading.Lock()
    assigned: dict[str, int] = {}

    def behaviour(info: RequestInfo) -> str:
        key = _body_key(info.body)
        with lock:
            if key not in assigned:
                assigned[key] = len(assigned)
            slot = assigned[key]
        if slot >= len(plan):
            return default
        entry = plan[slot]
        return entry[info.repeat] if info.repeat < len(entry) else default

    return behaviour


def _body_key(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class StubServer(LoopbackService):
    """An OpenAI-compatible stub server on 127.0.0.1 (see the module docstring)."""

    thread_name = "llm-stub"

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        max_parallel: int | None = None,
        latency_per_inflight_s: float = 0.0,
        script: Iterable[str] | None = None,
        behaviour: Callable[[RequestInfo], str] | None = None,
        default: str = "ok",
        ok_text: str | None = "A",
        invalid_text: str = "I refuse",
        setup_text: str | None = "I value fairness and sharing.",
        delay_s: float = 2.0,
        model: str = "stub",
        retry_after: str | None = "0",
        reply: Callable[[RequestInfo], str] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        for name in [default, *(script or [])]:
            if name not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOURS)}")
        if max_parallel is not None and max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        for label, value in (("latency_s", latency_s), ("latency_per_inflight_s", latency_per_inflight_s), ("delay_s", delay_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{label} must be a finite number ≥ 0, got {value}")
        self.latency_s = float(latency_s)
        self.latency_per_inflight_s = float(latency_per_inflight_s)
        self.max_parallel = max_parallel
        self.script = list(script or [])
        self.behaviour = behaviour
        self.default = default
        self.ok_text = ok_text
        self.invalid_text = invalid_text
        self.setup_text = setup_text
        self.delay_s = float(delay_s)
        self.model = model
        self.retry_after = retry_after
        self.reply = reply
        self.counts: Counter[str] = Counter()  # decision requests by behaviour (+ "setup")
        self.log: list[Served] = []
        self.auth_headers: set[str] = set()
        self.peak_parallel = 0
        self._active = 0
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._decision_index = 0
        self._slots: asyncio.Semaphore | None = None  # made on the server's loop, at the first request

    # ---------------------------------------------------------------- accounting
    def served(self, behaviour: str | None = None, kinds: Iterable[str] = ("decision", "reask")) -> list[Served]:
        """Logged requests of the given kinds (and behaviour)."""
        kinds = set(kinds)
        with self._lock:
            return [s for s in self.log if s.kind in kinds and (behaviour is None or s.behaviour == behaviour)]

    def stats(self) -> dict[str, Any]:
        """Counts, peak and the request log as JSON-able data (also served at ``GET /stub/stats``)."""
        with self._lock:
            return {
                "counts": dict(self.counts),
                "peak_parallel": self.peak_parallel,
                "log": [
                    {"index": s.index, "kind": s.kind, "repeat": s.repeat, "behaviour": s.behaviour,
                     "started": s.started, "finished": s.finished}
                    for s in self.log
                ],
            }

    def retried_failures(self, retries: int) -> int:
        """Retryable failures served that a client allowing ``retries`` retries will have retried."""
        return sum(1 for s in self.served() if s.behaviour in RETRYABLE and s.repeat < retries)

    def latency_for(self, in_flight: int) -> float:
        """Seconds a request waits once served, with ``in_flight`` requests being served (itself included)."""
        return self.latency_s + self.latency_per_inflight_s * in_flight

    # ---------------------------------------------------------------- serving
    def handle(self, request: Request) -> Response | Awaitable[Response]:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "GET" and path == "/stub/stats":
            return Response.json(200, self.stats())
        if request.method == "GET" and path == "/v1/models":
            return Response.json(200, {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "stub"}]})
        if request.method != "POST" or path != "/v1/chat/completions":
            return Response.error(404, f"no route {request.method} {request.path[:200]}", "not_found")
        body = chat_request(request.json())
        info, name = self._choose(body, request.headers.get("authorization"), hashlib.sha256(request.body).hexdigest())
        if self._slots is None and self.max_parallel:
            self._slots = asyncio.Semaphore(self.max_parallel)
        if self._slots is None and name != "delay" and not (self.latency_s or self.latency_per_inflight_s):
            served = self._begin(info, name)  # nothing to wait for: answer at once, no task
            try:
                return self._respond(info, name, body)
            finally:
                self._end(served)
        return self._serve_later(info, name, body)

    async def _serve_later(self, info: RequestInfo, name: str, body: dict[str, Any]) -> Response:
        if self._slots is not None:
            await self._slots.acquire()
        try:
            served = self._begin(info, name)
            try:
                wait = self.latency_for(self._active) + (self.delay_s if name == "delay" else 0.0)
                if wait > 0:
                    await asyncio.sleep(wait)
                return self._respond(info, name, body)
            finally:
                self._end(served)
        finally:
            if self._slots is not None:
                self._slots.release()

    def _begin(self, info: RequestInfo, name: str) -> Served:
        with self._lock:
            self._active += 1
            self.peak_parallel = max(self.peak_parallel, self._active)
            served = Served(info.index, info.kind, info.repeat, name, time.perf_counter())
            self.log.append(served)
            self.counts[name] += 1
        return served

    def _end(self, served: Served) -> None:
        with self._lock:
            self._active -= 1
            served.finished = time.perf_counter()

    def _choose(self, body: dict[str, Any], auth: str | None, key: str) -> tuple[RequestInfo, str]:
        """The request's kind, repeat number (``key``: a hash of the raw body, the same for a retry) and behaviour."""
        kind = classify(body)
        with self._lock:
            repeat = self._seen[key]
            self._seen[key] += 1
            if auth:
                self.auth_headers.add(auth)
            if kind in ("value", "goal"):
                info = RequestInfo(-1, kind, repeat, body, auth)
            else:
                info = RequestInfo(self._decision_index, kind, repeat, body, auth)
                self._decision_index += 1
                if self.behaviour is None:
                    name = self.script.pop(0) if self.script else self.default
        if kind in ("value", "goal"):
            return info, "setup"
        if self.behaviour is not None:
            name = self.behaviour(info)
        if name not in BEHAVIOURS:
            raise ValueError(f"behaviour callable returned unknown behaviour {name!r}")
        return info, name

    def _respond(self, info: RequestInfo, name: str, body: dict[str, Any]) -> Response:
        if name == "http500":
            return Response.error(500, "stub: internal server error", "server_error")
        if name == "http429":
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
            return Response.error(429, "stub: rate limit reached", "rate_limit_error", headers)
        if name == "garbage":
            return Response(200, b"<html>502 upstream hiccup</html> {not json")
        text = {"setup": self.setup_text, "invalid": self.invalid_text}.get(name, self.ok_text)
        if name == "ok" and self.reply is not None:
            text = self.reply(info)
        with self._lock:
            number = len(self.log)
        return Response.json(200, chat_completion(body, text, model=self.model, completion_id=f"chatcmpl-stub-{number}", fingerprint="stub"))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server on 127.0.0.1 (stops when stdin closes)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--max-parallel", type=int, default=None, help="requests served at once (the rest wait)")
    parser.add_argument("--latency-per-inflight", type=float, default=0.0,
                        help="seconds added per request being served at once (a continuous-batching server)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--script", default="", help="comma-separated behaviours for decision requests")
    parser.add_argument("--default", default="ok", choices=BEHAVIOURS)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds a 'delay' request sleeps")
    parser.add_argument("--ok-text", default="A")
    args = parser.parse_args(argv)
    script = [name.strip() for name in args.script.split(",") if name.strip()]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    raise_open_file_limit()  # thousands of concurrent clients need as many sockets
    try:
        server = StubServer(latency_s=args.latency, max_parallel=args.max_parallel, script=script,
                            latency_per_inflight_s=args.latency_per_inflight, default=args.default,
                            delay_s=args.delay, ok_text=args.ok_text, port=args.port)
    except ValueError as error:
        parser.error(str(error))
    with server:
        print(server.base_url, flush=True)

        def watch_stdin() -> None:
            sys.stdin.read()  # returns at EOF: the parent closed the pipe or went away
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
