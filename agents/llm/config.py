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


#: What a rule-decider agent says in a conversation with an LLM agent (``communication.rule_line``).
DEFAULT_RULE_LINE = "I am not going to discuss this; I will choose by my own rule."


class CommunicationConfig(BaseModel):
    """``communication:`` in a scenario: pre-play talk between paired agents (see :mod:`hvae.agents.llm.talk`).

    ``turns`` is the most messages one pair exchanges per round, both speakers together (0: no
    talk); ``visible_values`` tells each speaker its partner's value; ``compare: true`` makes
    ``hvae run`` play the scenario twice with the same seed — without talk and with it — and
    compare the two (:mod:`hvae.experiments.talk`). ``rule_line`` is what a rule-decider agent
    says when it is paired with an LLM agent (``null``: it stays silent and skips its turns).
    ``max_tokens`` and ``max_chars`` bound one message.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    turns: int = Field(default=0, ge=0, le=20)
    visible_values: bool = False
    compare: bool = False
    rule_line: str | None = Field(default=DEFAULT_RULE_LINE, max_length=300)
    max_tokens: int = Field(default=48, ge=4, le=1024)
    max_chars: int = Field(default=300, ge=20, le=4000)
