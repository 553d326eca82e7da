"""The talk phase of a round: paired agents exchange messages before they decide.

With ``communication.turns > 0`` (:class:`~hvae.agents.llm.config.CommunicationConfig`) a round
runs match → menu → **talk** → decide → pay. :class:`TalkPhase` takes the round's pairs and, for
every pair with at least one LLM agent, runs :func:`hvae.agents.llm.talk.converse` between the two
agents' speakers: an LLM agent speaks through its group's
:class:`~hvae.agents.llm.decider.LLMDecider` (and so through its ``HvaeClient``), a rule-decider
agent says the scenario's ``rule_line`` (or nothing). Pairs of two rule deciders do not talk.
Conversations of different pairs run concurrently; within a pair the turns are sequential, and
with random matching an agent is in one pair, so no agent ever has two calls in flight.

Before talking, each LLM group draws the round's display orders
(:meth:`~hvae.agents.llm.decider.LLMDecider.plan`): a speaker sees the options in the order its
decision prompt will show them, and the draws are exactly those a run without talk makes.

Every message becomes a row of ``messages.parquet`` (:data:`~hvae.simulation.records.MESSAGE_SCHEMA`),
in pair order and turn order, whatever order the calls finished in.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from hvae.agents.deciders import SetsUpAgents, Talks
from hvae.agents.llm.prompts import value_wording
from hvae.agents.llm.talk import RuleSpeaker, TalkContext, Utterance, converse
from hvae.agents.tasks import gather_all

if TYPE_CHECKING:
    from hvae.agents.deciders import DecisionRequest
    from hvae.simulation.menus import Menu
    from hvae.simulation.model import HvaeModel


class TalkPhase:
    """A model's pre-play talk, round after round (see the module docstring).

    The model asks it twice per round: :meth:`plan` (in the model's thread, before any LLM call:
    the talking groups draw their display orders, from their own decision streams) and, when that
    says there is talk, :meth:`before_deciding` (on the model's event loop: set-ups, then the
    conversations, then the decision requests that carry them).
    """

    def __init__(self, model: HvaeModel) -> None:
        self.model = model
        self.config = model.scenario.communication
        self.rule_speaker = RuleSpeaker(self.config.rule_line)

    def _talks(self, group: str) -> bool:
        return isinstance(self.model.deciders[group], Talks)

    def plan(self, requests: dict[str, DecisionRequest], groups: list[str]) -> bool:
        """Fix the option orders of the talking groups among ``groups`` (the orders talk shows are
        the ones the decision will show); whether anyone talks this round."""
        talkers = [group for group in groups if self._talks(group)]
        for group in talkers:
            decider = self.model.deciders[group]
            assert isinstance(decider, Talks)
            decider.plan(requests[group], self.model.decider_rngs[group])
        return bool(talkers)

    async def before_deciding(
        self, menu: Menu, pairs: np.ndarray, requests: dict[str, DecisionRequest], groups: list[str]
    ) -> dict[str, DecisionRequest]:
        """Talk (after :meth:`plan` said so); the round's requests with the conversations added.

        The agents of ``groups`` are set up first: speakers of one group talk concurrently, and a
        setup must run once.
        """
        deciders = self.model.deciders
        await gather_all(d.ensure_setup() for g in groups if isinstance(d := deciders[g], SetsUpAgents))
        conversations = await self.run(menu, pairs, requests)
        return {group: dataclasses.replace(request, conversations=conversations) for group, request in requests.items()}

    def _context(self, agent: int, partner: int, menu: Menu, requests: dict[str, DecisionRequest]) -> TalkContext:
        model = self.model
        group = model.group_names[model.state.group_code[agent]]
        decider = model.deciders[group]
        if isinstance(decider, Talks):
            shown = decider.shown_options(requests[group], agent)
        else:
            shown = [(float(own), float(other)) for own, other in menu.options]
        partner_value = None
        if self.config.visible_values:
            partner_value = value_wording(float(model.state.theta[partner]))
        return TalkContext(model.round, partner, shown, self.config.turns, partner_value)

    async def run(
        self, menu: Menu, pairs: np.ndarray, requests: dict[str, DecisionRequest]
    ) -> dict[int, list[Utterance]]:
        """Talk in every pair with an LLM agent; returns each talking agent's conversation.

        Message rows go to the model's log. ``requests`` are the round's decision requests by
        group; the LLM groups among them must have been planned already.
        """
        model = self.model
        names = model.group_names
        speakers: dict[int, Any] = {}
        jobs, talking_pairs = [], []
        for index, (first, second) in enumerate(pairs.tolist()):
            groups = [names[model.state.group_code[a]] for a in (first, second)]
            if not any(self._talks(g) for g in groups):
                continue
            for agent, group in zip((first, second), groups):
                speakers[agent] = model.deciders[group] if self._talks(group) else self.rule_speaker
            contexts = {
                first: self._context(first, second, menu, requests),
                second: self._context(second, first, menu, requests),
            }
            jobs.append(converse(first, second, speakers, contexts, self.config.turns))
            talking_pairs.append((index, first, second))
        conversations = await gather_all(jobs)
        out: dict[int, list[Utterance]] = {}
        rows = []
        for (index, first, second), conversation in zip(talking_pairs, conversations):
            out[first] = out[second] = conversation
            for said in conversation:
                listener = second if said.speaker == first else first
                rows.append(self._row(index, said, listener))
        model.log.collect_messages(rows)
        return out

    def _row(self, pair: int, said: Utterance, listener: int) -> dict[str, Any]:
        model = self.model
        return {
            "round": model.round,
            "pair": pair,
            "turn": said.turn,
            "speaker": said.speaker,
            "listener": listener,
            "group": model.group_names[model.state.group_code[said.speaker]],
            "speaker_kind": said.kind,
            "value_angle": float(model.state.theta[said.speaker]),
            "text": said.text,
            "tokens": said.tokens_out if said.kind == "llm" else None,
            "prompt_tokens": said.tokens_in if said.kind == "llm" else None,
            "latency_s": said.latency_s if said.kind == "llm" else None,
            "cache_hit": said.cache_hit if said.kind == "llm" else None,
        }
