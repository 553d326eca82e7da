"""Value dynamics: how values spread through a population between rounds.

Every ``every`` rounds the model applies one update rule to the agents' SVO angles; agents keep
their decider (an LLM agent whose value changes is set up again — value description and goal —
before its next decision), and every change is recorded with the round after which it happened.

**Fitness** (``fitness:``, used by ``imitation`` and ``moran``) is measured since the last update:

* ``payoff_per_game`` (default) — payoff divided by games played. Accumulated payoff confounds
  value with network position and matching luck: under ``all_edges`` a hub's payoff grows with its
  degree, and under random maximal matching on a Barabási–Albert graph degree-1 nodes sit idle in
  most rounds (69% on a 200-node graph with m = 1, never for the top 5% by degree). An agent that
  played no game has unknown fitness and takes no part in the comparison (it neither imitates,
  nor is imitated, nor reproduces).
* ``total_payoff`` — the accumulated payoff (idle agents count as 0).

**Selection strength** ``s`` is per **payoff range of one game** R (:func:`payoff_range`: the mean
over the menus of one cycle of ``(max self − min self) + (max other − min other)``; 73.3 coins on
the slider, 20 on a 10-coin dictator menu): fitness differences enter as ``s · Δπ / R``. So a
neighbour that earns a tenth of the range more per game is copied with probability
``1 / (1 + e^(−s/10))`` — 0.62 at the default ``s = 5`` — and one that earns the whole range more
with ``1 / (1 + e^(−s))`` (0.993). The default was chosen on the slider menus of
``oracle_population``: over neighbours holding different values after one 6-round window, the mean
``|p − ½|`` of the Fermi probability is 0.29 at s = 5 (0.08 at s = 1, close to a coin flip; 0.39 at
s = 10 and 0.46 at s = 30, close to deterministic).

``imitation`` — pairwise comparison (Szabó & Tőke 1998; Traulsen et al. 2006). Every agent picks
    a random neighbour and adopts its value with the Fermi probability
    ``1 / (1 + exp(−s · (π_neighbour − π_self) / R))`` (s → ∞: copy whoever did better; s = 0:
    a coin flip). Updates are synchronous.
``moran`` — death–birth on the graph (Ohtsuki et al. 2006). ``events`` times (default: the
    population size, one generation): a uniformly random agent dies and a neighbour, chosen with
    probability proportional to ``exp(s · π / R)``, places a copy of its value there. Fitness is
    never stale: an agent whose value was replaced earlier in the same update earned its payoff
    under the value it lost, so it cannot be a parent until it has played under its new value
    (Axelrod's MoranProcess recomputes fitness after every event for the same reason); a death with
    no eligible neighbour leaves the agent as it was.
``influence`` — social influence on θ. Each agent's angle moves a fraction ``strength`` (default 1)
    of the way toward the mean revealed angle of its neighbours, estimated from their valid
    decisions in the last ``every`` rounds (:mod:`hvae.analysis.revealed`, clipped to [−90°, 90°]);
    neighbours whose angle the decisions do not identify are skipped.
``none`` — values never change (the default).

Angles always stay in [−90°, 90°]. All draws use the model's ``dynamics`` random stream.

**Rules are plug-ins.** Each rule is a :class:`Rule` subclass with its own config class (a
:class:`~hvae.scenarios.schema.DynamicsConfig` with ``rule: Literal[<name>]``) and its own state,
which it checkpoints (``snapshot``/``restore``: plain JSON and named arrays). The model calls
:meth:`Rule.observe` after every round and :meth:`Rule.update` every ``every`` rounds. A new rule
is registered with :func:`register_rule` (or a ``hvae.rules`` entry point, :mod:`hvae.agents.plugins`)::

    class ConformityConfig(DynamicsConfig):
        rule: Literal["conformity"]

    class Conformity(Rule):
        Config = ConformityConfig

        def propose(self, model):                     # new angles and whose value was copied
            ...

    register_rule(Conformity)        # then: dynamics: {rule: conformity, every: 4}
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hvae.agents.plugins import RULES
from hvae.scenarios.schema import DynamicsConfig, ImitationConfig, InfluenceConfig, MoranConfig, NoDynamicsConfig, SelectionConfig

if TYPE_CHECKING:
    from hvae.simulation.model import HvaeModel


@dataclass
class ValueChange:
    """One agent's value change."""

    round: int  # the round after which it happened (0-based, as ``decisions.round``)
    agent_id: int
    old_angle: float
    new_angle: float
    source_agent: int  # whose value was copied (−1 for influence)


