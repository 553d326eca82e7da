"""A local HTTP/1.1 service on 127.0.0.1: one asyncio event loop in a background thread.

hvae serves OpenAI-compatible endpoints locally in two places: the value-rational oracle server
(:mod:`hvae.agents.llm.oracle_server`, ``hvae serve-oracle``) and the scripted stub server of the
test suite and benchmarks (``tests/llm_stub_server.py``). Both need the same lifecycle — bind
(``port=0``: any free port), serve in the background, stop cleanly, say where they listen — and
the same hardened HTTP reading, which live here once. A subclass answers one parsed
:class:`Request` with a :class:`Response`, or with an awaitable of one (a reply that waits, such
as a stub's latency)::

    class Echo(LoopbackService):
        def handle(self, request: Request) -> Response:
            return Response.json(200, {"path": request.path})

    with Echo() as service:
        service.base_url    # 'http://127.0.0.1:PORT/v1'

What a client can and cannot do to it (every refusal is an HTTP error reply, never a traceback,
and never a blocked server):

* **Bodies are bounded.** ``Content-Length`` must be plain decimal digits (``abc``, ``1e3``,
  ``-1`` → 400); more than :data:`MAX_BODY` (1 MiB; 10^23 too) → 413 and the connection closes
  without reading it. A request line and headers over :data:`MAX_HEAD` (64 KiB) → 431.
* **No chunked bodies.** ``Transfer-Encoding`` → 411 and the connection closes, so a chunked
  body is never read as the next request.
* **Keep-alive, in order.** HTTP/1.1 connections stay open (``Connection: close`` ends them);
  requests pipelined on one connection are answered one at a time, in order, and a client that
  keeps sending while its request is served is paused once :data:`MAX_HEAD` + :data:`MAX_BODY`
  bytes are buffered.
* **Bounded concurrency.** At most ``max_connections`` connections at once (capped by the
  process's open-file limit; :func:`raise_open_file_limit` lifts the soft limit); one more gets a
  503 and is closed. Each connection has at most one request in flight, so requests in flight
  are bounded too. A connection idle for ``idle_timeout`` seconds (or that sends half a request
  and stops) is closed.
* **Loopback only.** Only 127.0.0.1 is ever bound: these services answer anyone who can
  connect, so they must not be reachable from another machine.

Request bodies are JSON objects (:meth:`Request.json`: non-UTF-8, nesting deeper than Python's
parser allows, numbers over 4,300 digits and non-objects → 400). :func:`chat_request` checks the
fields of an OpenAI chat-completions request and :func:`chat_completion` builds the reply body,
so the two servers agree on the API they speak.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
import resource
import sys
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

HOST = "127.0.0.1"
MAX_BODY = 1 << 20  # bytes in one request body
MAX_HEAD = 64 * 1024  # bytes in a request line and its headers
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class HTTPError(Exception):
    """A request the service refuses: its ``status`` and a one-line ``message`` (sent as JSON)."""

    def __init__(self, status: int, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")


@dataclass
class Request:
    """One parsed HTTP request (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (raises :class:`HTTPError` 400 for anything else)."""
        try:
            value = json.loads(self.body or b"{}")
        except RecursionError:
            raise HTTPError(400, "the request body is JSON nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, a number of > 4,300 digits
            raise HTTPError(400, f"the request body is not JSON ({_first_line(error)})") from None
        if not isinstance(value, dict):
            raise HTTPError(400, "the request body is not a JSON object")
        return value


@dataclass
class Response:
    """One HTTP response: a status, a body and its content type, extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(obj).encode(), headers=headers or {})

    @classmethod
    def error(cls, status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None) -> Response:
        """An OpenAI-style error body (``{"error": {"message": ..., "type": ...}}``)."""
        kind = kind or ("invalid_request_error" if status < 500 else "server_error")
        return cls.json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers)

    def encode(self, keep_alive: bool) -> bytes:
        reason = _REASONS.get(self.status, "Status")
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Type: {self.content_type}", f"Content-Length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def _first_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


