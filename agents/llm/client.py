"""The model client every LLM agent talks through: per-call settings, cache, retries, accounting.

``AssistantAgent`` calls ``model_client.create(messages)`` and nothing else: it cannot pass a
token cap, a response format or a seed per call (and llama-cpp ignores the cap given to its
constructor). :class:`HvaeClient` is an autogen ``ChatCompletionClient`` that sits between the
agent and the real client and, for every call:

1. reads the call's settings from a context variable the decider sets (:func:`call_scope`):
   agent, round, phase, attempt, token cap, JSON schema and the per-call seed;
2. builds the **full request** (model identity, sampling, seed, response format, messages) and
   answers from the :class:`~hvae.agents.llm.cache.ResponseCache` when it has it;
3. otherwise waits for a slot (``max_concurrency``; the embedded model runs one call at a time,
   in its worker process), calls the model with a timeout, and retries timeouts, connection
   errors, 408/409/429, 5xx and a dead embedded worker (see :func:`backoff_delay`); a worker that
   still dies after the retries raises :class:`~hvae.agents.llm.backends.BackendUnavailable`,
   which stops the run;
4. records latency, tokens, cache hit, retries and errors on the scope's :class:`CallRecord`,
   writes a transcript line, and tells the backend's
   :class:`~hvae.agents.llm.health.BackendHealth` whether the call (after its retries) got an
   answer — which raises :class:`~hvae.agents.llm.backends.BackendUnavailable` too when the
   backend is dead (unreachable, or failing too often).

**Backoff.** Retry ``k`` waits a uniformly random time in ``[0, min(max_backoff_s,
backoff_s·2^(k−1))]`` ("full jitter"), so agents that hit a rate limit together do not retry
together. When the server says how long to wait (``Retry-After`` in seconds or as an HTTP date,
or ``retry-after-ms``), the wait is that time, capped at ``max_backoff_s``, plus the jitter.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)

from hvae.agents.llm.backends import BackendConfig, BackendUnavailable, EmbeddedBackend, model_identity
from hvae.agents.llm.embedded import EmbeddedWorkerDied
from hvae.agents.llm.cache import ResponseCache, request_key
from hvae.agents.llm.health import BackendHealth, unusable_reply
from hvae.agents.llm.secrets import redact_text
from hvae.agents.llm.transcript import TranscriptWriter


@dataclass
class CallRecord:
    """What happened on the model calls made inside one :func:`call_scope`."""

    calls: int = 0  # requests that reached the backend (successful or not)
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    tokens_in: int = 0  # tokens of the replies used (cached ones included)
    tokens_out: int = 0
    computed_tokens_in: int = 0  # tokens the backend actually processed (what a run costs)
    computed_tokens_out: int = 0
    latency_s: float = 0.0
    last_error: str | None = None


@dataclass
class CallSettings:
    """Per-call settings the decider sets before talking to its agent."""

    agent_id: int
    group: str
    round: int | None
    phase: str
    attempt: int
    max_tokens: int
    seed: int
    schema: dict[str, Any] | None = None
    record: CallRecord = field(default_factory=CallRecord)


_CURRENT: contextvars.ContextVar[CallSettings | None] = contextvars.ContextVar("hvae_call", default=None)


@contextmanager
def call_scope(settings: CallSettings) -> Iterator[CallRecord]:
    """Make ``settings`` apply to every model call made inside the block (per asyncio task)."""
    token = _CURRENT.set(settings)
    try:
        yield settings.record
    finally:
        _CURRENT.reset(token)


class RetryableError(Exception):
    """A failure worth retrying (timeout, rate limit, server error, connection problem)."""


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, BackendUnavailable):
        return False
    if isinstance(error, (asyncio.TimeoutError, TimeoutError, RetryableError, ConnectionError)):
        return True
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        return False
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    status = getattr(error, "status_code", 0) if isinstance(error, openai.APIStatusError) else 0
    return status in (408, 409, 429) or status >= 500


def retry_after_s(error: BaseException) -> float | None:
    """How long the server asked us to wait (``retry-after-ms`` or ``Retry-After``), if it did."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        value = headers.get("retry-after")
    except Exception:  # noqa: BLE001 - not a headers mapping
        return None
    seconds: float | None = None
    if millis is not None:
        try:
            seconds = float(millis) / 1000
        except ValueError:
            seconds = None
    if seconds is None and value is not None:
        try:
            seconds = float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value)
                seconds = when.timestamp() - time.time()
            except (TypeError, ValueError, OverflowError):
                return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full jitter, plus Retry-After.

    ``uniform(0, min(cap_s, base_s·2^(attempt−1)))``; when the server sent ``retry_after``,
    ``min(retry_after, cap_s)`` is added, so the wait honours it (bounded) and agents told the
    same time still spread out.
    """
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    jitter = rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
    return jitter if retry_after is None else min(retry_after, cap_s) + jitter


def _message_dict(message: LLMMessage) -> dict[str, Any]:
    role = {SystemMessage: "system", UserMessage: "user", AssistantMessage: "assistant"}.get(type(message), type(message).__name__)
    return {"role": role, "source": getattr(message, "source", None), "content": message.content}


class HvaeClient(ChatCompletionClient):
    """Wraps one backend's raw autogen client (see the module docstring)."""

    def __init__(
        self,
        raw: ChatCompletionClient,
        config: BackendConfig,
        *,
        semaphore: asyncio.Semaphore | None = None,
        cache: ResponseCache | None = None,
        transcript: TranscriptWriter | None = None,
        health: BackendHealth | None = None,
    ) -> None:
        self._raw = raw
        self.config = config
        self._semaphore = semaphore
        self.cache = cache
        self.transcript = transcript
        self.health = health
        self._jitter = random.Random()  # backoff timing only; never part of a request
        self._identity = model_identity(config)
        self._in_process = isinstance(config, EmbeddedBackend)
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    # ------------------------------------------------------------------ request description
    def _create_args(self, settings: CallSettings | None) -> dict[str, Any]:
        config = self.config
        args: dict[str, Any] = {"temperature": config.temperature}
        if config.top_p is not None:
            args["top_p"] = config.top_p
        args["max_tokens"] = settings.max_tokens if settings else config.max_tokens
        if settings is not None:
            args["seed"] = settings.seed
            if settings.schema is not None and config.structured != "none":
                args["response_format"] = self._response_format(settings.schema)
        return args

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        mode = self.config.structured
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "decision", "schema": schema, "strict": True}}
        if mode == "json_object_schema":
            return {"type": "json_object", "schema": schema}
        if mode == "letter":  # a grammar admitting one letter of the menu (embedded backends)
            return {"type": "letter", "letters": "".join(schema["properties"]["choice"]["enum"])}
        return {"type": "json_object"}

    # ------------------------------------------------------------------ ChatCompletionClient
    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = [],
        tool_choice: Any = "auto",
        json_output: bool | type | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        settings = _CURRENT.get()
        record = settings.record if settings else CallRecord()
        args = {**self._create_args(settings), **dict(extra_create_args)}
        request = {"model": self._identity, "args": args, "messages": [_message_dict(m) for m in messages]}
        key = request_key(request)
        started = time.perf_counter()
        latency_before = record.latency_s
        cached = self.cache.get(key) if self.cache is not None else None
        error_text = None
        retries = 0
        retries_before = record.retries
        if cached is not None:
            result = CreateResult(
                finish_reason=cached["finish_reason"],
                content=cached["content"],
                usage=RequestUsage(prompt_tokens=cached["tokens_in"], completion_tokens=cached["tokens_out"]),
                cached=True,
            )
            record.cache_hits += 1
            record.tokens_in += result.usage.prompt_tokens
            record.tokens_out += result.usage.completion_tokens
            record.latency_s += time.perf_counter() - started
        else:
            try:
                result, retries = await self._call_with_retries(messages, args, record)
            except Exception as error:  # after retries: recorded, transcribed, re-raised
                retries = record.retries - retries_before
                error_text = redact_text(f"{type(error).__name__}: {error}")
                record.errors += 1
                record.last_error = error_text
                self._transcribe(settings, request, None, record.latency_s - latency_before, False, retries, error_text)
                if isinstance(error, EmbeddedWorkerDied):
                    raise BackendUnavailable(
                        f"{error} (tried {retries + 1} times; see the README's troubleshooting for the embedded model)"
                    ) from error
                if self.health is not None and not isinstance(error, BackendUnavailable):
                    self.health.failed(error_text)  # raises BackendUnavailable when fail-fast trips
                raise
            if self.health is not None:
                if (problem := unusable_reply(result.content)) is None:
                    self.health.succeeded()
                else:
                    self.health.unusable(problem)  # nothing usable counts as an error (may trip fail-fast)
            if self.cache is not None and isinstance(result.content, str):
                self.cache.put(
                    key,
                    {
                        "content": result.content,
                        "finish_reason": result.finish_reason,
                        "tokens_in": result.usage.prompt_tokens,
                        "tokens_out": result.usage.completion_tokens,
                    },
                )
            record.tokens_in += result.usage.prompt_tokens
            record.tokens_out += result.usage.completion_tokens
            record.computed_tokens_in += result.usage.prompt_tokens
            record.computed_tokens_out += result.usage.completion_tokens
            self._usage = RequestUsage(
                prompt_tokens=self._usage.prompt_tokens + result.usage.prompt_tokens,
                completion_tokens=self._usage.completion_tokens + result.usage.completion_tokens,
            )
        latency = record.latency_s - latency_before
        self._transcribe(settings, request, result, latency, result.cached, retries, None)
        return result

    async def _call_with_retries(self, messages, args, record: CallRecord) -> tuple[CreateResult, int]:
        config = self.config
        attempt = 0
        while True:
            if self.health is not None:
                self.health.check()  # a backend found dead gets no more requests
            try:
                record.calls += 1
                return await self._call_once(messages, args, record), attempt
            except Exception as error:  # noqa: BLE001 - classified below
                if attempt >= config.retries or not _is_retryable(error):
                    raise
                attempt += 1
                record.retries += 1
                await asyncio.sleep(backoff_delay(attempt, config.backoff_s, config.max_backoff_s, retry_after_s(error), self._jitter))

    async def _call_once(self, messages, args, record: CallRecord) -> CreateResult:
        async def call() -> CreateResult:
            # (the embedded client waits for its worker in a thread, so the event loop stays
            # free for other backends' requests meanwhile.)
            return await self._raw.create(list(messages), extra_create_args=args)

        async def timed() -> CreateResult:
            started = time.perf_counter()
            try:
                if self._in_process:
                    return await call()  # the worker enforces timeout_s itself (it is killed)
                return await asyncio.wait_for(call(), self.config.timeout_s)
            finally:
                record.latency_s += time.perf_counter() - started

        if self._semaphore is None:
            return await timed()
        async with self._semaphore:  # time spent queueing here is not latency
            return await timed()

    def _transcribe(self, settings, request, result, latency, cached, retries, error) -> None:
        if self.transcript is None:
            return
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "agent_id": settings.agent_id if settings else None,
            "group": settings.group if settings else None,
            "round": settings.round if settings else None,
            "phase": settings.phase if settings else None,
            "attempt": settings.attempt if settings else None,
            "model": request["model"].get("model"),
            "settings": request["args"],
            "messages": [{"role": m["role"], "content": m["content"]} for m in request["messages"]],
            "reply": result.content if result is not None else None,
            "finish_reason": result.finish_reason if result is not None else None,
            "tokens_in": result.usage.prompt_tokens if result is not None else None,
            "tokens_out": result.usage.completion_tokens if result is not None else None,
            "latency_s": round(latency, 4),
            "cached": bool(cached),
            "retries": retries,
            "error": error,
        }
        self.transcript.write(record)

    def create_stream(
        self, messages, *, tools=[], tool_choice="auto", json_output=None, extra_create_args={}, cancellation_token=None  # noqa: B006
    ) -> AsyncGenerator[str | CreateResult, None]:
        raise NotImplementedError("hvae's LLM deciders do not stream")

    async def close(self) -> None:
        await self._raw.close()

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = []) -> int:  # noqa: B006
        return self._raw.count_tokens(messages, tools=tools)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = []) -> int:  # noqa: B006
        return self._raw.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> Any:  # deprecated in autogen-core but still abstract
        return self.model_info

    @property
    def model_info(self) -> ModelInfo:
        return self._raw.model_info

