"""The LLM decider: one autogen ``AssistantAgent`` per Mesa agent, prompted as in HVAE.

Setup, once per agent (again if its value changes), follows the paper (:mod:`.prompts`):
value prompting → the agent describes its value system; role instruction + self-generated goal
(or the fixed goal when ``goal_prompting: false``). The conversation after setup is saved with
``AssistantAgent.save_state`` and every decision starts from it again, so each decision sees the
agent's own description and goal but never a growing pile of earlier rounds (those arrive, bounded,
as the history in the decision prompt).

Setup and talk are ``AssistantAgent`` conversations. A decision is one stateless request — the
saved setup conversation plus the decision prompt (and, on a re-ask, the reply and the correction)
— so it is sent straight to the agent's :class:`~hvae.agents.llm.client.HvaeClient` with the same
messages ``AssistantAgent.on_messages`` would send after ``load_state`` (same request, same cache
key, same reply), without rebuilding the agent for every decision: that cost ~1 ms of CPU a
decision and ~0.1 MB an agent. The ``AssistantAgent`` of an agent exists only while it sets up or
talks.

Each decision shows the menu as lettered options in a counterbalanced order (``order``: ``fixed``,
``reverse_half`` — reversed for a random half of the decisions — or ``shuffle``); the order shown
is recorded (``shown_order``) so letters map back to options. A reply that cannot be used is
re-asked up to ``reasks`` times with the reason; after that the decision is recorded invalid with
its raw reply and the ``fallback`` applies: ``random`` (a uniformly random option, counted) or
``skip`` (no choice: the pair's game is void). A backend failure after its retries is treated the
same way, unless the backend is dead: :class:`~hvae.agents.llm.backends.BackendUnavailable`
(unreachable, failing too often, or an embedded worker that keeps dying) passes through and stops the run. Nothing an LLM *says* can
crash a run.

An agent never has two calls in flight: its setup and its decisions run one after another in its
own task; different agents run concurrently, bounded by their backend's ``max_concurrency``.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken
from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage

from hvae.agents.deciders import NO_CHOICE, Decider, Decision, DecisionRequest, Decisions
from hvae.agents.tasks import gather_all
from hvae.agents.llm import game_prompts, prompts
from hvae.agents.llm.backends import BackendUnavailable
from hvae.agents.llm.client import AgentClient, CallSettings
from hvae.agents.llm import talk
from hvae.agents.llm.config import CommunicationConfig, LLMConfig
from hvae.agents.llm.parsing import parse_reply
from hvae.agents.llm.pool import BackendPool
from hvae.agents.llm.talk import TalkContext, Utterance


def call_seed(*parts: Any) -> int:
    """A stable per-call seed from its identity (not Python's salted ``hash``)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def decision_schema(letters: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "choice": {"type": "string", "enum": list(letters)},
            "reason": {"type": "string", "maxLength": 80},
        },
        "required": ["choice", "reason"],
        "additionalProperties": False,
    }


@dataclass
class AgentSetup:
    """One LLM agent's setup: its value wording, own description and goal."""

    agent_id: int
    theta: float
    value_wording: str
    description: str = ""
    goal: str = prompts.FIXED_GOAL
    setup_ok: bool = True
    state: dict[str, Any] | None = None