class _Connection(asyncio.Protocol):
    """One client connection: reads requests one at a time, answers them in order."""

    def __init__(self, service: LoopbackService) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: tuple[str, str, dict[str, str], int, bool] | None = None  # a request waiting for its body
        self.busy = False  # a request of this connection is being answered
        self.closing = False
        self.paused = False
        self.last_active = time.monotonic()
        self.task: asyncio.Task | None = None

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        connections = self.service._connections
        if len(connections) >= self.service._max_connections:
            self._refuse(Response.error(503, "server busy: too many connections", "server_error"))
            return
        connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.service._connections.discard(self)
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_active = time.monotonic()
        self.buffer += data
        if self.busy:
            if len(self.buffer) > MAX_HEAD + MAX_BODY and not self.paused:
                self.paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self._process()

    # ------------------------------------------------------------------ requests
    def _process(self) -> None:
        while not self.busy and not self.closing:
            try:
                parsed = self._parse()
            except HTTPError as error:
                self._refuse(Response.error(error.status, error.message, error.kind))
                return
            if parsed is None:
                break
            request, keep_alive = parsed
            result = self.service._dispatch(request)
            if inspect.isawaitable(result):
                self.busy = True
                self.task = asyncio.ensure_future(self._finish(result, keep_alive))
                return
            self._send(result, keep_alive)
        if self.paused and not self.closing:
            self.paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    async def _finish(self, pending: Awaitable[Response], keep_alive: bool) -> None:
        try:
            response = await self.service._guarded(pending)
        except asyncio.CancelledError:
            return
        self.task = None
        self.busy = False
        self.last_active = time.monotonic()
        self._send(response, keep_alive)
        if not self.closing:
            self._process()

    def _send(self, response: Response, keep_alive: bool) -> None:
        if self.closing:
            return
        self.transport.write(response.encode(keep_alive))  # type: ignore[union-attr]
        if not keep_alive:
            self.closing = True
            self.transport.close()  # type: ignore[union-attr]

    def _refuse(self, response: Response) -> None:
        """Answer an error and close: what follows on this connection cannot be trusted as a request."""
        self._send(response, keep_alive=False)

    def _parse(self) -> tuple[Request, bool] | None:
        """The next complete request in the buffer, ``None`` when more bytes are needed."""
        if self.head is None:
            while self.buffer[:2] == b"\r\n":  # a stray CRLF after a previous body is allowed
                del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise HTTPError(431, f"request line and headers exceed {MAX_HEAD} bytes")
                return None
            if end > MAX_HEAD:
                raise HTTPError(431, f"request line and headers exceed {MAX_HEAD} bytes")
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            self.head = _parse_head(head)
            method, _, headers, length, _ = self.head
            if length and headers.get("expect", "").lower() == "100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        method, path, headers, length, keep_alive = self.head
        if len(self.buffer) < length:
            return None
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        self.head = None
        return Request(method, path, headers, body), keep_alive


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str], int, bool]:
    """Method, path, headers, body length and keep-alive of a request head (raises :class:`HTTPError`)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith("/"):
        raise HTTPError(400, "malformed request line")
    method, path, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HTTPError(505, f"unsupported HTTP version {version[:20]!r}")
    headers: dict[str, str] = {}
    lengths: set[str] = set()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise HTTPError(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length":
            lengths.add(value)
        headers[name] = value
    if "transfer-encoding" in headers:
        raise HTTPError(411, "Transfer-Encoding is not accepted: send the body with a Content-Length")
    length = 0
    if lengths:
        if len(lengths) > 1:
            raise HTTPError(400, "conflicting Content-Length headers")
        value = lengths.pop()
        if not value.isascii() or not value.isdigit():
            raise HTTPError(400, f"Content-Length {value[:30]!r} is not a decimal number of bytes")
        if len(value) > 12 or int(value) > MAX_BODY:
            raise HTTPError(413, f"request body over {MAX_BODY} bytes")
        length = int(value)
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return method.upper(), path, headers, length, keep_alive


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to the hard one (for many connections); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


class LoopbackService:
    """Start/stop/port/base_url of an HTTP service on 127.0.0.1 (see the module docstring)."""

    thread_name: ClassVar[str] = "hvae-loopback"
    reuse_address: ClassVar[bool] = False
    max_connections: ClassVar[int] = 10_000
    idle_timeout: ClassVar[float] = 60.0
    backlog: ClassVar[int] = 4096

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._max_connections = min(self.max_connections, max(16, soft - 64)) if soft != resource.RLIM_INFINITY else self.max_connections
        self.handler_errors = 0  # requests whose handler raised (answered 500)

    # ------------------------------------------------------------------ what a subclass gives
    def handle(self, request: Request) -> Response | Awaitable[Response]:
        """The response to one request (runs on the service's event loop: never block in it)."""
        raise NotImplementedError

    def before_shutdown(self) -> None:
        """Hook: runs before the service stops (requests still in flight are then cancelled)."""

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, request: Request) -> Response | Awaitable[Response]:
        try:
            return self.handle(request)
        except HTTPError as error:
            return Response.error(error.status, error.message, error.kind)
        except Exception as error:  # noqa: BLE001 - a handler bug answers 500 and the service stays up
            return self._internal_error(error)

    async def _guarded(self, pending: Awaitable[Response]) -> Response:
        try:
            return await pending
        except HTTPError as error:
            return Response.error(error.status, error.message, error.kind)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001
            return self._internal_error(error)

    def _internal_error(self, error: Exception) -> Response:
        self.handler_errors += 1
        message = f"{type(self).__name__}: internal error: {type(error).__name__}: {_first_line(error)}"
        print(message, file=sys.stderr, flush=True)
        return Response.error(500, message)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Any:
        """Bind and serve in a background thread (raises ``OSError`` when the port is taken)."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        started = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(lambda: _Connection(self), HOST, self.requested_port,
                                       backlog=self.backlog, reuse_address=self.reuse_address)
                )
            except BaseException as error:  # noqa: BLE001 - handed to the starting thread
                failure.append(error)
                started.set()
                loop.close()
                return
            sweeper = loop.create_task(self._sweep())
            started.set()
            try:
                loop.run_forever()
            finally:
                sweeper.cancel()
                self._close_all(loop)
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name=self.thread_name, daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    async def _sweep(self) -> None:
        """Close connections idle (or stuck in half a request) for longer than ``idle_timeout``."""
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
            cutoff = time.monotonic() - self.idle_timeout
            for connection in [c for c in self._connections if not c.busy and c.last_active < cutoff]:
                connection.closing = True
                if connection.transport is not None:
                    connection.transport.close()

    def _close_all(self, loop: asyncio.AbstractEventLoop) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.abort()
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        if server is not None:
            loop.run_until_complete(server.wait_closed())

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self.before_shutdown()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


# ------------------------------------------------------------------------ the OpenAI chat API

_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` if it is a well-formed chat-completions request, else :class:`HTTPError` 400 naming the field.

    Checked: ``messages`` (a non-empty list of objects with a known ``role`` and a ``content`` that
    is a string, null or a list of ``{"type": "text", "text": ...}`` parts), ``model`` (a string),
    ``seed`` (an integer of at most 64 bits), ``temperature``/``top_p`` (finite numbers),
    ``max_tokens`` (a positive integer) and ``response_format`` (an object whose ``json_schema`` and
    ``schema`` are objects).
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HTTPError(400, "'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise HTTPError(400, f"messages[{i}] is not an object")
        if message.get("role") not in _ROLES:
            raise HTTPError(400, f"messages[{i}].role must be one of {', '.join(sorted(_ROLES))}")
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
                    raise HTTPError(400, f"messages[{i}].content[{j}] is not a text part")
        elif content is not None and not isinstance(content, str):
            raise HTTPError(400, f"messages[{i}].content must be a string, a list of parts or null")
    if "model" in body and not isinstance(body["model"], str):
        raise HTTPError(400, "'model' must be a string")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**64):
        raise HTTPError(400, "'seed' must be an integer of at most 64 bits")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)):
            raise HTTPError(400, f"'{name}' must be a finite number")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 < max_tokens < 2**31):
        raise HTTPError(400, "'max_tokens' must be a positive integer")
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict) or not isinstance(response_format.get("type", ""), str):
            raise HTTPError(400, "'response_format' must be an object with a string 'type'")
        for key in ("json_schema", "schema"):
            if response_format.get(key) is not None and not isinstance(response_format[key], dict):
                raise HTTPError(400, f"response_format.{key} must be an object")
        inner = response_format.get("json_schema") or {}
        if inner.get("schema") is not None and not isinstance(inner["schema"], dict):
            raise HTTPError(400, "response_format.json_schema.schema must be an object")
    return body


def message_text(content: Any) -> str:
    """The text of a message's ``content`` (a string, a list of text parts, or null)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


CHAT_TEMPLATE_TOKENS_PER_MESSAGE = 5  # ChatML: <|im_start|> role \n ... <|im_end|> \n
CHAT_TEMPLATE_TOKENS_PER_REPLY = 3  # the assistant turn the template opens: <|im_start|> assistant \n


def chat_completion(body: dict[str, Any], text: str | None, *, model: str, completion_id: str, fingerprint: str) -> dict[str, Any]:
    """A ``chat.completion`` reply body with ``text`` (None: ``content: null``).

    ``usage`` is billed as a chat server bills it: the text at four characters a token, plus the
    tokens a ChatML chat template (SmolLM2's, Qwen's) wraps around each message and the reply.
    """
    messages = body.get("messages") or []
    prompt_chars = sum(len(message_text(m.get("content"))) for m in messages)
    template_tokens = CHAT_TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + CHAT_TEMPLATE_TOKENS_PER_REPLY
    prompt_tokens, completion_tokens = prompt_chars // 4 + template_tokens, max(1, len(text or "") // 4)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or model,
        "system_fingerprint": fingerprint,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
