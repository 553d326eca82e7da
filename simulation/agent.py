"""The Mesa agent: one member of the population, fixed to one node of the network.

An :class:`SVOAgent` is a thin, readable view of one row of the model's population state
(value angle, cumulative payoff, history). The state itself lives in numpy arrays on the model so
that a round of 1,000 agents is a handful of vectorised operations; the agent objects keep the
Mesa idioms working — ``model.agents``, ``agent.cell.neighborhood``, ``AgentSet.select`` —
for inspection, visualisation and custom extensions::

    competitive = model.agents.select(lambda a: a.value_category == "competitive")
    [a.cumulative_payoff for a in competitive]

**Two ids.** Every table of a run folder names an agent by ``agent_id``, counted from 0: the row
of the state arrays and the node of the network. Mesa numbers agents by ``unique_id`` from 1 in
creation order; agents are created node by node, so ``unique_id == agent_id + 1`` always. Use
``agent.agent_id`` to find an agent in the tables, and ``model.agent_by_id(agent_id)`` for the
reverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesa.discrete_space import FixedAgent

from hvae.agents.svo import category

if TYPE_CHECKING:
    from hvae.simulation.model import HvaeModel


class SVOAgent(FixedAgent):
    """A population member with an SVO value, a decider (via its group) and a network node."""

    model: HvaeModel

    def __init__(self, model: HvaeModel, index: int, group: str, cell) -> None:
        super().__init__(model)
        self.index = index  # row in the model's state arrays; also the node and the agent id
        self.group = group
        self.cell = cell

    @property
    def agent_id(self) -> int:
        """The agent's id in every table (0-based; Mesa's ``unique_id`` is this plus 1)."""
        return self.index

    @property
    def value_angle(self) -> float:
        """The agent's SVO angle in degrees."""
        return float(self.model.state.theta[self.index])

    @property
    def value_category(self) -> str:
        return category(self.value_angle)

    @property
    def cumulative_payoff(self) -> float:
        return float(self.model.state.cumulative_payoff[self.index])

    @property
    def decider(self):
        return self.model.deciders[self.group]

    @property
    def partners(self) -> list[SVOAgent]:
        """Agents on neighbouring nodes (possible partners)."""
        return [agent for cell in self.cell.neighborhood for agent in cell.agents]

    def __repr__(self) -> str:
        return f"SVOAgent(id={self.index}, group={self.group!r}, θ={self.value_angle:.1f}°)"
