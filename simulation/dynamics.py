"""Value dynamics: how values spread through a population between rounds.

Every ``every`` rounds the model applies one update rule to the agents' SVO angles; agents keep
their decider (an LLM agent whose value changes is set up again — value description and goal —
before its next decision), and every change is recorded with its round.

``imitation`` — pairwise comparison (Szabó & Tőke 1998; Traulsen et al. 2006). Every agent picks
    a random neighbour and adopts its value with the Fermi probability
    ``1 / (1 + exp(−s · (π_neighbour − π_self)))``, where π is the payoff earned since the last
    update and ``s = strength`` the selection strength (s → ∞: copy whoever did better; s = 0:
    a coin flip). Updates are synchronous.
``moran`` — death–birth on the graph (Ohtsuki et al. 2006). ``events`` times (default: the
    population size, one generation): a uniformly random agent dies and a neighbour, chosen with
    probability proportional to fitness ``exp(strength · π)``, places a copy of its value there.
``influence`` — social influence on θ. Each agent's angle moves a fraction ``strength`` of the way
    toward the mean revealed angle of its neighbours, estimated from their decisions since the last
    update (:mod:`hvae.analysis.revealed`, clipped to [−90°, 90°]).
``none`` — values never change (the default).

Angles always stay in [−90°, 90°]. All draws use the model's ``dynamics`` random stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hvae.scenarios.schema import DynamicsConfig

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


class Neighbours:
    """Adjacency as CSR arrays (``indptr``, ``indices``) for fast random neighbour draws."""

    def __init__(self, edges: np.ndarray, n: int) -> None:
        both = np.concatenate([edges, edges[:, ::-1]])
        order = np.lexsort((both[:, 1], both[:, 0]))
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


def imitation(theta: np.ndarray, payoff: np.ndarray, neighbours: Neighbours, strength: float, rng: np.random.Generator):
    n = theta.size
    agents = np.arange(n)
    model = neighbours.random_one(agents, rng)
    valid = model >= 0
    gain = np.where(valid, payoff[np.maximum(model, 0)] - payoff, 0.0)
    with np.errstate(over="ignore"):
        probability = 1.0 / (1.0 + np.exp(-strength * gain))
    adopt = valid & (rng.random(n) < probability) & (theta[np.maximum(model, 0)] != theta)
    new = theta.copy()
    new[adopt] = theta[model[adopt]]
    return new, np.where(adopt, model, -1)


def moran(theta: np.ndarray, payoff: np.ndarray, neighbours: Neighbours, strength: float, events: int, rng: np.random.Generator):
    new = theta.copy()
    source = np.full(theta.size, -1)
    fitness_payoff = payoff - payoff.max() if payoff.size else payoff  # shift: exp never overflows
    for _ in range(events):
        dying = int(rng.integers(theta.size))
        candidates = neighbours.of(dying)
        if candidates.size == 0:
            continue
        weights = np.exp(strength * fitness_payoff[candidates])
        total = weights.sum()
        parent = int(candidates[rng.choice(candidates.size, p=weights / total)]) if total > 0 else int(rng.choice(candidates))
        if new[parent] != new[dying]:
            new[dying] = new[parent]
            source[dying] = parent
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
    from hvae.analysis.revealed import fit_revealed_angle

    revealed = np.full(model.n_agents, np.nan)
    records = model.recent_choices(since_round)
    for agent, decisions in records.items():
        options = [model.schedule.menu_by_id[menu_id].options for menu_id, _ in decisions]
        choices = np.array([choice for _, choice in decisions])
        revealed[agent] = float(np.clip(fit_revealed_angle(options, choices).theta, -90.0, 90.0))
    return revealed


def apply_dynamics(model: HvaeModel) -> list[ValueChange]:
    """Apply the scenario's update rule now; returns the changes (already applied to the model)."""
    config: DynamicsConfig = model.scenario.dynamics
    state = model.state
    rng = model.streams["dynamics"]
    payoff = state.cumulative_payoff - model.payoff_at_last_update
    old = state.theta.copy()
    if config.rule == "imitation":
        new, source = imitation(old, payoff, model.neighbours, config.strength, rng)
    elif config.rule == "moran":
        new, source = moran(old, payoff, model.neighbours, config.strength, config.events or model.n_agents, rng)
    elif config.rule == "influence":
        revealed = window_revealed_angles(model, model.round - config.every)
        new, source = influence(old, revealed, model.neighbours, config.strength)
    else:
        return []
    changed = np.flatnonzero(new != old)
    state.theta[:] = new
    model.payoff_at_last_update = state.cumulative_payoff.copy()
    # the change follows the round just played (``model.round - 1`` in the 0-based numbering of
    # ``decisions.round``) and holds from the next round on
    return [
        ValueChange(model.round - 1, int(i), float(old[i]), float(new[i]), int(source[i])) for i in changed
    ]
