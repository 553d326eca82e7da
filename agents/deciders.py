"""Deciders: who chooses an option from a menu, behind one interface.

A decider is declarative, like an Axelrod strategy: a ``name``, a ``description`` of what it
assumes, and one decision method. The model asks each population group's decider to decide for
all of that group's agents in a round at once, with a :class:`DecisionRequest` (the menu, every
agent's own value and the bounded history of what recent partners gave it). The decider answers
with :class:`Decisions`: the chosen option per agent (an index into the menu's canonical order)
plus metadata — validity, the option order shown, raw reply, latency, tokens, cache hits and
attempts. Rule deciders fill only what applies; LLM deciders (``hvae.agents.llm``) fill all of it.

Writing your own decider means implementing :meth:`Decider.choose` for one
:class:`Observation`; override :meth:`Decider.decide` for a vectorised version, or
:meth:`Decider.adecide` (with ``is_async = True``) for one that waits on I/O::

    class AlwaysLast(Decider):
        name = "always_last"
        description = "Always picks the last option (a toy for illustration)."

        def choose(self, observation, rng):
            return len(observation.options) - 1

Shipped rule deciders, which also serve as the no-model stand-ins that keep every scenario
testable offline:

* ``oracle`` — maximises its own ring utility; ties broken uniformly at random; with a finite
  inverse temperature ``beta`` it is a logit chooser, ``P(c) ∝ exp(β·U_θ(c))``.
* ``random`` — uniform over the menu (the chance baseline).
* ``reciprocal`` — gives back what it was given (rule below).
* ``fixed`` — always the same option index (for tests).

**Registering a decider.** Give the class a ``kind`` and a ``Config`` (a pydantic model with
``kind: Literal[<kind>]`` and the decider's parameters) and call :func:`register_decider` — from a
notebook, a test or your own package's ``hvae.deciders`` entry point (:mod:`hvae.agents.plugins`);
scenarios then accept ``decider: {kind: <kind>, …}``. :meth:`Decider.from_config` builds it (by
default ``cls(**parameters)``).

**Optional features** are protocols that a decider satisfies by having the methods, checked with
``isinstance`` (they are ``runtime_checkable``): :class:`KeepsState` (checkpointed and resumed),
:class:`Talks` (pre-play talk), :class:`SetsUpAgents` (a per-agent setup that runs before the first
decision, with progress), :class:`RecordsSetup` (setup texts for the run folder),
:class:`KeepsAccounts` (LLM traffic counts for the run summary).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hvae.agents.llm.config import LLMConfig
from hvae.agents.plugins import DECIDERS
from hvae.agents.svo import UTILITY_TOLERANCE, menu_utilities

NO_CHOICE = -1  #: choice value meaning "no decision" (an invalid reply whose pair is skipped)

#: Two generosities closer than this count as equal (they are ratios of whole coins; this only
#: absorbs floating-point noise).
GENEROSITY_TOLERANCE = 1e-12


@dataclass(frozen=True)
class History:
    """What recent partners did to each requesting agent, most recent first, NaN-padded.

    All arrays have shape ``(n_agents, length)``. ``given`` is the amount a partner gave the agent
    (the partner's chosen "other" amount; the **mean** over partners when an agent plays several
    at once, so it is always "what one partner gave"); ``kept`` what the partner kept for itself
    (mean likewise); ``generosity`` where ``given`` sat in the range of "other" amounts on that menu
    (0 = least generous option, 1 = most generous; NaN on a menu whose options all give the same;
    the mean over partners); ``partner`` the partner's agent id (−1 with several partners);
    ``round`` the round.
    """

    given: np.ndarray
    kept: np.ndarray
    generosity: np.ndarray
    partner: np.ndarray
    round: np.ndarray

    @property
    def length(self) -> int:
        return int(self.given.shape[1])

    def row(self, i: int) -> list[dict[str, float]]:
        """The non-empty history entries of agent ``i`` (most recent first) as dicts."""
        entries = []
        for k in range(self.length):
            if np.isnan(self.given[i, k]):
                break
            entries.append(
                {
                    "round": int(self.round[i, k]),
                    "partner": int(self.partner[i, k]),
                    "given": float(self.given[i, k]),
                    "kept": float(self.kept[i, k]),
                    "generosity": float(self.generosity[i, k]),
                }
            )
        return entries


@dataclass(frozen=True)
class DecisionRequest:
    """One round's decision task for the agents of one group (vectorised over agents).

    ``history`` may be given directly or as a zero-argument callable; a callable is only called
    (once) when a decider reads ``request.history``, so deciders that ignore history cost nothing.
    """

    round: int
    menu_id: str
    options: np.ndarray  # (k, 2) canonical (self, other) allocations
    agent_ids: np.ndarray  # (n,)
    thetas: np.ndarray  # (n,) each agent's own value angle, degrees
    history_source: History | Callable[[], History]
    #: The n-player game behind the menu (:class:`hvae.agents.games.PublicGoodsGame`), else None:
    #: LLM deciders describe its options as contributions and their consequences.
    game: Any = None
    #: Pre-play talk (``communication``): each agent's conversation of this round, by agent id
    #: (a list of :class:`hvae.agents.llm.talk.Utterance`); None without talk. Rule deciders ignore it.
    conversations: Mapping[int, Sequence[Any]] | None = None

    @cached_property
    def history(self) -> History:
        source = self.history_source
        return source if isinstance(source, History) else source()

    @property
    def n(self) -> int:
        return int(self.agent_ids.shape[0])

    def observation(self, i: int) -> Observation:
        return Observation(
            round=self.round,
            menu_id=self.menu_id,
            options=self.options,
            agent_id=int(self.agent_ids[i]),
            theta=float(self.thetas[i]),
            history=self.history.row(i),
        )


@dataclass(frozen=True)
class Observation:
    """What one agent sees when it decides: the menu, its own value and its recent history."""

    round: int
    menu_id: str
    options: np.ndarray
    agent_id: int
    theta: float
    history: list[dict[str, float]]


@dataclass
class Decision:
    """One agent's decision with optional metadata (what :meth:`Decider.choose` may return)."""

    choice: int
    valid: bool = True
    shown_order: str | None = None
    raw_reply: str | None = None
    reason: str | None = None
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cache_hit: bool | None = None
    attempts: int | None = None
    fallback: str | None = None


