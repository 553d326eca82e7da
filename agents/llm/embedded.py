"""The embedded backend's model client: talks to llama.cpp running in its own worker process.

:class:`EmbeddedClient` is an autogen ``ChatCompletionClient`` (what ``AssistantAgent`` calls). It
starts ``python -m hvae.agents.llm.embedded_worker`` on first use (one worker per backend, i.e.
per model instance), sends each request as one JSON line and reads one JSON line back, one call
at a time (two concurrent calls on one llama.cpp model abort the process, so they are serialised
by a lock). See :mod:`hvae.agents.llm.embedded_worker` for the protocol and the prefix cache.

Why a separate process: whatever the native code does — a segmentation fault on an unusual CPU,
an out-of-memory kill — only the worker dies. The client then raises :class:`EmbeddedWorkerDied`
naming the signal and the worker's last words on stderr; it is a retryable error, so the
backend's ``retries`` start a fresh worker and repeat the call (no decision is lost). A call
that runs longer than the backend's ``timeout_s`` kills the worker the same way. When the worker
keeps dying, :class:`~hvae.agents.llm.client.HvaeClient` gives up with
:class:`~hvae.agents.llm.backends.BackendUnavailable` and the run stops as ``failed`` (resumable).

    client = EmbeddedClient(EmbeddedBackend(kind="embedded"))
    result = await client.create([UserMessage(content="Say A.", source="user")])
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)

from hvae.agents.llm.backends import BackendError, EmbeddedBackend, embedded_model_path
from hvae.agents.llm.chat_client import TextChatClient

#: Seconds a fresh worker may take to load its model before it counts as failed.
LOAD_TIMEOUT_S = 120.0

EMBEDDED_MODEL_INFO: ModelInfo = {
    "vision": False,
    "function_calling": False,
    "json_output": True,
    "family": "unknown",
    "structured_output": True,
}


class EmbeddedWorkerDied(ConnectionError):
    """The worker process ended (crash, kill, out of memory) or did not answer in time."""


def default_threads() -> int:
    """llama.cpp threads when the backend names none: one per physical core (at most 8).

    Measured with ``benchmarks/bench_embedded.py`` on 2 cores: on a quiet machine 2 threads make
    1.2 decisions/s and 1 thread 0.6/s. llama.cpp's threads spin while they wait for each other,
    though, so when the cores are busy with other work 2 threads fell to 0.35/s while 1 thread
    kept 0.65/s: set ``n_threads: 1`` on a shared machine.
    """
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil comes with dask.distributed
        cores = None
    return max(1, min(8, cores or os.cpu_count() or 1))


def describe_exit(returncode: int | None) -> str:
    """``killed by SIGSEGV (segmentation fault)`` / ``exited with status 1``."""
    if returncode is None:
        return "is unresponsive"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = {"SIGSEGV": " (segmentation fault)", "SIGILL": " (illegal instruction)", "SIGKILL": " (killed, e.g. out of memory)",
                "SIGABRT": " (aborted)", "SIGBUS": " (bus error)"}.get(name, "")
        return f"was killed by {name}{hint}"
    return f"exited with status {returncode}"


def _message(message: LLMMessage) -> dict[str, str]:
    role = {SystemMessage: "system", UserMessage: "user", AssistantMessage: "assistant"}.get(type(message))
    if role is None:
        raise BackendError(f"the embedded model cannot take a {type(message).__name__}")
    content = message.content
    if not isinstance(content, str):
        raise BackendError("the embedded model takes text messages only")
    return {"role": role, "content": content}


class EmbeddedClient(TextChatClient):
    """A GGUF model served by a private worker process (see the module docstring)."""

    def __init__(self, config: EmbeddedBackend) -> None:
        self.config = config
        self.model_path = Path(config.model_path) if config.model_path else embedded_model_path()
        if not self.model_path.is_file():
            raise BackendError(f"embedded model file {self.model_path} does not exist")
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._stderr_tail: deque[str] = deque(maxlen=12)
        self.context_tokens = config.n_ctx
        self.starts = 0  # worker processes started (1 + restarts)
        self.busy = False  # a request is in flight (tests kill the worker then)
        #: Totals over this client's answered requests: prompt tokens, the part restored from the
        #: worker's prefix cache, generated tokens and the worker's compute seconds.
        self.stats = {"requests": 0, "prompt_tokens": 0, "reused_tokens": 0, "completion_tokens": 0, "compute_s": 0.0}

    # ------------------------------------------------------------------ the worker process
    @property
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def _start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "hvae.agents.llm.embedded_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1,
        )
        self._stderr_tail.clear()
        threading.Thread(target=self._drain_stderr, args=(process,), daemon=True).start()
        self._process = process
        self.starts += 1
        config = self.config
        settings = {
            "model_path": str(self.model_path), "n_ctx": config.n_ctx, "n_threads": config.n_threads or default_threads(),
            "seed": config.seed, "prompt_cache_mb": config.prompt_cache_mb,
        }
        reply = self._roundtrip(process, settings, LOAD_TIMEOUT_S, while_="loading the model")
        if not reply.get("ready"):
            self._stop(process)
            raise BackendError(f"the embedded model {self.model_path.name} could not be loaded: {reply.get('error')}")
        return process

    def _drain_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip():
                self._stderr_tail.append(line.rstrip()[:300])

    def _died(self, process: subprocess.Popen[str], while_: str) -> EmbeddedWorkerDied:
        try:
            returncode = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
        time.sleep(0.05)  # let the stderr reader catch the last lines
        last = self._stderr_tail[-1] if self._stderr_tail else ""
        self._process = None
        detail = f"; its last message: {last}" if last else ""
        return EmbeddedWorkerDied(
            f"the embedded model worker (pid {process.pid}) {describe_exit(returncode)} while {while_}{detail}"
        )

    def _roundtrip(self, process: subprocess.Popen[str], payload: dict[str, Any], timeout: float, while_: str) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(payload) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(process, while_) from None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            process.kill()
            process.wait()
            self._process = None
            raise EmbeddedWorkerDied(f"the embedded model worker did not answer within {timeout:g} s while {while_}; it was stopped")
        line = process.stdout.readline()
        if not line.endswith("\n"):  # nothing, or half a reply: the worker ended mid-answer
            raise self._died(process, while_)
        return json.loads(line)

    def _exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                process = self._start()  # first use, or the last worker died between calls
            self.busy = True
            try:
                return self._roundtrip(process, payload, self.config.timeout_s, while_="answering a request")
            finally:
                self.busy = False

    def _stop(self, process: subprocess.Popen[str] | None) -> None:
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    # ------------------------------------------------------------------ ChatCompletionClient
    async def answer(self, messages: Sequence[LLMMessage], args: Mapping[str, Any]) -> CreateResult:
        args = dict(args)
        payload: dict[str, Any] = {
            "messages": [_message(m) for m in messages],
            "max_tokens": args.get("max_tokens", self.config.max_tokens),
            "temperature": args.get("temperature", self.config.temperature),
            "top_p": args.get("top_p", self.config.top_p),
            "seed": args.get("seed", self.config.seed),
        }
        response_format = args.get("response_format") or {}
        if response_format.get("type") == "letter":
            payload["letters"] = response_format["letters"]
        elif response_format.get("type") == "json_object":
            payload["json_schema"] = response_format.get("schema") or {"type": "object"}
        reply = await asyncio.to_thread(self._exchange, payload)
        if not reply.get("ok"):
            raise RuntimeError(f"the embedded model failed a request: {reply.get('error')}")
        self.stats["requests"] += 1
        for key in ("prompt_tokens", "reused_tokens", "completion_tokens", "compute_s"):
            self.stats[key] += reply.get(key, 0)
        usage = RequestUsage(prompt_tokens=reply["prompt_tokens"], completion_tokens=reply["completion_tokens"])
        self.add_usage(usage.prompt_tokens, usage.completion_tokens)
        finish = reply.get("finish_reason", "stop")
        return CreateResult(
            finish_reason=finish if finish in ("stop", "length") else "unknown",
            content=reply["content"],
            usage=usage,
            cached=False,
        )

    async def close(self) -> None:
        with self._lock:
            self._stop(self._process)
            self._process = None

    @property
    def model_info(self) -> ModelInfo:
        return EMBEDDED_MODEL_INFO