@dataclass
class ValueChanges:
    """The value changes of one update, as arrays in agent order (a million agents may change at once).

    ``len()`` counts them; iterating yields one :class:`ValueChange` per agent.
    """

    round: int  # the round after which they happened (0-based, as ``decisions.round``)
    agent_id: np.ndarray
    old_angle: np.ndarray
    new_angle: np.ndarray
    source_agent: np.ndarray  # whose value was copied (−1 for influence)

    def __len__(self) -> int:
        return int(self.agent_id.size)

    def __iter__(self):
        for agent, old, new, source in zip(
            self.agent_id.tolist(), self.old_angle.tolist(), self.new_angle.tolist(), self.source_agent.tolist()
        ):
            yield ValueChange(self.round, agent, old, new, source)


class Neighbours:
    """Adjacency as CSR arrays (``indptr``, ``indices``) for fast random neighbour draws."""

    def __init__(self, edges: np.ndarray, n: int) -> None:
        both = np.concatenate([edges, edges[:, ::-1]])
        # by (u, v): one key per row (the pairs are distinct), so an unstable sort gives the same order
        order = np.argsort(both[:, 0].astype(np.int64) * max(n, 1) + both[:, 1])
        both = both[order]
        self.indices = both[:, 1]
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(both[:, 0], minlength=n))])
        self.degree = np.diff(self.indptr)

    def of(self, agent: int) -> np.ndarray:
        return self.indices[self.indptr[agent] : self.indptr[agent + 1]]

    def random_one(self, agents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random neighbour of each agent (−1 for isolated agents)."""
        degree = self.degree[agents]
        offset = np.floor(rng.random(agents.size) * np.maximum(degree, 1)).astype(np.int64)
        picked = self.indices[np.minimum(self.indptr[agents] + offset, max(len(self.indices) - 1, 0))]
        return np.where(degree > 0, picked, -1)


def payoff_range(menus) -> float:
    """The coin scale of selection: the mean over the menus of one cycle of the range of payoffs
    one game can give, ``(max self − min self) + (max other − min other)`` (one's own kept amount
    plus what the partner gives). 73.3 coins on the slider items, 20 on a 10-coin dictator menu."""
    ranges = [float(np.ptp(m.options[:, 0]) + np.ptp(m.options[:, 1])) for m in menus]
    scale = float(np.mean(ranges)) if ranges else 1.0
    return scale if scale > 0 else 1.0


def fitness(model: HvaeModel, config: SelectionConfig, since: np.ndarray | None = None) -> np.ndarray:
    """Each agent's fitness since the last update, in units of :func:`payoff_range`.

    ``payoff_per_game`` (default): payoff earned since the last update divided by the games played
    since then — NaN for an agent that played no game, whose fitness is unknown. Payoff per game
    does not grow with degree (under ``all_edges`` a hub's total payoff does) or with matching luck
    (under random maximal matching on a Barabási–Albert graph degree-1 nodes sit idle in most
    rounds). ``total_payoff``: the payoff accumulated since the last update (0 for idle agents).
    ``since`` is each agent's accumulated payoff at the last update (default: the model's rule's).
    """
    state = model.state
    if since is None:
        since = model.dynamics.payoff_at_last_update
    payoff = state.cumulative_payoff - since
    if config.fitness == "total_payoff":
        value = payoff
    else:
        games = (state.n_games - state.n_games_at_update).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(games > 0, payoff / games, np.nan)
    return value / payoff_range(model.schedule.menus)


def imitation(theta: np.ndarray, fit: np.ndarray, neighbours: Neighbours, strength: float, rng: np.random.Generator):
    """Fermi imitation; a pair in which either fitness is unknown (NaN) does not compare."""
    n = theta.size
    agents = np.arange(n)
    model = neighbours.random_one(agents, rng)
    valid = model >= 0
    gain = np.where(valid, fit[np.maximum(model, 0)] - fit, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        probability = 1.0 / (1.0 + np.exp(-strength * gain))
    adopt = valid & np.isfinite(gain) & (rng.random(n) < probability) & (theta[np.maximum(model, 0)] != theta)
    new = theta.copy()
    new[adopt] = theta[model[adopt]]
    return new, np.where(adopt, model, -1)


def moran(theta: np.ndarray, fit: np.ndarray, neighbours: Neighbours, strength: float, events: int, rng: np.random.Generator):
    """Death–birth with fitness that is never stale.

    A parent must have played under the value it passes on: an agent whose value was replaced
    earlier in this update has no fitness under its new value yet, so it cannot be a parent until
    it has played a game under it (after the next rounds); neither can an agent with unknown
    fitness (no game since the last update). A death whose neighbours are all ineligible leaves
    the agent as it was.
    """
    new = theta.copy()
    source = np.full(theta.size, -1)
    eligible = np.isfinite(fit)
    shifted = fit - np.max(fit[eligible]) if eligible.any() else fit  # shift: exp never overflows
    for _ in range(events):
        dying = int(rng.integers(theta.size))
        candidates = neighbours.of(dying)
        candidates = candidates[eligible[candidates]]
        if candidates.size == 0:
            continue
        weights = np.exp(strength * shifted[candidates])
        total = weights.sum()
        parent = int(candidates[rng.choice(candidates.size, p=weights / total)]) if total > 0 else int(rng.choice(candidates))
        if new[parent] != new[dying]:
            new[dying] = new[parent]
            source[dying] = parent
            eligible[dying] = False  # its fitness was earned under the value it just lost
    return new, source


def influence(theta: np.ndarray, revealed: np.ndarray, neighbours: Neighbours, strength: float):
    new = theta.copy()
    for agent in range(theta.size):
        others = neighbours.of(agent)
        seen = revealed[others]
        seen = seen[np.isfinite(seen)]
        if seen.size:
            new[agent] = theta[agent] + strength * (seen.mean() - theta[agent])
    return np.clip(new, -90.0, 90.0), np.full(theta.size, -1)


def window_revealed_angles(model: HvaeModel, since_round: int) -> np.ndarray:
    """Each agent's revealed angle from its decisions since ``since_round`` (NaN if none)."""
    from hvae.agents.revealed import fit_revealed_angle

    revealed = np.full(model.n_agents, np.nan)
    records = model.recent_choices(since_round)
    for agent, decisions in records.items():
        options = [model.schedule.menu_by_id[menu_id].options for menu_id, _ in decisions]
        choices = np.array([choice for _, choice in decisions])
        revealed[agent] = float(np.clip(fit_revealed_angle(options, choices).theta, -90.0, 90.0))
    return revealed


# ---------------------------------------------------------------------------------- rules as objects
class Rule:
    """A value-dynamics rule with its own config and state (module docstring).

    Subclasses set ``Config`` (its ``rule`` literal is the rule's name) and implement :meth:`propose`.
    ``payoff_at_last_update`` is every agent's accumulated payoff at the last update (the baseline of
    :func:`fitness`); ``window`` keeps the last ``every`` rounds' valid choices for rules that read
    behaviour (``reads_choices = True``).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[DynamicsConfig]]
    #: True for rules that read the agents' recent choices (kept in :attr:`window`).
    reads_choices: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__ and not cls.__dict__.get("name"):
            cls.name = RULES.kind_of(cls.Config)

    def __init__(self, config: DynamicsConfig, n_agents: int) -> None:
        self.config = config
        self.payoff_at_last_update = np.zeros(n_agents)
        self.window: ChoiceWindow | None = ChoiceWindow(config.every) if self.reads_choices else None

    @property
    def active(self) -> bool:
        """Whether the rule ever changes a value (``none`` does not)."""
        return True

    def observe(self, round_index: int, menu_id: str, deciding: np.ndarray, behaved: np.ndarray) -> None:
        """After each round: the deciding agents and their valid choices (−1: no behaviour)."""
        if self.window is not None:
            self.window.append(round_index, menu_id, deciding, behaved)

    def propose(self, model: HvaeModel) -> tuple[np.ndarray, np.ndarray]:
        """The new angles of every agent and whose value each copied (−1: none)."""
        raise NotImplementedError(f"rule {self.name!r} must implement propose()")

    def update(self, model: HvaeModel) -> ValueChanges:
        """Apply the rule now; returns the changes (already applied to the model)."""
        state = model.state
        old = state.theta.copy()
        new, source = self.propose(model)
        changed = np.flatnonzero(new != old)
        state.theta[:] = new
        self.payoff_at_last_update = state.cumulative_payoff.copy()
        state.n_games_at_update[:] = state.n_games
        # the change follows the round just played (``model.round - 1`` in the 0-based numbering of
        # ``decisions.round``) and holds from the next round on
        return ValueChanges(
            model.round - 1, changed, old[changed].astype(float), new[changed].astype(float),
            np.asarray(source)[changed].astype(np.int64),
        )

    # ---------------------------------------------------------------- checkpoint
    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The rule's state: plain JSON and named arrays (see :mod:`hvae.simulation.checkpoint`)."""
        arrays = {"payoff_at_last_update": self.payoff_at_last_update.copy()}
        meta: dict[str, Any] = {}
        if self.window is not None:
            meta["recent_menus"] = self.window.snapshot(arrays)
        return meta, arrays

    def misfit(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
        """Why a snapshot cannot be this rule's (None when it fits)."""
        found = arrays.get("payoff_at_last_update")
        if found is None or found.shape != self.payoff_at_last_update.shape or found.dtype.kind != "f":
            return "array dynamics.payoff_at_last_update is missing or has another shape"
        if self.window is not None:
            return self.window.misfit(meta.get("recent_menus"), arrays)
        return None

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.payoff_at_last_update = arrays["payoff_at_last_update"].copy()
        if self.window is not None:
            self.window.restore(meta["recent_menus"], arrays)


class ChoiceWindow:
    """The valid choices of the last ``length`` rounds: (menu_id, agent ids, choices) per round."""

    def __init__(self, length: int) -> None:
        self.rounds: deque[tuple[str, np.ndarray, np.ndarray]] = deque(maxlen=length)
        self.last_round = -1

    def append(self, round_index: int, menu_id: str, deciding: np.ndarray, behaved: np.ndarray) -> None:
        self.rounds.append((menu_id, deciding, behaved))
        self.last_round = round_index

    def choices(self, since_round: int, rounds_played: int) -> dict[int, list[tuple[str, int]]]:
        """Per agent, (menu_id, choice) of its valid decisions from round ``since_round`` on; the
        newest entry is round ``rounds_played - 1``, so the entries' rounds follow from their positions."""
        out: dict[int, list[tuple[str, int]]] = {}
        first_kept = rounds_played - len(self.rounds)
        for offset, (menu_id, ids, choices) in enumerate(self.rounds):
            if first_kept + offset < since_round:
                continue
            for agent, choice in zip(ids.tolist(), choices.tolist()):
                if choice >= 0:
                    out.setdefault(agent, []).append((menu_id, choice))
        return out

    def snapshot(self, arrays: dict[str, np.ndarray]) -> list[str]:
        menus = []
        for index, (menu_id, ids, choices) in enumerate(self.rounds):
            menus.append(menu_id)
            arrays[f"recent.{index}.ids"] = np.array(ids, copy=True)
            arrays[f"recent.{index}.choices"] = np.array(choices, copy=True)
        return menus

    def misfit(self, menus: Any, arrays: dict[str, np.ndarray]) -> str | None:
        if not isinstance(menus, list) or len(menus) > (self.rounds.maxlen or 0):
            return "recent choices do not fit the dynamics settings"
        for index in range(len(menus)):
            for part in ("ids", "choices"):
                if f"recent.{index}.{part}" not in arrays:
                    return f"array dynamics.recent.{index}.{part} is missing"
        return None

    def restore(self, menus: list[str], arrays: dict[str, np.ndarray]) -> None:
        self.rounds.clear()
        for index, menu_id in enumerate(menus):
            self.rounds.append((str(menu_id), arrays[f"recent.{index}.ids"].copy(), arrays[f"recent.{index}.choices"].copy()))


class NoDynamics(Rule):
    """``none``: values never change."""

    Config = NoDynamicsConfig

    @property
    def active(self) -> bool:
        return False

    def propose(self, model: HvaeModel) -> tuple[np.ndarray, np.ndarray]:
        return model.state.theta.copy(), np.full(model.n_agents, -1)


class Imitation(Rule):
    """``imitation``: pairwise comparison with a random neighbour (module docstring)."""

    Config = ImitationConfig

    def propose(self, model: HvaeModel) -> tuple[np.ndarray, np.ndarray]:
        config: Any = self.config
        return imitation(model.state.theta.copy(), fitness(model, config), model.neighbours, config.strength, model.streams["dynamics"])


class Moran(Rule):
    """``moran``: death–birth on the graph (module docstring)."""

    Config = MoranConfig

    def propose(self, model: HvaeModel) -> tuple[np.ndarray, np.ndarray]:
        config: Any = self.config
        return moran(model.state.theta.copy(), fitness(model, config), model.neighbours, config.strength,
                     config.events or model.n_agents, model.streams["dynamics"])


class Influence(Rule):
    """``influence``: toward the neighbours' mean revealed angle (module docstring)."""

    Config = InfluenceConfig
    reads_choices = True

    def propose(self, model: HvaeModel) -> tuple[np.ndarray, np.ndarray]:
        revealed = window_revealed_angles(model, model.round - self.config.every)
        return influence(model.state.theta.copy(), revealed, model.neighbours, self.config.strength)


def register_rule(rule: type[Rule]) -> type[Rule]:
    """Register a rule class (its ``Config`` names it; module docstring); returns it (a decorator too)."""
    return RULES.register(rule)


for _rule in (NoDynamics, Imitation, Moran, Influence):
    RULES.attach(_rule.name, _rule)


def build_rule(config: DynamicsConfig, n_agents: int) -> Rule:
    """The rule object a scenario's validated ``dynamics`` section asks for."""
    return RULES.plugin(config.rule)(config, n_agents)


def apply_dynamics(model: HvaeModel) -> ValueChanges:
    """Apply the model's update rule now; returns the changes (already applied to the model)."""
    if model.dynamics.active:
        return model.dynamics.update(model)
    none = np.zeros(0, dtype=np.int64)
    return ValueChanges(model.round - 1, none, none.astype(float), none.astype(float), none)
