"""The lean HTTP client of ``openai`` backends: chat completions over keep-alive HTTP/1.1, across replicas.

autogen-ext's ``OpenAIChatCompletionClient`` goes through the OpenAI SDK and httpx, which cost
about 4.5 ms of CPU per request on a 2-core machine (the SDK's request transform, and httpcore's
pool assignment, which scans the pool for every queued request): a ceiling near 200 requests a
second, far below what a vLLM server answers. :class:`WireClient` sends the **same JSON body**
(``tests/test_llm_wire.py`` compares the two as parsed JSON) over plain asyncio
streams instead: one request line, a few headers, ``json.dumps``; the reply is read by its
``Content-Length`` (or chunked). It is an autogen ``ChatCompletionClient`` like the one it
replaces, so the agents' setup and talk stay autogen conversations.

**Replicas.** ``base_url`` may be a list (one server per GPU, say). Each request goes to the live
replica with the fewest requests in flight (ties: the first listed), over one of that replica's
idle connections (a new one when none is idle). A request whose replica cannot be reached moves
at once to another live replica it has not tried (not counted as a retry); a replica that fails
``dead_after`` (2) connection attempts in a row is taken out with one warning line on stderr.
When every live replica has failed the request, the error is raised like any connection error
(the client's retries and the backend's health monitor, :mod:`.health`, decide); when the last
replica of several is taken out, :class:`~hvae.agents.llm.backends.BackendUnavailable` stops the
run — only then. Answers with an HTTP error status (429, 5xx)
are the server's answer, not a dead replica.

HTTPS works (``ssl`` default context); proxies from the environment are not used (``client:
autogen`` honours them). A reply body larger than :data:`MAX_REPLY_BYTES` is refused, not read.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from autogen_core.models import AssistantMessage, CreateResult, LLMMessage, ModelInfo, RequestUsage, SystemMessage, UserMessage

from hvae.agents.llm.backends import BackendUnavailable
from hvae.agents.llm.chat_client import TextChatClient


#: The largest reply body read (a chat completion is a few KB; a server announcing more is broken).
MAX_REPLY_BYTES = 16 << 20


class WireStatusError(Exception):
    """An HTTP error answer (``status_code``; ``response.headers`` for ``Retry-After``)."""

    def __init__(self, status_code: int, headers: Mapping[str, str], text: str) -> None:
        super().__init__(f"HTTP {status_code}: {text[:200]}")
        self.status_code = status_code
        self.response = _Response(dict(headers))


@dataclass
class _Response:
    headers: dict[str, str]


class APIConnectionError(ConnectionError):
    """The server could not be reached (named as the OpenAI SDK names it, so messages read the same)."""


class ReplyFormatError(ValueError):
    """A 200 answer whose body is not a chat completion."""


@dataclass(eq=False)
class Replica:
    """One server of a backend: where it is, its idle connections and its health."""

    url: str  # as configured (for messages; may hold credentials, so only redacted copies are shown)
    host: str
    port: int
    path: str  # "/v1/chat/completions"
    tls: bool
    idle: deque = field(default_factory=deque)
    in_flight: int = 0
    alive: bool = True
    failures_in_row: int = 0
    requests: int = 0
    connection_failures: int = 0

    def report(self) -> dict[str, Any]:
        from hvae.agents.llm.secrets import redact_url

        return {"url": redact_url(self.url), "alive": self.alive, "requests": self.requests,
                "connection_failures": self.connection_failures}


def parse_replica(url: str) -> Replica:
    """A :class:`Replica` for an ``http(s)://host[:port]/prefix`` base URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host (got {parts.scheme or 'no'} scheme)")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    return Replica(url, parts.hostname, port, parts.path.rstrip("/") + "/chat/completions", tls)


def _role(message: LLMMessage) -> dict[str, Any]:
    """One message as autogen-ext's OpenAI client puts it in the body (text content only)."""
    content = message.content
    if not isinstance(content, str):
        raise ValueError(f"hvae sends text messages only (got {type(content).__name__} content)")
    if isinstance(message, SystemMessage):
        return {"content": content, "role": "system"}
    if isinstance(message, UserMessage):
        return {"content": content, "role": "user", "name": message.source}
    if isinstance(message, AssistantMessage):
        return {"content": content, "role": "assistant"}  # autogen-ext names the user turns only
    raise ValueError(f"hvae sends system, user and assistant messages only (got {type(message).__name__})")


