"""The backend pool: one model client per backend, shared by every agent that uses it.

A run builds one :class:`BackendPool` from the scenario's ``backends`` (plus the built-in
``embedded`` backend). Clients are created on first use, so a scenario without LLM groups never
loads a model. Each backend has one concurrency limit (``max_concurrency``) shared by all the
groups that use it; ``replay`` backends give every agent its own client so scripted replies do not
depend on scheduling. :func:`build_raw_client` makes the autogen client of one backend's
configuration (:mod:`~hvae.agents.llm.backends`). The pool also owns the response cache, the run's transcript writer and one
:class:`~hvae.agents.llm.health.BackendHealth` per backend (fail fast on a dead backend).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hvae.agents.llm.backends import (
    BackendConfig,
    BackendError,
    EmbeddedBackend,
    OpenAIBackend,
    ReplayBackend,
    default_backends,
)
from hvae.agents.llm.cache import ResponseCache
from hvae.agents.llm.client import CallStats, HvaeClient, Slots
from hvae.agents.llm.health import BackendHealth, HealthPolicy, describe_backend
from hvae.agents.llm.transcript import TranscriptWriter


class BackendPool:
    """Model clients by backend name (see the module docstring)."""

    def __init__(
        self,
        backends: dict[str, BackendConfig] | None = None,
        cache: ResponseCache | None = None,
        policy: HealthPolicy | None = None,
    ) -> None:
        self.configs: dict[str, BackendConfig] = {**default_backends(), **(backends or {})}
        self.cache = cache
        self.policy = policy or HealthPolicy()
        self._health: dict[str, BackendHealth] = {}
        self.transcript: TranscriptWriter | None = None
        self._clients: dict[tuple[str, int | None], HvaeClient] = {}
        self._semaphores: dict[str, Slots] = {}
        self._agent_slots: dict[str, Slots] = {}
        self._stats: dict[str, CallStats] = {}
        self._cache_only: Any = None

    def config(self, name: str) -> BackendConfig:
        if name not in self.configs:
            known = ", ".join(sorted(self.configs))
            raise BackendError(f"unknown backend {name!r}; defined backends: {known}")
        return self.configs[name]

    def check(self, name: str) -> None:
        """Fail early (before a run folder exists) on a backend that cannot work as configured."""
        import os

        from hvae.agents.llm.backends import EmbeddedBackend, OpenAIBackend, embedded_model_path

        config = self.config(name)
        if isinstance(config, EmbeddedBackend):
            path = Path(config.model_path) if config.model_path else embedded_model_path()
            if not path.is_file():
                raise BackendError(f"backend {name!r}: model file {path} does not exist")
        elif isinstance(config, OpenAIBackend):
            if config.api_key_env and not os.environ.get(config.api_key_env):
                raise BackendError(
                    f"backend {name!r} reads its API key from ${config.api_key_env}, which is not set"
                )
            from hvae.agents.llm.secrets import expand_env

            for url in config.base_urls:
                expand_env(url, f"backend {name!r}: base_url")

    def health(self, name: str) -> BackendHealth:
        """The health monitor of backend ``name`` (shared by all its clients)."""
        if name not in self._health:
            self._health[name] = BackendHealth(name, describe_backend(name, self.config(name)), self.policy)
        return self._health[name]

    def health_reports(self) -> dict[str, dict]:
        """Calls and failures per backend used so far (for ``summary.json`` and checkpoints)."""
        return {name: health.report() for name, health in sorted(self._health.items())}

    def restore_health(self, reports: dict[str, dict]) -> None:
        for name, report in reports.items():
            if name in self.configs:
                self.health(name).restore(report)

    def client(self, name: str, agent_id: int) -> HvaeClient:
        config = self.config(name)
        key = (name, agent_id if isinstance(config, ReplayBackend) else None)
        if key not in self._clients:
            semaphore = self._semaphores.setdefault(name, Slots(config.max_concurrency))
            self._clients[key] = HvaeClient(
                build_raw_client(config), config, semaphore=semaphore, cache=self.cache, transcript=self.transcript,
                health=self.health(name), stats=self._stats.setdefault(name, CallStats()),
            )
            self._clients[key].name = name
            self._clients[key].cache_only = self._cache_only
        return self._clients[key]

    def answer_from_cache_only(self, tally: Any) -> None:
        """Replay mode of a dry run: calls the cache holds are answered from it and reported to
        ``tally`` (:class:`~hvae.agents.llm.estimate.CacheTally`), the others fail unsent."""
        self._cache_only = tally
        for client in self._clients.values():
            client.cache_only = tally

    def traffic(self) -> dict[str, dict]:
        """Per backend used so far: calls, cache hits, in flight, calls/s, p50/p95 latency, replicas.

        What ``summary.json`` keeps as ``llm_traffic`` (see :class:`~hvae.agents.llm.client.CallStats`).
        """
        reports = {}
        for name, stats in sorted(self._stats.items()):
            report = stats.report()
            report["max_concurrency"] = self.configs[name].max_concurrency
            raw = self._clients.get((name, None))
            replicas = getattr(raw.raw, "replicas", None) if raw is not None else None
            if replicas is not None and len(replicas) > 1:
                report["replicas"] = [replica.report() for replica in replicas]
            reports[name] = report
        return reports

    def traffic_line(self) -> str:
        """The progress line's backpressure part: ``srv: 16 in flight · 420 calls/s · p50 38 ms · p95 61 ms``."""
        return "; ".join(f"{name}: {stats.line()}" for name, stats in sorted(self._stats.items()) if stats.calls)

    def agent_slot(self, name: str) -> Slots:
        """Bounds how many agents of a backend prepare and run a decision at once.

        It has the backend's ``max_concurrency``: agents beyond it wait *before* building their
        request, so the first requests leave as early as possible. (The client's own semaphore
        still bounds the requests themselves, e.g. across setup and decisions.)
        """
        config = self.config(name)
        return self._agent_slots.setdefault(name, Slots(config.max_concurrency))

    def attach_transcript(self, path: Path) -> None:
        """Write every call from now on to ``path`` (JSONL)."""
        self.transcript = TranscriptWriter(path)
        for client in self._clients.values():
            client.transcript = self.transcript

    async def aclose(self) -> None:
        for client in self._clients.values():
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing must not mask the run's outcome
                pass
        self._clients.clear()
        if self.transcript is not None:
            self.transcript.close()
        if self.cache is not None:
            self.cache.close()


