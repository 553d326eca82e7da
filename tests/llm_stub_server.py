"""A small OpenAI-compatible stub server for tests and benchmarks (stdlib only, 127.0.0.1 only).

It answers ``POST /v1/chat/completions`` with a valid ``chat.completion`` object and
``GET /v1/models`` with one model, from a :class:`hvae.agents.llm.loopback.LoopbackService` running in a
background thread::

    with StubServer(latency_s=0.2, max_parallel=16) as server:
        base_url = server.base_url            # "http://127.0.0.1:PORT/v1"
        ...                                   # point an ``openai`` backend at it
    server.counts                             # {"ok": 40, "http500": 2, ...}

What a request gets is its **behaviour**:

``ok``        200 with the reply text (``ok_text``, default ``"A"``; or ``reply(info)`` when a
              ``reply`` callable is given: scripted replies that depend on the request)
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

``latency_s`` is added to every request; ``max_parallel`` (C) bounds the requests served at once
— the rest wait on a semaphore before their latency starts, like a server with C slots. Every
served request is logged (:attr:`StubServer.log`) and counted by behaviour
(:attr:`StubServer.counts`); ``peak_parallel`` is the most requests served at once.
``GET /stub/stats`` returns the same as JSON (times are ``time.perf_counter()`` values).

Run as a script it serves in its own process (so its threads do not share the client's GIL, as
in a benchmark) until its stdin closes or it is interrupted; the first stdout line is the base
URL::

    python tests/llm_stub_server.py --latency 0.2 --max-parallel 16
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from hvae.agents.llm.loopback import LoopbackHTTPServer, LoopbackService

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
                return _content_text(message.get("content"))
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


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def classify(body: dict[str, Any]) -> str:
    """hvae's call kind from the last user message: ``value``, ``goal``, ``decision``, ``reask``."""
    text = ""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            text = _content_text(message.get("content"))
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


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (~40 ms a reply), which would swamp any latency being measured.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        pass

    # ---------------------------------------------------------------- plumbing
    def _send(self, status: int, payload: bytes, content_type: str = "application/json", headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True  # the client gave up (timeout): nothing to do

    def _json(self, status: int, obj: Any, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _error(self, status: int, message: str, kind: str, headers: dict | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers)

    # ---------------------------------------------------------------- routes
    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") == "/stub/stats":
            self._json(200, self.server.owner.stats())
        elif self.path.rstrip("/") == "/v1/models":
            stub = self.server.owner
            self._json(200, {"object": "list", "data": [{"id": stub.model, "object": "model", "created": 0, "owned_by": "stub"}]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "request body is not JSON", "invalid_request_error")
            return
        self.server.owner._serve(self, body)


class StubServer(LoopbackService):
    """An OpenAI-compatible stub server on 127.0.0.1 (see the module docstring)."""

    handler_class = _Handler
    thread_name = "llm-stub"
    poll_interval = 0.05

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        max_parallel: int | None = None,
        script: Iterable[str] | None = None,
        behaviour: Callable[[RequestInfo], str] | None = None,
        default: str = "ok",
        ok_text: str = "A",
        invalid_text: str = "I refuse",
        setup_text: str = "I value fairness and sharing.",
        delay_s: float = 2.0,
        model: str = "stub",
        retry_after: str | None = "0",
        reply: Callable[[RequestInfo], str] | None = None,
    ) -> None:
        super().__init__()
        for name in [default, *(script or [])]:
            if name not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOURS)}")
        if max_parallel is not None and max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.latency_s = float(latency_s)
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
        self._slots = threading.BoundedSemaphore(max_parallel) if max_parallel else None
        self._closing = threading.Event()

    # ---------------------------------------------------------------- lifecycle
    def before_shutdown(self) -> None:
        self._closing.set()  # wakes handlers sleeping in delay/latency

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

    # ---------------------------------------------------------------- serving
    def _choose(self, body: dict[str, Any], auth: str | None) -> tuple[RequestInfo, str]:
        kind = classify(body)
        key = _body_key(body)
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

    def _serve(self, handler: _Handler, body: dict[str, Any]) -> None:
        auth = handler.headers.get("Authorization")
        info, name = self._choose(body, auth)
        if self._slots is not None:
            while not self._slots.acquire(timeout=0.05):
                if self._closing.is_set():
                    return
        try:
            with self._lock:
                self._active += 1
                self.peak_parallel = max(self.peak_parallel, self._active)
                served = Served(info.index, info.kind, info.repeat, name, time.perf_counter())
                self.log.append(served)
                self.counts[name] += 1
            try:
                self._respond(handler, info, name, body)
            finally:
                with self._lock:
                    self._active -= 1
                    served.finished = time.perf_counter()
        finally:
            if self._slots is not None:
                self._slots.release()

    def _respond(self, handler: _Handler, info: RequestInfo, name: str, body: dict[str, Any]) -> None:
        if self.latency_s > 0 and self._closing.wait(self.latency_s):
            return
        if name == "delay" and self._closing.wait(self.delay_s):
            return
        if name == "http500":
            handler._error(500, "stub: internal server error", "server_error")
        elif name == "http429":
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
            handler._error(429, "stub: rate limit reached", "rate_limit_error", headers)
        elif name == "garbage":
            handler._send(200, b"<html>502 upstream hiccup</html> {not json", "application/json")
        else:
            text = {"setup": self.setup_text, "invalid": self.invalid_text}.get(name, self.ok_text)
            if name == "ok" and self.reply is not None:
                text = self.reply(info)
            handler._json(200, self._completion(body, text))

    def _completion(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt_chars = sum(len(_content_text(m.get("content"))) for m in body.get("messages") or [])
        with self._lock:
            number = len(self.log)
        return {
            "id": f"chatcmpl-stub-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "system_fingerprint": "stub",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": max(1, prompt_chars // 4),
                "completion_tokens": max(1, len(text) // 4),
                "total_tokens": max(1, prompt_chars // 4) + max(1, len(text) // 4),
            },
        }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server on 127.0.0.1 (stops when stdin closes)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--max-parallel", type=int, default=None, help="requests served at once (the rest wait)")
    parser.add_argument("--script", default="", help="comma-separated behaviours for decision requests")
    parser.add_argument("--default", default="ok", choices=BEHAVIOURS)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds a 'delay' request sleeps")
    parser.add_argument("--ok-text", default="A")
    args = parser.parse_args(argv)
    script = [name.strip() for name in args.script.split(",") if name.strip()]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with StubServer(latency_s=args.latency, max_parallel=args.max_parallel, script=script,
                    default=args.default, delay_s=args.delay, ok_text=args.ok_text) as server:
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