class WireClient(TextChatClient):
    """Chat completions over raw HTTP/1.1 to one or more replicas (see the module docstring)."""

    def __init__(
        self,
        urls: Sequence[str],
        model: str,
        model_info: Mapping[str, Any],
        *,
        api_key: str | None = None,
        dead_after: int = 2,
        label: str = "backend",
    ) -> None:
        if not urls:
            raise ValueError("a WireClient needs at least one base URL")
        self.replicas = [parse_replica(url) for url in urls]
        self.model = model
        self._model_info = ModelInfo(**dict(model_info))  # type: ignore[typeddict-item]
        self.label = label
        self.dead_after = dead_after
        headers = ["Content-Type: application/json", "Accept: application/json", "Connection: keep-alive"]
        if api_key:
            headers.append(f"Authorization: Bearer {api_key}")
        self._headers = "\r\n".join(headers)
        self._ssl = ssl.create_default_context() if any(r.tls for r in self.replicas) else None

    # ------------------------------------------------------------------ the request body
    def body(self, messages: Sequence[LLMMessage], args: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body autogen-ext's client would send for ``messages`` and per-call ``args``."""
        body: dict[str, Any] = {"messages": [_role(m) for m in messages], "model": self.model, "stream": False}
        body.update(args)
        return body

    # ------------------------------------------------------------------ ChatCompletionClient
    async def answer(self, messages: Sequence[LLMMessage], args: Mapping[str, Any]) -> CreateResult:
        payload = json.dumps(self.body(messages, args), ensure_ascii=False).encode("utf-8")
        reply = await self.post(payload)
        try:
            choice = reply["choices"][0]
            content = choice["message"]["content"]
            usage = reply.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ReplyFormatError(f"the server's reply is not a chat completion ({type(error).__name__}: {error})") from None
        if not isinstance(content, str):
            content = "" if content is None else str(content)
        finish = choice.get("finish_reason") or "unknown"
        self.add_usage(prompt_tokens, completion_tokens)
        return CreateResult(
            finish_reason=finish if finish in ("stop", "length", "function_calls", "content_filter") else "unknown",
            content=content,
            usage=RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
            cached=False,
        )

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    async def close(self) -> None:
        for replica in self.replicas:
            while replica.idle:
                _, writer = replica.idle.popleft()
                writer.close()

    # ------------------------------------------------------------------ replicas and HTTP
    def pick(self, exclude: Sequence[Replica] = ()) -> Replica:
        """The live replica with the fewest requests in flight, ``exclude`` left out when possible.

        When no replica is live, all of them are candidates (the backend's health decides).
        """
        live = [r for r in self.replicas if r.alive and r not in exclude] or [r for r in self.replicas if r.alive]
        live = live or self.replicas
        best = live[0]
        for replica in live[1:]:
            if replica.in_flight < best.in_flight:
                best = replica
        return best

    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    def live_replicas(self) -> int:
        return sum(1 for r in self.replicas if r.alive)

    async def post(self, payload: bytes) -> dict[str, Any]:
        """POST ``payload`` to a replica and return the parsed JSON reply (fails over between replicas)."""
        tried: list[Replica] = []
        while True:
            replica = self.pick(tried)
            replica.in_flight += 1
            replica.requests += 1
            try:
                status, headers, text = await self._exchange(replica, payload)
            except (OSError, asyncio.IncompleteReadError, ConnectionError) as error:
                replica.connection_failures += 1
                replica.failures_in_row += 1
                if replica.alive and replica.failures_in_row >= self.dead_after and len(self.replicas) > 1:
                    self._take_out(replica, error)
                    if not self.live_replicas():
                        raise BackendUnavailable(
                            f"{self.label}: all {len(self.replicas)} replicas are unreachable "
                            f"(last: {type(error).__name__}: {error})"
                        ) from None
                tried.append(replica)
                if any(r.alive and r not in tried for r in self.replicas):
                    continue  # another live replica takes the request at once
                raise APIConnectionError(f"Connection error ({type(error).__name__}: {error})") from None
            finally:
                replica.in_flight -= 1
            replica.failures_in_row = 0
            if status != 200:
                raise WireStatusError(status, headers, text.decode("utf-8", "replace"))
            try:
                return json.loads(text)
            except ValueError:
                raise ReplyFormatError("the server's reply is not JSON") from None

    def _take_out(self, replica: Replica, error: BaseException) -> None:
        from hvae.agents.llm.secrets import redact_url

        replica.alive = False
        while replica.idle:
            replica.idle.popleft()[1].close()
        print(
            f"hvae: warning: {self.label}: replica {redact_url(replica.url)} is not answering "
            f"({type(error).__name__}); {self.live_replicas()} of {len(self.replicas)} replicas left",
            file=sys.stderr, flush=True,
        )

    async def _exchange(self, replica: Replica, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        head = (
            f"POST {replica.path} HTTP/1.1\r\nHost: {replica.host}:{replica.port}\r\n{self._headers}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode("latin-1")
        while replica.idle:  # a kept-alive connection the server may have closed meanwhile
            reader, writer = replica.idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            try:
                return await self._roundtrip(replica, reader, writer, head, payload)
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                writer.close()  # stale: try the next idle one, then a fresh connection
            except BaseException:  # cancelled (timeout): the connection is in an unknown state
                writer.close()
                raise
        if replica.tls:
            reader, writer = await asyncio.open_connection(replica.host, replica.port, ssl=self._ssl, server_hostname=replica.host)
        else:
            reader, writer = await asyncio.open_connection(replica.host, replica.port)
        try:
            return await self._roundtrip(replica, reader, writer, head, payload)
        except BaseException:
            writer.close()
            raise

    async def _roundtrip(self, replica: Replica, reader, writer, head: bytes, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        writer.write(head + payload)
        status_and_headers = await reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= MAX_REPLY_BYTES:
                writer.close()
                raise ReplyFormatError(f"the server announced a reply of {length} bytes (at most {MAX_REPLY_BYTES} are read)")
            text = await reader.readexactly(length)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            text = await _read_chunked(reader)
        else:
            text = await reader.read(MAX_REPLY_BYTES + 1)  # the server closes the connection at the end
            if len(text) > MAX_REPLY_BYTES:
                writer.close()
                raise ReplyFormatError(f"the server's reply exceeds {MAX_REPLY_BYTES} bytes")
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            replica.idle.append((reader, writer))
        return status, headers, text


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts, total = [], 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        total += size
        if total > MAX_REPLY_BYTES:
            raise ReplyFormatError(f"the server's chunked reply exceeds {MAX_REPLY_BYTES} bytes")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
