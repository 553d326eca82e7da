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

A reply with nothing in it (content null or blank) counts as a failed call (:meth:`BackendHealth.unusable`),
and an empty answer at setup is a failed setup. However a run ends, if fewer than
``backend_errors.min_valid_share`` (default :data:`DEFAULT_MIN_VALID_SHARE`, half) of its LLM decisions are
valid, it is marked ``complete_with_warnings`` (:mod:`hvae.files.status`) and the CLI prints a warning line.

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

__all__ = [
    "BackendHealth", "BackendUnavailable", "BackendUnhealthy", "HealthPolicy", "describe_backend", "unavailable",
    "unusable_reply", "valid_share_warning",
]


class BackendUnhealthy(BackendUnavailable):
    """Raised by :class:`BackendHealth`: unreachable, or too many failed calls (``keep_going`` lifts it)."""


def unavailable(description: str, reason: str, last_error: str | None = None) -> BackendUnhealthy:
    """The one-line exception for a backend found dead by its health monitor."""
    text = f"backend {description} {reason}"
    if last_error:
        text += f" (last error: {last_error})"
    return BackendUnhealthy(text)


#: The default ``backend_errors.min_valid_share``: below it a finished run is ``complete_with_warnings``.
DEFAULT_MIN_VALID_SHARE = 0.5


@dataclass(frozen=True)
class HealthPolicy:
    """When a backend counts as unavailable (the scenario's ``backend_errors`` section)."""

    keep_going: bool = False
    window: int = 20
    max_error_rate: float = 0.5
    min_valid_share: float = DEFAULT_MIN_VALID_SHARE  # read at the end of a run (valid_share_warning)


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

    def unusable(self, reason: str) -> None:
        """A call was answered with nothing usable (content null or blank): counted as a failed call.

        The backend did answer, so it is not "unreachable"; but a backend that only ever answers
        nothing trips the error-rate rule like one that answers 500s.
        """
        self.answered = True
        self.failed(reason)

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


def unusable_reply(content: object) -> str | None:
    """Why a reply's content is unusable (null, not text, blank), or None when it is text."""
    if content is None:
        return "the reply's content is null"
    if not isinstance(content, str):
        return f"the reply's content is not text ({type(content).__name__})"
    if not content.strip():
        return "the reply's content is empty"
    return None


def valid_share_warning(summary: dict[str, Any], floor: float) -> str | None:
    """The warning for a finished run whose valid LLM decisions are fewer than ``floor`` of them, else None."""
    invalid = int(summary.get("llm_invalid") or 0)
    decisions = max(int(summary.get("llm_decisions") or 0), invalid)  # a checkpoint from before the count
    if decisions == 0:
        return None
    valid = decisions - invalid
    if valid >= floor * decisions:
        return None
    return (
        f"only {valid} of {decisions} LLM decisions ({valid / decisions:.0%}) are valid, below the floor of "
        f"{floor:.0%} (backend_errors.min_valid_share): the LLM results measure the backend's failures, not values"
    )


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
