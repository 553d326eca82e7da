"""Pre-play talk: a bounded exchange of short messages between the two agents of a pair.

With ``communication: {turns: N}`` in a scenario, the two agents of every pair that holds at
least one LLM agent talk before they choose: up to ``N`` messages, alternating, the pair's first
agent (as matched) first. Then each decides privately, as without talk, with the conversation
shown in its decision prompt. The pieces:

* :class:`Utterance` — one message (speaker, turn, text, tokens, latency, cache hit);
* speakers — anything with ``async speak(agent_id, context, conversation, turn)``:
  :meth:`hvae.agents.llm.decider.LLMDecider.speak` for LLM agents, :class:`RuleSpeaker` for rule
  deciders, which say one fixed, documented line (:data:`~hvae.agents.llm.config.DEFAULT_RULE_LINE`)
  or nothing, and decide exactly as without talk;
* :func:`converse` — the exchange itself, ``N`` turns with a termination rule: it stops after
  ``N`` messages, or early when an LLM speaker's call fails (a failed turn is recorded with no
  text and ends the conversation);
* the prompt texts (:func:`talk_prompt`, :func:`conversation_text`).

**Why not an autogen team.** autogen-agentchat 0.7's ``RoundRobinGroupChat`` with
``MaxMessageTermination`` runs the same alternation, but its runtime calls the agents' model
clients from tasks of its own, so the per-call settings that each agent's
:class:`~hvae.agents.llm.client.AgentClient` carries (the speaker, round, phase, turn, token
cap and per-call seed — parts of every cache key and transcript line) could not be set per turn,
and a team keeps a growing shared thread in each agent, while an hvae agent must return to its
saved setup conversation before every call. So the exchange is driven here, by our own code,
through each agent's own ``AssistantAgent`` and therefore through the same ``HvaeClient``: the
response cache, the backend's concurrency bound, retries, health checks, accounting and
transcripts cover every message exactly as they cover decisions. Every turn is one stateless
request (the agent's setup conversation plus one message holding the conversation so far), so
a turn's reply depends only on what was said before it — the property that makes a resumed run
replay the same conversation.

Options are shown in talk in the speaker's own display order (the order of its decision prompt)
but by their amounts, without letters: the partner sees another order and other letters. The
prompt asks a speaker that names the option it means to take to give its two amounts, its own
first — the convention the promise-keeping measure (:mod:`hvae.analysis.talk`) reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from hvae.agents.llm.prompts import _amount

#: Values of :attr:`Utterance.kind`.
SPEAKER_KINDS = ("llm", "rule")


@dataclass(frozen=True)
class Utterance:
    """One message of a pair's conversation (``text`` None: the speaker's call failed)."""

    speaker: int
    turn: int
    text: str | None
    kind: str = "llm"
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cache_hit: bool = False


@dataclass(frozen=True)
class TalkContext:
    """What one speaker is told about the round it talks in."""

    round: int
    partner_id: int
    options_shown: list[tuple[float, float]]  # in the speaker's own display order
    turns: int  # messages the pair may exchange in all
    partner_value: str | None = None  # the partner's value wording when values are visible


class Speaker(Protocol):
    async def speak(
        self, agent_id: int, context: TalkContext, conversation: Sequence[Utterance], turn: int
    ) -> Utterance | None:
        """The agent's message at ``turn`` (None: it says nothing and the turn passes)."""


class RuleSpeaker:
    """A rule decider in a conversation: one fixed line every turn, or silence (``line=None``)."""

    kind = "rule"

    def __init__(self, line: str | None) -> None:
        self.line = line

    async def speak(
        self, agent_id: int, context: TalkContext, conversation: Sequence[Utterance], turn: int
    ) -> Utterance | None:
        return None if self.line is None else Utterance(agent_id, turn, self.line, kind="rule")


async def converse(
    first: int, second: int, speakers: Mapping[int, Speaker], contexts: Mapping[int, TalkContext], turns: int
) -> list[Utterance]:
    """Up to ``turns`` messages, alternating from ``first``; a failed LLM call ends the exchange."""
    conversation: list[Utterance] = []
    order = (first, second)
    for turn in range(turns):
        agent = order[turn % 2]
        said = await speakers[agent].speak(agent, contexts[agent], tuple(conversation), turn)
        if said is None:
            continue
        conversation.append(said)
        if said.text is None:
            break
    return conversation


# ---------------------------------------------------------------------------------- prompt texts
def format_amount_options(options_shown: Sequence[tuple[float, float]]) -> str:
    """``- 85 for you, 76 for your partner`` lines (no letters: the partner's letters differ)."""
    return "\n".join(f"- {_amount(s)} for you, {_amount(o)} for your partner" for s, o in options_shown)


def conversation_text(conversation: Sequence[Utterance], me: int) -> str:
    """The conversation from ``me``'s side: ``You: …`` / ``Your partner: …`` lines."""
    lines = []
    for said in conversation:
        if said.text is None:
            continue
        who = "You" if said.speaker == me else "Your partner"
        lines.append(f'{who}: "{said.text}"')
    return "\n".join(lines)


def talk_prompt(context: TalkContext, goal: str, conversation: Sequence[Utterance], me: int) -> str:
    """One turn of talk: the round's options, the conversation so far, and the request for a message."""
    from hvae.agents.llm.prompts import FIXED_GOAL

    parts = [
        "Before you choose, you can talk with the participant you are paired with in this round. "
        "You both choose from the same options; in each, the first amount is what the chooser keeps and "
        "the second what the chooser gives the other. Each of you then receives what you kept plus what "
        f"the other gave you. Remember your goal: {goal.strip() or FIXED_GOAL}",
        f"Round {context.round + 1} options:\n{format_amount_options(context.options_shown)}",
    ]
    if context.partner_value:
        parts.append(f"Your partner's value system: {context.partner_value}.")
    said = conversation_text(conversation, me)
    parts.append(f"The conversation so far:\n{said}" if said else "Nobody has said anything yet.")
    parts.append(
        f"Write your next message to your partner (at most {context.turns} messages are exchanged in all). "
        "One or two short sentences. If you say which option you will take, name its two amounts, yours first "
        '(for example "I will take 85, 76").'
    )
    return "\n\n".join(parts)


def decision_conversation_part(conversation: Sequence[Utterance], me: int) -> str:
    """The part of a decision prompt that shows the pair's conversation ('' when nothing was said)."""
    said = conversation_text(conversation, me)
    if not said:
        return ""
    return f"Before this choice you and your partner talked:\n{said}\nYour choice is private: your partner does not see it before choosing."


def clean_message(text: str, max_chars: int) -> str:
    """One line of at most ``max_chars`` characters (whitespace collapsed, surrounding quotes dropped)."""
    one_line = " ".join(str(text).split()).strip().strip('"').strip()
    return one_line[:max_chars]