#: Metadata fields of :class:`Decision` that :class:`Decisions` carries as optional columns.
METADATA_FIELDS = (
    "shown_order",
    "raw_reply",
    "reason",
    "latency_s",
    "tokens_in",
    "tokens_out",
    "cache_hit",
    "attempts",
    "fallback",
)


class CodedColumn(Sequence[Any]):
    """A per-decision metadata column held as codes into a few distinct values.

    A vectorised decider that shows a million decisions one of two display orders need not build a
    million strings: ``CodedColumn(codes, ["0,1,2", "2,1,0"])`` reads as that list (indexing,
    iteration, ``len``), and the run's records use the codes directly. ``codes`` index ``values``.
    """

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: Sequence[Any]) -> None:
        self.codes = np.asarray(codes, dtype=np.int64)
        self.values = list(values)
        if self.codes.size and (self.codes.min() < 0 or self.codes.max() >= len(self.values)):
            raise ValueError(f"codes must index the {len(self.values)} values")

    @classmethod
    def concat(cls, parts: Sequence[CodedColumn | None], lengths: Sequence[int]) -> CodedColumn:
        """One column of ``parts`` in order; a part that is None holds ``lengths[i]`` Nones."""
        index: dict[Any, int] = {}
        codes = []
        for part, length in zip(parts, lengths, strict=True):
            part = part if part is not None else cls(np.zeros(length, np.int64), [None])
            remap = np.array([index.setdefault(v, len(index)) for v in part.values], dtype=np.int64)
            codes.append(remap[part.codes])
        return cls(np.concatenate(codes) if codes else np.zeros(0, np.int64), list(index))

    def take(self, indices: np.ndarray) -> CodedColumn:
        """The entries at ``indices`` (same values table)."""
        return CodedColumn(self.codes[indices], self.values)

    def tolist(self) -> list[Any]:
        table = np.empty(len(self.values), dtype=object)
        table[:] = self.values
        return table[self.codes].tolist()

    def __len__(self) -> int:
        return int(self.codes.size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self.values[c] for c in self.codes[i].tolist()]
        return self.values[int(self.codes[i])]

    def __eq__(self, other: object) -> bool:  # equal to any sequence of the same entries
        if isinstance(other, CodedColumn) and other.values == self.values:
            return bool(np.array_equal(other.codes, self.codes))
        return isinstance(other, Sequence) and not isinstance(other, str) and self.tolist() == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __repr__(self) -> str:
        return f"CodedColumn({len(self)} entries of {len(self.values)} values)"


