"""Backend health: a run stops when its LLM backend is dead, instead of finishing on fallbacks.

A decision whose backend call fails (after its retries) falls back to a random option or a void
game — fine for an occasional hiccup, but a run against a backend that is down would otherwise
end ``complete`` with every LLM decision a fallback and a decision VR near chance. Each backend
of a run therefore has a :class:`BackendHealth` that every call that reached the backend reports
to (cache hits do not count; a call counts once, after its retries). By default it **fails fast**,
raising :class:`BackendUnavailable`, when

* **unreachable**: a call fails before the backend has answered a single call in this process
  (at setup, the first calls are the agents' value prompts), or
* **error rate**: more than ``max_error_rate`` of its last ``window`` calls failed (defaults:
  more than 50 % of the last 20; the window must be full first).

The runner turns :class:`BackendUnavailable` into a run that stops as ``failed`` (resumable once
the backend is back), and the CLI prints one line naming the backend and its error and exits 1.
With ``keep_going`` (scenario ``backend_errors: {keep_going: true}`` or ``hvae run --keep-going``)
nothing is raised: the run goes on as before, and the counts end up in ``summary.json``
(``backend_health``) and in a warning line after the run's summary.

:class:`BackendUnavailable` (defined in :mod:`.backends`) is the one exception for a dead backend:
a client raises it itself when it knows the backend is gone (the embedded model's worker process
that keeps dying), and it passes through the decider and the model like the health monitor's own.

    health = BackendHealth("srv", "openai at http://127.0.0.1:9/v1", HealthPolicy())
    health.failed("APIConnectionError: Connection error.")   # raises BackendUnavailable
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from hvae.agents.llm.backends import BackendUnavailable  # the one exception for a dead backend

__all__ = ["BackendHealth", "BackendUnavailable", "BackendUnhealthy", "HealthPolicy", "describe_backend", "unavailable"]


class BackendUnhealthy(BackendUnavailable):
    """Raised by :class:`BackendHealth`: unreachable, or too many failed calls (``keep_going`` lifts it)."""


def unavailable(description: str, reason: str, last_error: str | None = None) -> BackendUnhealthy:
    """The one-line exception for a backend found dead by its health monitor."""
    text = f"backend {description} {reason}"
    if last_error:
        text += f" (last error: {last_error})"
    return BackendUnhealthy(text)


@dataclass(frozen=True)
class HealthPolicy:
    """When a backend counts as unavailable (the scenario's ``backend_errors`` section)."""

    keep_going: bool = False
    window: int = 20
    max_error_rate: float = 0.5


class BackendHealth:
    """Counts one backend's calls and failures and decides when it is unavailable."""

    def __init__(self, name: str, description: str, policy: HealthPolicy | None = None) -> None:
        self.name = name
        self.description = description  # e.g. "'srv' (openai at http://host/v1)"
        self.policy = policy or HealthPolicy()
        self.calls = 0
        self.failures = 0
        self.last_error: str | None = None
        self.tripped: str | None = None  # the first reason it counted as unavailable
        self.answered = False  # in this process
        self._recent: deque[bool] = deque(maxlen=self.policy.window)  # True = failed

    def check(self) -> None:
        """Before a call is sent: raise :class:`BackendUnavailable` if the backend was found dead."""
        if self.tripped and not self.policy.keep_going:
            raise unavailable(self.description, self.tripped, self.last_error)

    def succeeded(self) -> None:
        """A call that reached the backend got an answer."""
        self.calls += 1
        self.answered = True
        self._recent.append(False)

    def failed(self, error: str) -> None:
        """A call failed after its retries; raises :class:`BackendUnavailable` when fail-fast trips."""
        self.calls += 1
        self.failures += 1
        self.last_error = error
        self._recent.append(True)
        reason = self._reason()
        if reason is None:
            return
        self.tripped = self.tripped or reason
        if not self.policy.keep_going:
            raise unavailable(self.description, reason, error)

    def _reason(self) -> str | None:
        if not self.answered:
            return "cannot be reached: no call to it has succeeded"
        window = self.policy.window
        failed = sum(self._recent)
        if len(self._recent) == window and failed > self.policy.max_error_rate * window:
            return (
                f"failed {failed} of its last {window} calls (more than "
                f"{self.policy.max_error_rate:.0%}, the backend_errors.max_error_rate)"
            )
        return None

    def report(self) -> dict[str, Any]:
        """Counts for ``summary.json`` and checkpoints (JSON-able)."""
        return {
            "backend": self.description,
            "calls": self.calls,
            "failed": self.failures,
            "last_error": self.last_error,
            "tripped": self.tripped,
            "recent": [int(x) for x in self._recent],
        }

    def restore(self, report: dict[str, Any]) -> None:
        """Continue the counts of a :meth:`report` (a resumed run); ``answered`` starts afresh."""
        self.calls = int(report.get("calls", 0))
        self.failures = int(report.get("failed", 0))
        self.last_error = report.get("last_error")
        self.tripped = report.get("tripped")
        self._recent.clear()
        self._recent.extend(bool(x) for x in report.get("recent", []))


def describe_backend(name: str, config: Any) -> str:
    """How messages name a backend: ``'srv' (openai, model stub at http://127.0.0.1:9/v1)``."""
    from hvae.agents.llm.secrets import redact_url

    kind = getattr(config, "kind", "?")
    details = kind
    model = getattr(config, "model", None)
    if model:
        details += f", model {model}"
    base_url = getattr(config, "base_url", None)
    if base_url:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)  # replicas: all of them
        details += f" at {', '.join(redact_url(url) for url in urls)}"
    return f"{name!r} ({details})"