_paused_rounds = 0  # rounds in flight under collection_paused()
_collector_was_on = True


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a round's decisions are in flight.

    After setup the process holds every agent's setup conversation; each automatic full
    collection scans them all, which cost about a quarter of the client's CPU per decision at
    2,000 agents (``benchmarks/bench_llm_concurrency.py``). A round makes almost no reference
    cycles (reference counting frees its requests and replies), so collection waits until the
    round is over. Rounds of several deciders overlap on one event loop: the collector comes
    back when the last of them ends, and only if it was on before.
    """
    global _paused_rounds, _collector_was_on
    if _paused_rounds == 0:
        _collector_was_on = gc.isenabled()
        gc.disable()
    _paused_rounds += 1
    try:
        yield
    finally:
        _paused_rounds -= 1
        if _paused_rounds == 0 and _collector_was_on:
            gc.enable()


class LLMDecider(Decider):
    """Decisions by LLM agents prompted with their SVO value (see the module docstring)."""

    name = "llm"
    description = "An LLM agent prompted with its SVO value, HVAE-style (value, role, goal)."
    is_async = True

    def __init__(
        self,
        config: LLMConfig,
        pool: BackendPool,
        *,
        group: str = "llm",
        value_name: str | None = None,
        run_seed: int = 0,
        wording: str | None = None,
        placement: str = "user",
        game: Any = None,
        talk_config: CommunicationConfig | None = None,
    ) -> None:
        self.config = config
        # the n-player game the menus come from (a PublicGoodsGame), else None: its own task text
        self.game = game
        self.task_text = prompts.TASK_TEXT if game is None else game_prompts.public_goods_task_text(game)
        self.pool = pool
        self.group = group
        self.value_name = value_name
        self.run_seed = run_seed
        # the validity probes (hvae evaluate --paraphrases / --placement): another wording of the
        # value, and the value stated in the system message instead of the first user turn
        if placement not in ("user", "system"):
            raise ValueError(f"placement must be 'user' or 'system', got {placement!r}")
        self.wording = wording
        self.placement = placement
        pool.check(config.backend)
        self.backend_config = pool.config(config.backend)
        self.agents: dict[int, AssistantAgent] = {}  # only while an agent sets up or talks
        self.agent_clients: dict[int, AgentClient] = {}
        self._prefix: dict[int, tuple[LLMMessage, ...]] = {}  # setup conversation as request messages
        self.setups: dict[int, AgentSetup] = {}
        self._pending: set[int] = set()
        self._at_setup_state: set[int] = set()  # agents whose context is exactly the setup state
        self.on_agent_ready: Any = None  # called with no arguments after each agent's setup
        self.talk_config = talk_config or CommunicationConfig()
        self._plans: dict[int, tuple[dict[int, np.ndarray], np.ndarray]] = {}  # round -> drawn orders, fallbacks
        self.counts = {
            "llm_calls": 0, "llm_cache_hits": 0, "llm_invalid": 0, "tokens_in": 0, "tokens_out": 0,
            "llm_retries": 0, "llm_errors": 0, "llm_reasks": 0, "llm_fallbacks": 0, "llm_setup_failures": 0,
            "talk_messages": 0, "llm_decisions": 0,
        }

    # ------------------------------------------------------------------ setup
    def setup(self, agent_ids: np.ndarray, thetas: np.ndarray) -> None:
        for agent_id, theta in zip(agent_ids.tolist(), thetas.tolist()):
            wording = self.wording or prompts.value_wording(theta, self.value_name)
            current = self.setups.get(agent_id)
            if current is None or current.theta != theta:
                self.setups[agent_id] = AgentSetup(agent_id, theta, wording)
                self._pending.add(agent_id)

    def _system_message(self, agent_id: int) -> str | None:
        setup = self.setups.get(agent_id)
        return prompts.value_statement(setup.value_wording) if self.placement == "system" and setup else None

    def _agent(self, agent_id: int) -> AssistantAgent:
        if agent_id not in self.agents:
            client = AgentClient(self.pool.client(self.config.backend, agent_id))
            self.agent_clients[agent_id] = client
            self.agents[agent_id] = AssistantAgent(
                name=f"agent_{agent_id}",
                model_client=client,
                system_message=self._system_message(agent_id),
                description=f"hvae population member {agent_id} ({self.group})",
            )
        return self.agents[agent_id]

    def _release(self, agent_id: int) -> None:
        """Drop an agent's ``AssistantAgent`` (its setup state is kept; talk rebuilds it)."""
        self.agents.pop(agent_id, None)
        self.agent_clients.pop(agent_id, None)
        self._at_setup_state.discard(agent_id)

    def _setup_messages(self, agent_id: int) -> tuple[LLMMessage, ...]:
        """What ``AssistantAgent`` sends before a new user turn after loading the setup state."""
        prefix = self._prefix.get(agent_id)
        if prefix is None:
            setup = self.setups[agent_id]
            system = self._system_message(agent_id)
            messages: list[LLMMessage] = [SystemMessage(content=system)] if system is not None else []
            kinds = {"UserMessage": UserMessage, "AssistantMessage": AssistantMessage, "SystemMessage": SystemMessage}
            for item in (setup.state or {}).get("llm_context", {}).get("messages", []):
                data = {k: v for k, v in item.items() if k != "type"}
                messages.append(kinds[item["type"]](**data))
            prefix = self._prefix[agent_id] = tuple(messages)
        return prefix

    def _settings(self, agent_id: int, round_index: int | None, phase: str, attempt: int, max_tokens: int, schema=None) -> CallSettings:
        seed = call_seed(self.backend_config.seed, self.run_seed, self.group, agent_id, round_index, phase, attempt)
        return CallSettings(agent_id, self.group, round_index, phase, attempt, max_tokens, seed, schema)

    async def _ask(
        self, agent: AssistantAgent, texts: list[str], settings: CallSettings, restore_on_failure: bool = False
    ) -> tuple[str | None, Any]:
        """Send user message(s) and return (reply text or None on backend failure, call record).

        With ``restore_on_failure`` the conversation is rolled back after a failed call (autogen
        has already appended the user message); decisions do not need it, since every decision
        starts again from the saved setup state.
        """
        before = await agent.save_state() if restore_on_failure else None
        record = settings.record
        self.agent_clients[settings.agent_id].settings = settings
        try:
            response = await agent.on_messages(
                [TextMessage(content=t, source="user") for t in texts], CancellationToken()
            )
            text = response.chat_message.content
            reply = text if isinstance(text, str) else str(text)
        except BackendUnavailable:
            raise  # the backend is gone: the run stops (resumable) rather than fake decisions
        except Exception:  # noqa: BLE001 - backend failures become invalid decisions
            if before is not None:
                await agent.load_state(before)  # drop the dangling user message
            reply = None
        finally:
            self.agent_clients[settings.agent_id].settings = None
        self._tally(record)
        return reply, record

    async def _request(self, messages: list[LLMMessage], settings: CallSettings) -> tuple[str | None, Any]:
        """One decision request straight to the agent's client: (reply text or None on failure, record)."""
        client = self.pool.client(self.config.backend, settings.agent_id)
        try:
            result = await client.complete(messages, settings)
            content = result.content
            reply = content if isinstance(content, str) else str(content)
        except BackendUnavailable:
            raise
        except Exception:  # noqa: BLE001 - backend failures become invalid decisions
            reply = None
        self._tally(settings.record)
        return reply, settings.record

    def _tally(self, record) -> None:
        self.counts["llm_calls"] += record.calls
        self.counts["llm_cache_hits"] += record.cache_hits
        self.counts["tokens_in"] += record.computed_tokens_in
        self.counts["tokens_out"] += record.computed_tokens_out
        self.counts["llm_retries"] += record.retries
        self.counts["llm_errors"] += record.errors

    async def _setup_agent(self, agent_id: int) -> None:
        setup = self.setups[agent_id]
        agent = self._agent(agent_id)
        await agent.on_reset(CancellationToken())
        config = self.config
        first_turn = prompts.DESCRIBE_PROMPT if self.placement == "system" else prompts.value_prompt(setup.theta, self.value_name, self.wording)
        description, _ = await self._ask(
            agent,
            [first_turn],
            self._settings(agent_id, None, "value", 0, config.setup_max_tokens),
            restore_on_failure=True,
        )
        if description is None or not description.strip():  # an empty answer is a failed setup too
            setup.setup_ok = False
            description = setup.value_wording
            await agent.model_context.add_message(UserMessage(content=first_turn, source="user"))
        setup.description = description.strip()
        if config.goal_prompting:
            goal, _ = await self._ask(
                agent,
                [prompts.ROLE_INSTRUCTION, prompts.goal_prompt(self.task_text)],
                self._settings(agent_id, None, "goal", 0, config.goal_max_tokens),
                restore_on_failure=True,
            )
            if goal is None or not goal.strip():
                setup.setup_ok = False
                goal = prompts.FIXED_GOAL
            setup.goal = goal.strip() or prompts.FIXED_GOAL
        else:
            text = f"{prompts.ROLE_INSTRUCTION}\n\n{self.task_text} Your goal in this study: {prompts.FIXED_GOAL}"
            await agent.model_context.add_message(UserMessage(content=text, source="user"))
            setup.goal = prompts.FIXED_GOAL
        if not setup.setup_ok:
            self.counts["llm_setup_failures"] += 1
        setup.state = await agent.save_state()
        self._prefix.pop(agent_id, None)
        self._release(agent_id)  # decisions need only the saved state
        self._pending.discard(agent_id)
        if self.on_agent_ready is not None:
            self.on_agent_ready()

    @property
    def pending_setups(self) -> int:
        """Agents whose setup conversation has not been run yet."""
        return len(self._pending)

    async def ensure_setup(self) -> None:
        """Run the setup pipeline for every agent that needs it (concurrently across agents)."""
        pending = sorted(self._pending)
        if pending:  # each agent leaves the pending set when its setup is done
            await gather_all(self._setup_in_slot(agent_id) for agent_id in pending)

    async def _setup_in_slot(self, agent_id: int) -> None:
        async with self.pool.agent_slot(self.config.backend):  # at most max_concurrency AssistantAgents at once
            await self._setup_agent(agent_id)

    def setup_records(self) -> list[dict[str, Any]]:
        """Setup texts of every agent, for ``llm_agents.parquet``."""
        from hvae.agents.llm.backends import model_label

        return [
            {
                "agent_id": s.agent_id,
                "group": self.group,
                "backend": self.config.backend,
                "model": model_label(self.backend_config),
                "value_angle": s.theta,
                "value_wording": s.value_wording,
                "goal_prompting": self.config.goal_prompting,
                "description": s.description,
                "goal": s.goal,
                "setup_ok": s.setup_ok,
            }
            for s in sorted(self.setups.values(), key=lambda s: s.agent_id)
            if s.state is not None
        ]

    # ------------------------------------------------------------------ decisions
    def display_orders(self, n_agents: int, n_options: int, rng: np.random.Generator) -> list[np.ndarray]:
        identity = np.arange(n_options)
        if self.config.order == "fixed":
            return [identity] * n_agents
        if self.config.order == "reverse_half":
            flips = rng.random(n_agents) < 0.5
            return [identity[::-1] if flip else identity for flip in flips]
        return [rng.permutation(n_options) for _ in range(n_agents)]

    def plan(self, request: DecisionRequest, rng: np.random.Generator) -> None:
        """Draw the round's display orders and fallback options now (before talk, which shows the orders).

        :meth:`adecide` then uses these draws instead of drawing them itself; the draws are the
        same either way, so a run with talk and one without, from the same seed, show every agent
        the same order and fall back to the same option.
        """
        self._plans[request.round] = self._draw(request, rng)

    def _draw(self, request: DecisionRequest, rng: np.random.Generator) -> tuple[dict[int, np.ndarray], np.ndarray]:
        n_options = len(request.options)
        orders = self.display_orders(request.n, n_options, rng)
        fallback_options = rng.integers(0, n_options, size=request.n)  # drawn up front: reproducible
        return dict(zip(request.agent_ids.tolist(), orders)), fallback_options

    def shown_options(self, request: DecisionRequest, agent_id: int) -> list[tuple[float, float]]:
        """The options in the order ``agent_id`` sees them this round (after :meth:`plan`)."""
        order = self._plans[request.round][0][agent_id]
        return [tuple(map(float, request.options[j])) for j in order]

    async def adecide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        await self.ensure_setup()
        planned = self._plans.pop(request.round, None)
        orders, fallback_options = planned if planned is not None else self._draw(request, rng)
        history = request.history
        options = [tuple(option) for option in np.asarray(request.options, dtype=float).tolist()]  # once, not per agent
        agent_ids = request.agent_ids.tolist()
        fallbacks = fallback_options.tolist()
        tasks = [
            self._decide_one(request, i, orders[agent_ids[i]], fallbacks[i], history.row(i), options)
            for i in range(request.n)
        ]
        with collection_paused():
            return Decisions.from_list(await gather_all(tasks))

    # ------------------------------------------------------------------ talk
    async def speak(self, agent_id: int, context: TalkContext, conversation: Sequence[Utterance], turn: int) -> Utterance:
        """One message of ``agent_id`` in its pair's conversation (see :mod:`hvae.agents.llm.talk`).

        Like a decision, the agent starts from its saved setup conversation and gets one prompt
        (the options, the conversation so far); the call goes through the agent's own
        ``HvaeClient`` as phase ``talk`` with the turn as its attempt number. A failed call
        (after the client's retries) gives an utterance without text, which ends the exchange.
        """
        await self.ensure_setup()
        async with self.pool.agent_slot(self.config.backend):
            setup = self.setups[agent_id]
            agent = self._agent(agent_id)
            if agent_id not in self._at_setup_state:
                await agent.load_state(setup.state)
            self._at_setup_state.discard(agent_id)
            prompt = talk.talk_prompt(context, setup.goal, conversation, agent_id)
            settings = self._settings(agent_id, context.round, "talk", turn, self.talk_config.max_tokens)
            reply, record = await self._ask(agent, [prompt], settings)
        self.counts["talk_messages"] += 1
        text = None if reply is None else talk.clean_message(reply, self.talk_config.max_chars)
        return Utterance(
            agent_id, turn, text, kind="llm", tokens_in=record.tokens_in, tokens_out=record.tokens_out,
            latency_s=record.latency_s, cache_hit=record.cache_hits > 0 and record.calls == 0,
        )

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        raise RuntimeError("LLMDecider is asynchronous; the model calls adecide()")

    async def _decide_one(
        self, request: DecisionRequest, i: int, order: np.ndarray, fallback_option: int, history, options: list[tuple[float, float]]
    ) -> Decision:
        async with self.pool.agent_slot(self.config.backend):
            return await self._decide_in_slot(request, i, order, fallback_option, history, options)

    async def _decide_in_slot(
        self, request: DecisionRequest, i: int, order: np.ndarray, fallback_option: int, history, options: list[tuple[float, float]]
    ) -> Decision:
        agent_id = int(request.agent_ids[i])
        setup = self.setups[agent_id]
        messages = list(self._setup_messages(agent_id))
        self._release(agent_id)  # a talk turn after this decision starts again from the setup state
        order_list = order.tolist()
        shown = [options[j] for j in order_list]
        letters = prompts.LETTERS[: len(shown)]
        mode = self.backend_config.structured
        structured = self.config.structured and mode != "none"
        schema = decision_schema(letters) if structured else None
        json_reply = structured and mode != "letter"  # a letter grammar needs no JSON instructions
        if request.game is not None:  # n-player games have no pairs, so no talk
            prompt = game_prompts.public_goods_decision_prompt(request.game, request.round, order_list, setup.goal, history, json_reply)
        else:
            said = (request.conversations or {}).get(agent_id) or ()
            prompt = prompts.decision_prompt(
                request.round, shown, setup.goal, history, json_reply, talk.decision_conversation_part(said, agent_id)
            )
        latency, tokens_in, tokens_out, calls, hits = 0.0, 0, 0, 0, 0
        self.counts["llm_decisions"] += 1
        reply: str | None = None
        parsed = None
        attempts = 0
        problem = None
        for attempt in range(self.config.reasks + 1):
            attempts += 1
            phase = "decision" if attempt == 0 else "reask"
            messages.append(UserMessage(content=prompt, source="user"))
            reply, record = await self._request(
                messages, self._settings(agent_id, request.round, phase, attempt, self.backend_config.max_tokens, schema)
            )
            latency += record.latency_s
            tokens_in += record.tokens_in
            tokens_out += record.tokens_out
            calls += record.calls
            hits += record.cache_hits
            if reply is None:
                problem = f"backend error: {record.last_error}"
                break
            messages.append(AssistantMessage(content=reply, source=f"agent_{agent_id}"))
            parsed = parse_reply(reply, len(shown), self.config.max_reply_chars)
            if parsed.valid:
                break
            problem = parsed.problem
            if attempt < self.config.reasks:
                self.counts["llm_reasks"] += 1
                prompt = prompts.corrective_prompt(parsed.problem or "it was not valid", letters, json_reply)
        shown_order = ",".join(map(str, order_list))
        common = {
            "shown_order": shown_order,
            "raw_reply": reply,
            "latency_s": latency,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cache_hit": hits > 0 and calls == 0,
            "attempts": attempts,
        }
        if parsed is not None and parsed.valid:
            return Decision(order_list[parsed.position], valid=True, reason=parsed.reason, **common)
        self.counts["llm_invalid"] += 1
        if self.config.fallback == "skip":
            return Decision(NO_CHOICE, valid=False, reason=problem, fallback="skip", **common)
        self.counts["llm_fallbacks"] += 1
        return Decision(fallback_option, valid=False, reason=problem, fallback="random", **common)

    # ------------------------------------------------------------------ bookkeeping
    def accounting(self) -> dict[str, int]:
        return dict(self.counts)

    def snapshot(self) -> dict[str, Any]:
        """Setup conversations, pending set-ups and accounting, as plain JSON data for checkpoints.

        A setup's ``state`` is autogen's ``save_state`` dict made JSON-able (what
        ``load_state`` reads back); nothing in a snapshot is code or a Python object.
        """
        from dataclasses import asdict

        from pydantic_core import to_jsonable_python

        setups = [asdict(setup) for _, setup in sorted(self.setups.items())]
        return {
            "setups": to_jsonable_python(setups),
            "pending": sorted(int(agent_id) for agent_id in self._pending),
            "counts": {key: int(value) for key, value in self.counts.items()},
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put a :meth:`snapshot` back (raises ``KeyError``/``TypeError`` on a malformed one)."""
        setups = {}
        for record in snapshot["setups"]:
            setup = AgentSetup(**record)
            setup.agent_id, setup.theta = int(setup.agent_id), float(setup.theta)
            setups[setup.agent_id] = setup
        counts = {key: int(value) for key, value in snapshot["counts"].items() if key in self.counts}
        self.setups = setups
        self._pending = {int(agent_id) for agent_id in snapshot["pending"]}
        self.counts.update(counts)
        self.agents.clear()  # every agent reloads its setup conversation
        self.agent_clients.clear()
        self._prefix.clear()
        self._at_setup_state.clear()


def build_llm_decider(config: LLMConfig, pool: BackendPool, **kwargs: Any) -> LLMDecider:
    return LLMDecider(config, pool, **kwargs)