def build_raw_client(config: BackendConfig):
    """The autogen model client for a backend (one per backend; replay: one per agent)."""
    if isinstance(config, EmbeddedBackend):
        from hvae.agents.llm.embedded import EmbeddedClient

        return EmbeddedClient(config)
    if isinstance(config, OpenAIBackend):
        from hvae.agents.llm.secrets import expand_env

        api_key = "not-needed"
        if config.api_key_env:
            api_key = os.environ.get(config.api_key_env, "")
            if not api_key:
                raise BackendError(
                    f"backend model {config.model!r} reads its API key from ${config.api_key_env}, which is not set"
                )
        urls = [expand_env(url, f"backend model {config.model!r}: base_url") for url in config.base_urls]
        if config.client == "lean":
            from hvae.agents.llm.wire import WireClient

            try:
                return WireClient(urls, config.model, config.model_info, api_key=api_key, label=f"backend model {config.model!r}")
            except ValueError as error:
                raise BackendError(f"backend model {config.model!r}: {error}") from None
        kwargs: dict[str, object] = {}
        if config.base_url:
            kwargs["base_url"] = urls[0]
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        return OpenAIChatCompletionClient(
            model=config.model,
            api_key=api_key,
            model_info=config.model_info,
            timeout=config.timeout_s,
            max_retries=0,  # hvae retries itself, with backoff and accounting
            **kwargs,
        )
    from autogen_ext.models.replay import ReplayChatCompletionClient

    client = ReplayChatCompletionClient(list(config.replies))
    client.set_cached_bool_value(False)
    return client
