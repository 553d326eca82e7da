"""The part every hvae chat client shares: what autogen's ``ChatCompletionClient`` demands beyond ``create``.

autogen's ``ChatCompletionClient`` is an abstract class with nine members; hvae's clients (the
embedded model's :class:`~hvae.agents.llm.embedded.EmbeddedClient`, the lean HTTP client
:class:`~hvae.agents.llm.wire.WireClient` and the per-agent
:class:`~hvae.agents.llm.client.AgentClient`) only differ in ``create`` and ``model_info``.
:class:`TextChatClient` holds the rest once: no streaming (hvae's deciders never stream), token
usage summed by :meth:`TextChatClient.add_usage`, and a character-based token estimate that
nothing in a run depends on (the dry run says when it uses it, see :mod:`hvae.agents.llm.tokens`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, RequestUsage

#: Characters per token of the estimate (English prose; see :mod:`hvae.agents.llm.tokens`).
CHARS_PER_TOKEN = 4


class TextChatClient(ChatCompletionClient):
    """Shared members of hvae's text-only, non-streaming chat clients (see the module docstring)."""

    context_tokens: int = 0  # the model's context window when known (0: unknown)
    _usage: RequestUsage | None = None

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = [],  # noqa: B006 - autogen's signature
        tool_choice: Any = "auto",
        json_output: bool | type | None = None,
        extra_create_args: Mapping[str, Any] = {},  # noqa: B006
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """autogen's entry point: :meth:`answer` with the per-call arguments (tools are not used)."""
        return await self.answer(messages, extra_create_args)

    async def answer(self, messages: Sequence[LLMMessage], args: Mapping[str, Any]) -> CreateResult:
        """One completion of ``messages`` with per-call ``args`` (max_tokens, seed, response_format…)."""
        raise NotImplementedError

    def add_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Add one answered request's tokens to :meth:`total_usage`."""
        usage = self._usage or RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._usage = RequestUsage(
            prompt_tokens=usage.prompt_tokens + prompt_tokens, completion_tokens=usage.completion_tokens + completion_tokens
        )

    def create_stream(
        self, messages, *, tools=[], tool_choice="auto", json_output=None, extra_create_args={}, cancellation_token=None  # noqa: B006
    ) -> AsyncGenerator[str | CreateResult, None]:
        raise NotImplementedError("hvae's LLM deciders do not stream")

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._usage or RequestUsage(prompt_tokens=0, completion_tokens=0)

    def total_usage(self) -> RequestUsage:
        return self.actual_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = []) -> int:  # noqa: B006
        return sum(len(str(m.content)) for m in messages) // CHARS_PER_TOKEN  # an estimate; nothing depends on it

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = []) -> int:  # noqa: B006
        return max(0, self.context_tokens - self.count_tokens(messages))

    @property
    def capabilities(self) -> Any:  # deprecated in autogen-core but still abstract
        return self.model_info