@dataclass
class Decisions:
    """Decisions for the agents of one :class:`DecisionRequest`, in request order.

    ``choice`` holds canonical option indices (``NO_CHOICE`` = no decision). ``metadata`` maps a
    name from :data:`METADATA_FIELDS` to a per-agent list (or a :class:`CodedColumn`, which reads
    as one); missing names mean "not applicable".
    """

    choice: np.ndarray
    valid: np.ndarray
    metadata: dict[str, Sequence[Any]]

    @classmethod
    def from_choices(cls, choice: np.ndarray) -> Decisions:
        choice = np.asarray(choice, dtype=np.int64)
        return cls(choice=choice, valid=np.ones(choice.shape[0], dtype=bool), metadata={})

    @classmethod
    def from_list(cls, decisions: list[Decision]) -> Decisions:
        metadata: dict[str, Sequence[Any]] = {
            name: [getattr(d, name) for d in decisions]
            for name in METADATA_FIELDS
            if any(getattr(d, name) is not None for d in decisions)
        }
        return cls(
            choice=np.array([d.choice for d in decisions], dtype=np.int64),
            valid=np.array([d.valid for d in decisions], dtype=bool),
            metadata=metadata,
        )


class Decider(ABC):  # noqa: B024 - defaults only: subclasses override choose() or adecide()
    """Base class of all deciders. Subclasses set ``name`` and ``description``."""

    name: ClassVar[str] = "decider"
    description: ClassVar[str] = ""
    #: The scenario's ``decider: {kind: …}`` of a registered decider (its ``name`` by default).
    kind: ClassVar[str | None] = None
    #: Its config class (a pydantic model with ``kind: Literal[<kind>]``) when registered.
    Config: ClassVar[type[BaseModel] | None] = None
    #: True for deciders whose :meth:`adecide` waits on I/O (LLM backends).
    is_async: ClassVar[bool] = False
    #: False for deciders that never look at the agent's value (``random``, ``fixed``): their
    #: agents' values are only labels, so value shares do not count them.
    acts_on_value: ClassVar[bool] = True

    def choose(self, observation: Observation, rng: np.random.Generator) -> int | Decision:
        """Choose for one agent; return an option index or a :class:`Decision`."""
        raise NotImplementedError(f"{type(self).__name__} must implement choose() or decide()")

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        """Choose for every agent of the request (default: :meth:`choose` one by one)."""
        decisions = []
        for i in range(request.n):
            result = self.choose(request.observation(i), rng)
            decisions.append(result if isinstance(result, Decision) else Decision(int(result)))
        return Decisions.from_list(decisions)

    async def adecide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        """Asynchronous :meth:`decide`; I/O-bound deciders override this."""
        return self.decide(request, rng)

    def setup(self, agent_ids: np.ndarray, thetas: np.ndarray) -> None:  # noqa: B027
        """Called once before the first round (and again when agents' values change)."""

    def close(self) -> None:  # noqa: B027
        """Release resources (model files, HTTP clients)."""

    @classmethod
    def from_config(cls, config: BaseModel, context: Any = None) -> Decider:
        """The decider a scenario group's validated config asks for (``cls(**parameters)``).

        ``context`` (:class:`hvae.simulation.deciders.DeciderContext`) carries what a decider may
        need beyond its config: the group's name and value, the run seed, the game, the LLM pool.
        """
        return cls(**config.model_dump(exclude={"kind"}))


