"""Scenario configuration of LLM deciders (kept free of autogen imports so validation is fast).

``decider: {kind: llm, backend: embedded, goal_prompting: true, order: reverse_half, reasks: 2,
fallback: random}`` — see :mod:`hvae.agents.llm.decider` for what each setting does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hvae.agents.llm.parsing import DEFAULT_MAX_REPLY_CHARS


class LLMConfig(BaseModel):
    """``decider: {kind: llm, ...}`` in a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["llm"]
    backend: str = "embedded"
    goal_prompting: bool = True
    order: Literal["fixed", "reverse_half", "shuffle"] = "reverse_half"
    reasks: int = Field(default=2, ge=0, le=10)
    fallback: Literal["random", "skip"] = "random"
    structured: bool = True
    setup_max_tokens: int = Field(default=96, ge=8, le=2048)
    goal_max_tokens: int = Field(default=48, ge=8, le=1024)
    max_reply_chars: int = Field(default=DEFAULT_MAX_REPLY_CHARS, ge=10)
