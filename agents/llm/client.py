"""The model client every LLM agent talks through: per-call settings, cache, retries, accounting.

:class:`HvaeClient` sits between the agents and one backend's raw client. Every call names its
settings **explicitly** (:class:`CallSettings`: agent, round, phase, attempt, token cap, JSON schema
and the per-call seed; the accounting of the call lands on its :class:`CallRecord`), and
:meth:`HvaeClient.complete`:

1. builds the **full request** (model identity, sampling, seed, response format, messages) and
   answers from the :class:`~hvae.agents.llm.cache.ResponseCache` when it has it;
2. otherwise waits for a slot (``max_concurrency``; the embedded model runs one call at a time,
   in its worker process), calls the model with a timeout, and retries timeouts, connection
   errors, 408/409/429, 5xx and a dead embedded worker (see :func:`backoff_delay`); a worker that
   still dies after the retries raises :class:`~hvae.agents.llm.backends.BackendUnavailable`,
   which stops the run;
3. records latency, tokens, cache hit, retries and errors on the call's :class:`CallRecord`,
   writes a transcript line, tells the backend's :class:`~hvae.agents.llm.health.BackendHealth`
   whether the call (after its retries) got an answer — which raises
   :class:`~hvae.agents.llm.backends.BackendUnavailable` too when the backend is dead — and adds
   the call to the backend's :class:`CallStats` (in flight, calls/s, latency percentiles).

Decisions call :meth:`HvaeClient.complete` directly with the agent's saved setup conversation plus
the decision prompt. The agents' setup and talk are autogen conversations: ``AssistantAgent``
only calls ``model_client.create(messages)`` and cannot pass settings, so each agent gets an
:class:`AgentClient` (an autogen ``ChatCompletionClient``) whose ``settings`` the decider sets
before each of the agent's calls (an agent never has two calls in flight).

**Backoff.** Retry ``k`` waits a uniformly random time in ``[0, min(max_backoff_s,
backoff_s·2^(k−1))]`` ("full jitter"), so agents that hit a rate limit together do not retry
together. When the server says how long to wait (``Retry-After`` in seconds or as an HTTP date,
or ``retry-after-ms``), the wait is that time, capped at ``max_backoff_s``, plus the jitter.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

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
from hvae.agents.llm.chat_client import TextChatClient
from hvae.agents.llm.health import BackendHealth, unusable_reply
from hvae.agents.llm.secrets import redact_text
from hvae.agents.llm.transcript import TranscriptWriter
from hvae.agents.llm.wire import WireStatusError


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


class RetryableError(Exception):
    """A failure worth retrying (timeout, rate limit, server error, connection problem)."""


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, BackendUnavailable):
        return False
    if isinstance(error, (asyncio.TimeoutError, TimeoutError, RetryableError, ConnectionError)):
        return True
    if isinstance(error, WireStatusError):
        return error.status_code in (408, 409, 429) or error.status_code >= 500
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


class Slots:
    """A FIFO counting semaphore whose waits cost O(1) however many tasks wait.

    ``asyncio.Semaphore.acquire`` (Python 3.11) calls ``locked()``, which scans every waiter: with
    10,000 agents queued for 256 slots a round costs tens of millions of steps, and the time per
    decision grows with the population. Here a free slot goes to the longest waiter, a cancelled
    waiter is skipped, and nothing is scanned::

        slots = Slots(2)
        async with slots:
            ...
    """

    def __init__(self, value: int) -> None:
        if value < 1:
            raise ValueError("Slots needs at least one slot")
        self._free = value
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release() handed its slot to this waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class CallStats:
    """One backend's traffic as it happens: calls in flight, calls per second, latency percentiles.

    The progress line shows it while a run plays and ``summary.json`` keeps it
    (``llm_traffic``): when ``in flight`` sits at ``max_concurrency`` and latency grows, the
    server is the bottleneck (add a replica); when it sits well below, the client or the
    population is. Latencies are those of calls that reached the backend (cache hits excluded),
    over the last ``window`` calls; calls/s is over the last ``rate_window_s`` seconds.
    """

    def __init__(self, window: int = 2048, rate_window_s: float = 5.0) -> None:
        self.in_flight = 0
        self.peak_in_flight = 0
        self.calls = 0
        self.cache_hits = 0
        self.latencies: deque[float] = deque(maxlen=window)
        self._finished: deque[float] = deque()
        self.rate_window_s = rate_window_s

    def started(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def finished(self, latency_s: float) -> None:
        self.in_flight -= 1
        self.calls += 1
        self.latencies.append(latency_s)
        now = time.perf_counter()
        self._finished.append(now)
        while self._finished and now - self._finished[0] > self.rate_window_s:
            self._finished.popleft()

    def calls_per_s(self) -> float:
        if len(self._finished) < 2:
            return 0.0
        span = max(time.perf_counter() - self._finished[0], 1e-9)
        return len(self._finished) / span

    def percentile(self, q: float) -> float | None:
        ordered = sorted(list(self.latencies))  # (list first: the progress bar reads from its own thread)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def report(self) -> dict[str, Any]:
        p50, p95 = self.percentile(0.5), self.percentile(0.95)
        return {
            "calls": self.calls, "cache_hits": self.cache_hits, "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight, "calls_per_s": round(self.calls_per_s(), 1),
            "latency_p50_s": None if p50 is None else round(p50, 4), "latency_p95_s": None if p95 is None else round(p95, 4),
        }

    def line(self) -> str:
        """``12 in flight · 310 calls/s · p50 41 ms · p95 88 ms`` (for the progress line)."""
        p50, p95 = self.percentile(0.5), self.percentile(0.95)
        text = f"{self.in_flight} in flight · {self.calls_per_s():.0f} calls/s"
        if p50 is not None and p95 is not None:
            text += f" · p50 {1000 * p50:.0f} ms · p95 {1000 * p95:.0f} ms"
        return text


class HvaeClient:
    """Wraps one backend's raw autogen client (see the module docstring)."""

    def __init__(
        self,
        raw: ChatCompletionClient,
        config: BackendConfig,
        *,
        semaphore: Slots | None = None,
        cache: ResponseCache | None = None,
        transcript: TranscriptWriter | None = None,
        health: BackendHealth | None = None,
        stats: CallStats | None = None,
    ) -> None:
        self._raw = raw
        self.config = config
        self._semaphore = semaphore
        self.cache = cache
        self.transcript = transcript
        self.health = health
        self.stats = stats or CallStats()
        self._jitter = random.Random()  # backoff timing only; never part of a request
        self._identity = model_identity(config)
        self._in_process = isinstance(config, EmbeddedBackend)
        #: a dry run's replay against the cache alone (hvae.agents.llm.estimate.CacheTally): every
        #: call is reported to it, and one the cache does not hold raises CacheMiss unsent
        self.cache_only: Any = None
        self.name = ""  # the backend's name, for the replay's tally

    @property
    def raw(self) -> ChatCompletionClient:
        return self._raw

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

    # ------------------------------------------------------------------ one call
    def describe(self, messages: Sequence[LLMMessage], settings: CallSettings | None, extra_create_args: Mapping[str, Any] = {}) -> dict[str, Any]:  # noqa: B006
        """The full request description of a call: what the cache key and the transcript hold."""
        args = {**self._create_args(settings), **dict(extra_create_args)}
        return {"model": self._identity, "args": args, "messages": [_message_dict(m) for m in messages]}

    async def complete(
        self, messages: Sequence[LLMMessage], settings: CallSettings | None, extra_create_args: Mapping[str, Any] = {}  # noqa: B006
    ) -> CreateResult:
        """One call with explicit ``settings`` (``None``: the backend's defaults, no record kept)."""
        record = settings.record if settings else CallRecord()
        request = self.describe(messages, settings, extra_create_args)
        args = request["args"]
        key = request_key(request) if self.cache is not None else ""  # hashing the request costs ~0.1 ms: only for a cache
        started = time.perf_counter()
        latency_before = record.latency_s
        cached = self.cache.get(key) if self.cache is not None else None
        retries = 0
        retries_before = record.retries
        if self.cache_only is not None:
            if cached is None:
                from hvae.agents.llm.estimate import CacheMiss

                self.cache_only.missed(self.name, settings)
                raise CacheMiss("not in the response cache (dry run)")
            self.cache_only.answered(self.name, settings, cached)
        if cached is not None:
            result = CreateResult(
                finish_reason=cached["finish_reason"],
                content=cached["content"],
                usage=RequestUsage(prompt_tokens=cached["tokens_in"], completion_tokens=cached["tokens_out"]),
                cached=True,
            )
            record.cache_hits += 1
            self.stats.cache_hits += 1
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
        if self._semaphore is None:
            return await self._timed(messages, args, record)
        async with self._semaphore:  # time spent queueing here is not latency
            return await self._timed(messages, args, record)

    async def _timed(self, messages, args, record: CallRecord) -> CreateResult:
        stats = self.stats
        stats.started()
        started = time.perf_counter()
        try:
            if self._in_process:
                # the worker enforces timeout_s itself (it is killed); the embedded client waits
                # for it in a thread, so the event loop stays free for other backends meanwhile
                return await self._raw.create(messages, extra_create_args=args)
            async with asyncio.timeout(self.config.timeout_s):  # no extra task per call, unlike wait_for
                return await self._raw.create(messages, extra_create_args=args)
        finally:
            latency = time.perf_counter() - started
            record.latency_s += latency
            stats.finished(latency)

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

    async def close(self) -> None:
        await self._raw.close()

    def total_usage(self) -> RequestUsage:
        return self._raw.total_usage()


class AgentClient(TextChatClient):
    """One agent's autogen ``ChatCompletionClient``: its :class:`HvaeClient` with the next call's settings.

    ``AssistantAgent`` calls ``create(messages)`` only; the decider sets :attr:`settings` before
    each of the agent's calls (setup and talk), so the settings travel with the agent, never
    through a side channel. A call without settings is a programming error.
    """

    def __init__(self, client: HvaeClient) -> None:
        self.client = client
        self.settings: CallSettings | None = None

    async def answer(self, messages: Sequence[LLMMessage], args: Mapping[str, Any]) -> CreateResult:
        if self.settings is None:
            raise RuntimeError("AgentClient.create called without settings (set .settings before the agent's call)")
        result = await self.client.complete(messages, self.settings, args)
        self.add_usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        return result

    @property
    def model_info(self) -> ModelInfo:
        return self.client.raw.model_info