@runtime_checkable
class KeepsState(Protocol):
    """A decider with state of its own: checkpointed (``snapshot``, plain JSON) and resumed (``restore``)."""

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...


@runtime_checkable
class Talks(Protocol):
    """A decider whose agents talk before they decide (``communication.turns > 0``).

    ``plan`` fixes the option orders the talk will show (the ones the decision will show);
    ``shown_options`` the options in the order an agent's talk shows; ``speak`` produces an
    agent's utterance (called by :mod:`hvae.simulation.talk`).
    """

    def plan(self, request: DecisionRequest, rng: np.random.Generator) -> None: ...

    def shown_options(self, request: DecisionRequest, agent_id: int) -> list[tuple[float, float]]: ...

    async def speak(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class SetsUpAgents(Protocol):
    """A decider with a per-agent setup (an LLM agent's value description and goal) that can run ahead.

    ``pending_setups`` counts the agents not set up yet; ``ensure_setup()`` (a coroutine) sets them
    up, calling ``on_agent_ready()`` after each when it is set.
    """

    pending_setups: int
    on_agent_ready: Callable[[], None] | None

    async def ensure_setup(self) -> None: ...


@runtime_checkable
class RecordsSetup(Protocol):
    """A decider that reports its agents' setup texts (written to the run folder)."""

    def setup_records(self) -> list[dict]: ...


@runtime_checkable
class KeepsAccounts(Protocol):
    """A decider that counts its model traffic (``llm_calls``, ``tokens_in``, …): the run summary adds
    these counts over the groups (:data:`hvae.simulation.runner.LLM_COUNTS`)."""

    def accounting(self) -> dict[str, int]: ...


def argmax_random_ties(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax of ``scores`` (n, k) with ties broken uniformly at random."""
    top = scores.max(axis=1, keepdims=True)
    is_top = scores >= top - UTILITY_TOLERANCE * np.maximum(1.0, np.abs(top))
    keys = np.where(is_top, rng.random(scores.shape), -1.0)
    return keys.argmax(axis=1)


class _RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OracleConfig(_RuleConfig):
    """``oracle``: maximise own utility; ``beta`` (optional) makes it a logit chooser."""

    kind: Literal["oracle"]
    beta: float | None = Field(default=None, gt=0, le=1e6, allow_inf_nan=False)  # 1e308 overflowed to inf


class RandomConfig(_RuleConfig):
    """``random``: uniform over the menu."""

    kind: Literal["random"]


class ReciprocalConfig(_RuleConfig):
    """``reciprocal``: match the generosity of the last ``memory`` games."""

    kind: Literal["reciprocal"]
    memory: int = Field(default=1, ge=1)


class FixedConfig(_RuleConfig):
    """``fixed``: always option ``option`` (0-based index in canonical menu order)."""

    kind: Literal["fixed"]
    option: int = Field(ge=0)


class OracleDecider(Decider):
    """Value-rational oracle: picks an option maximising U_θ(s, o) = cos θ·s + sin θ·o.

    Ties are broken uniformly at random with the model's rng. With a finite ``beta`` the choice is
    a logit (softmax) draw, P(c) ∝ exp(β·U_θ(c)) — the model the revealed-angle estimator fits.
    """

    name = kind = "oracle"
    Config = OracleConfig
    description = "Maximises its own SVO ring utility (the value-rational ceiling)."

    def __init__(self, beta: float | None = None) -> None:
        self.beta = beta

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        utilities = menu_utilities(request.thetas, request.options)
        if utilities.ndim == 1:
            utilities = utilities[None, :]
        if self.beta is None:
            return Decisions.from_choices(argmax_random_ties(utilities, rng))
        gumbel = -np.log(-np.log(rng.random(utilities.shape)))
        return Decisions.from_choices((self.beta * utilities + gumbel).argmax(axis=1))


class RandomDecider(Decider):
    """Uniform random chooser: the chance baseline for every value-rationality figure."""

    name = kind = "random"
    Config = RandomConfig
    description = "Chooses uniformly at random (the chance baseline)."
    acts_on_value = False

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        return Decisions.from_choices(rng.integers(0, len(request.options), size=request.n))


class ReciprocalDecider(Decider):
    """Gives back in proportion to what it was given.

    Rule: let ``g`` be the mean generosity of the agent's last ``memory`` games, where the
    generosity of a game is where the amount the partner gave sat in the range of "other"
    amounts on that game's menu (0 = the stingiest option, 1 = the most generous; undefined, and
    skipped, on a menu where every option gives the same). On the current menu the agent picks the
    option whose "other" amount sits nearest to ``g`` of the way up that menu's range —
    lexicographically: however small the difference in distance, utility only decides between
    options equally near, then chance. With no history yet (or on a menu whose options all give
    the other the same) it acts as the oracle of its own value.
    """

    name = kind = "reciprocal"
    Config = ReciprocalConfig
    description = "Matches the generosity it received in its last games; oracle when new."

    def __init__(self, memory: int = 1) -> None:
        self.memory = memory

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        options = request.options
        utilities = menu_utilities(request.thetas, options)
        if utilities.ndim == 1:
            utilities = utilities[None, :]
        recent = request.history.generosity[:, : self.memory]
        has_history = np.asarray(~np.isnan(recent).all(axis=1)) if recent.shape[1] else np.zeros(request.n, bool)
        target = np.zeros(request.n)
        if has_history.any():
            target[has_history] = np.nanmean(recent[has_history], axis=1)
        others = options[:, 1]
        spread = others.max() - others.min()
        if spread == 0:  # every option gives the other the same: generosity cannot be matched
            return Decisions.from_choices(argmax_random_ties(utilities, rng))
        position = (others - others.min()) / spread
        distance = np.abs(position[None, :] - target[:, None])
        # Lexicographic: only the options nearest the target generosity stay in play (however small
        # the margin), utility decides among them, and argmax_random_ties breaks what is left.
        nearest = distance <= distance.min(axis=1, keepdims=True) + GENEROSITY_TOLERANCE
        score = np.where(has_history[:, None], np.where(nearest, utilities, -np.inf), utilities)
        return Decisions.from_choices(argmax_random_ties(score, rng))


class FixedDecider(Decider):
    """Always chooses the same option index (useful in tests)."""

    name = kind = "fixed"
    Config = FixedConfig
    description = "Always picks one fixed option index."
    acts_on_value = False

    def __init__(self, option: int) -> None:
        self.option = option

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        if self.option >= len(request.options):
            raise ValueError(
                f"fixed option {self.option} does not exist on menu {request.menu_id!r} "
                f"({len(request.options)} options)"
            )
        return Decisions.from_choices(np.full(request.n, self.option))


def register_decider(cls: type[Decider]) -> type[Decider]:
    """Register a decider class (``kind`` and ``Config``; see the module docstring); a decorator too."""
    return DECIDERS.register(cls)


for _decider in (OracleDecider, RandomDecider, ReciprocalDecider, FixedDecider):
    register_decider(_decider)
#: ``llm`` (:mod:`hvae.agents.llm`): its config here; :mod:`hvae.simulation.deciders` attaches what builds it.
DECIDERS.add_config(LLMConfig)

#: The rule deciders shipped with hvae, by name.
RULE_DECIDERS: dict[str, type[Decider]] = {cls.name: cls for cls in (OracleDecider, RandomDecider, ReciprocalDecider, FixedDecider)}


#: Kinds of the deciders that show each menu in a counterbalanced order and record it (``shown_order``):
#: the first-position figures (share, display-adjusted test) exist for their groups.
DISPLAYING_DECIDERS: frozenset[str] = frozenset({"llm", "surrogate"})


#: Names of the deciders that ignore the agent's value (see :attr:`Decider.acts_on_value`).
VALUE_BLIND_DECIDERS: frozenset[str] = frozenset(name for name, cls in RULE_DECIDERS.items() if not cls.acts_on_value)


def build_rule_decider(config: BaseModel) -> Decider:
    """Instantiate a registered decider from its validated config (no context: rule deciders need none)."""
    return DECIDERS.plugin(DECIDERS.kind_of(type(config))).from_config(config)
