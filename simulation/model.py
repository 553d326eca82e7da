"""The Mesa model: a population of SVO agents on a network playing decomposed allocation games.

One call to :meth:`HvaeModel.step` is one round:

1. **match** — pairs are drawn along the network's edges (``random``) or every edge plays
   (``all_edges``), see :mod:`hvae.simulation.matching`;
2. **menu** — the round's menu comes from the schedule (:mod:`hvae.simulation.menus`);
3. **decide** — with ``communication.turns > 0`` the agents of each pair with an LLM agent
   first talk (:mod:`hvae.simulation.talk`; messages go to ``model.log`` too); then every
   matched agent chooses once; each population group's decider decides for
   all its agents together, and asynchronous (LLM) deciders of all groups run concurrently;
4. **pay** — in the decomposed game each agent receives its own "self" amount plus what each
   partner chose to give ("other"); a pair with an undecided member (an invalid LLM reply with
   the ``skip`` fallback) pays nobody;
5. **remember** — each agent's bounded history records what its partners gave it;
6. **collect** — the round's decision rows and population figures go to ``model.log``
   (a :class:`~hvae.simulation.records.RoundLog`), the model's data collector.

The model keeps its own ``round`` counter (Mesa 4 drops ``model.steps``). Randomness comes from
independent streams spawned from the scenario seed — graph, placement, values per group, matching,
decisions per group — so the same seed reproduces a run exactly, and changing one group's decider
does not shift another group's draws::

    from hvae.scenarios.loader import load_scenario
    model = HvaeModel(load_scenario("oracle_population"))
    for _ in range(6):
        model.step()
    model.log.decision_rows()  # a pyarrow Table

**Event loops.** LLM deciders are coroutines; they always run on the model's own private event
loop (:mod:`hvae.simulation.event_loop`), so their clients stay bound to one loop whichever way
the model is driven. ``model.step()``
works from plain Python (the private loop runs in this thread), from inside a running event loop
such as Jupyter's or Mesa's Solara visualisation (the private loop runs in a worker thread while
this thread waits), and async code can ``await model.astep()``, which plays the round in a worker
thread without blocking the caller's loop. The same seed gives the same round in all three.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mesa
from mesa.agent import AgentSet
import numpy as np
from mesa.discrete_space import Network

from hvae.agents.deciders import (
    NO_CHOICE,
    Decider,
    DecisionRequest,
    Decisions,
    RecordsSetup,
    SetsUpAgents,
)
from hvae.agents.svo import categories
from hvae.agents.tasks import gather_all
from hvae.scenarios.errors import ScenarioError
from hvae.scenarios.schema import Group, Scenario
from hvae.simulation.agent import SVOAgent
from hvae.simulation.deciders import DeciderContext, LLMBackends, build_decider
from hvae.simulation.dynamics import Neighbours, Rule, build_rule
from hvae.simulation.event_loop import PrivateLoop
from hvae.simulation.games import build_game
from hvae.simulation.matching import random_maximal_matching, random_permutation_pairs
from hvae.simulation.menus import Menu, MenuSchedule
from hvae.simulation.network import NetworkError, build_edges, build_graph, edge_array, graph_of_edges, is_complete
from hvae.simulation.records import RoundLog
from hvae.simulation.state import PopulationState

if TYPE_CHECKING:
    from hvae.simulation.talk import TalkPhase

#: Names of the independent random streams spawned from the scenario seed.
STREAMS = ("graph", "placement", "values", "matching", "decisions", "dynamics")


class HvaeModel(mesa.Model):
    """A population of SVO agents on a network, one decomposed game per round.

    Args:
        scenario: a validated :class:`~hvae.scenarios.schema.Scenario`.
        seed: overrides ``scenario.seed`` when given.
        deciders: optional ready-made deciders by group name (tests inject scripted ones).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        deciders: dict[str, Decider] | None = None,
    ) -> None:
        self.seed = scenario.seed if seed is None else seed
        super().__init__(rng=self.seed)
        self.scenario = scenario
        self.round = 0  # rounds completed; our own counter (Mesa 4 drops model.steps)
        self.streams = dict(
            zip(STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(len(STREAMS))))
        )
        counts = scenario.group_counts()
        self.group_names: list[str] = [g.name for g in scenario.population]
        n = sum(counts.values())

        graph_seed = int(self.streams["graph"].integers(2**31 - 1))
        network = scenario.network.model_dump()
        # The network is held once, as Mesa's space; edges, degrees, completeness and neighbour
        # lists are arrays derived from its graph (see network_changed()). An arrays-built network
        # (builder: arrays, for a million agents) starts as the arrays alone: Mesa's space and the
        # agent objects are built from them when first asked for (see the space property).
        self._space: Network | None = None
        if network.get("builder") == "arrays":
            self._set_network_arrays(build_edges(network, n, graph_seed), n)
        else:
            self._space = Network(build_graph(network, n, graph_seed), capacity=1, random=self.random)
            self._derive_network_arrays()

        self.state = PopulationState.empty(n, scenario.history.length)
        # Agents of each group are spread over the nodes in a random order.
        codes = np.repeat(np.arange(len(self.group_names)), [counts[g] for g in self.group_names])
        self.state.group_code = self.streams["placement"].permutation(codes).astype(np.int32)
        # Each group draws its values from its own stream, so groups do not shift each other.
        value_seeds = self.streams["values"].spawn(len(scenario.population))
        for code, group in enumerate(scenario.population):
            members = np.flatnonzero(self.state.group_code == code)
            self.state.theta[members] = group.value_spec.sample(len(members), value_seeds[code])

        self.group_members = [
            np.flatnonzero(self.state.group_code == code) for code in range(len(self.group_names))
        ]
        self.decider_rngs = dict(
            zip(self.group_names, self.streams["decisions"].spawn(len(self.group_names)))
        )
        deciders = dict(deciders or {})
        # the game (schedule, partners, payoffs, memory, the LLM's view: hvae.simulation.games)
        self.game = build_game(scenario.menus, self.degree, scenario.network.kind)
        self.schedule: MenuSchedule = self.game.schedule()
        self.llm = LLMBackends(scenario)  # built when the first LLM group asks for it
        self.deciders: dict[str, Decider] = {}
        for code, group in enumerate(scenario.population):
            decider = deciders.get(group.name) or self.build_decider(group)
            decider.setup(self.group_members[code], self.state.theta[self.group_members[code]])
            self.deciders[group.name] = decider
        self.decider_kinds = [self.deciders[g].name for g in self.group_names]
        self._check_fixed_options()

        self._agents_by_index: list[SVOAgent] = []
        if self._space is not None:
            self._create_agents()

        self.log = RoundLog(self)
        self.event_loop = PrivateLoop()  # LLM coroutines run here (see hvae.simulation.event_loop)
        # value dynamics: the rule keeps its own state (hvae.simulation.dynamics)
        self.initial_theta = self.state.theta.copy()
        self.n_value_changes = np.zeros(n, dtype=np.int64)
        self.dynamics: Rule = build_rule(scenario.dynamics, n)
        # pre-play talk (communication.turns > 0): the phase orchestrates it (hvae.simulation.talk)
        self.talk: TalkPhase | None = None
        if scenario.communication.turns > 0:
            from hvae.simulation.talk import TalkPhase

            self.talk = TalkPhase(self)

    # ------------------------------------------------------------------ setup helpers
    def build_decider(self, group: Group) -> Decider:
        """Instantiate the decider a group's config names (a registered kind: hvae.simulation.deciders)."""
        return build_decider(DeciderContext(group, self.scenario, self.seed, self.game.llm_view(), self.llm))

    @property
    def llm_pool(self):
        """The LLM backend pool (None when no LLM group uses one)."""
        return self.llm.pool

    def attach_run_folder(self, path: str | Path) -> None:
        """Send LLM transcripts to the run folder (``transcripts.jsonl``)."""
        self.llm.attach_run_folder(path)

    def llm_setup_records(self) -> list[dict]:
        """Setup texts (value description, goal) of every LLM agent set up so far."""
        records = []
        for decider in self.deciders.values():
            if isinstance(decider, RecordsSetup):
                records.extend(decider.setup_records())
        return records

    def _check_fixed_options(self) -> None:
        for group in self.scenario.population:
            if group.decider.kind == "fixed" and group.decider.option >= self.schedule.min_size:
                raise ScenarioError(
                    f"group {group.name!r}: fixed option {group.decider.option} does not exist on "
                    f"every menu (the smallest has {self.schedule.min_size} options)"
                )

    def _cell(self, node: int):
        """Mesa's cell of a node (Mesa's ``Network.__getitem__`` is annotated for grid coordinates, but
        a network's cells are keyed by node)."""
        return self.space[cast(Any, node)]

    def _create_agents(self) -> None:
        # created node by node: Mesa's unique_id (from 1) is agent_id + 1 (see hvae.simulation.agent)
        self._agents_by_index = [
            SVOAgent(self, node, self.group_names[self.state.group_code[node]], self._cell(node))
            for node in range(self.n_agents)
        ]

    @property
    def space(self) -> Network:
        """Mesa's network space (its cells hold the agents). For an arrays-built network it is built
        from the edge arrays, with the agent objects, the first time it is asked for (about 20 s and
        a few GB at a million agents: the rounds never need it)."""
        if self._space is None:
            self._space = Network(graph_of_edges(self.edges, self.n_agents), capacity=1, random=self.random)
            self._create_agents()
        return self._space

    @property
    def agents(self) -> AgentSet:
        """Mesa's set of every agent (built with :attr:`space` when the network was built as arrays)."""
        if self._space is None:
            self.space  # noqa: B018 - builds the Mesa layer
        return self._all_agents

    @property
    def graph(self):
        """The network (a networkx graph): the graph of Mesa's space, ``model.space.G``."""
        return self.space.G

    def _derive_network_arrays(self) -> None:
        self._set_network_arrays(edge_array(self.graph), self.graph.number_of_nodes(), is_complete(self.graph))

    def _set_network_arrays(self, edges: np.ndarray, n: int, complete: bool | None = None) -> None:
        # column-major: each side of the edges is one contiguous array, so the per-round gathers
        # and sums over a million agents' edges read memory in order
        self.edges = np.asfortranarray(edges)
        if len(self.edges) == 0:
            raise NetworkError(
                f"the {self.scenario.network.kind} network of {n} agents has no edges: nobody can be matched"
            )
        self.complete_graph = len(edges) == n * (n - 1) // 2 if complete is None else complete
        self.degree = np.bincount(self.edges.ravel(order="K"), minlength=n)
        self._with_edges = np.flatnonzero(self.degree > 0)  # who decides when every edge plays
        self.neighbours = Neighbours(self.edges, n)

    def network_changed(self) -> None:
        """Re-derive the model's network arrays after the space's connections were changed.

        Matching, payoffs and the value dynamics read arrays derived from ``model.space.G``; after
        ``model.space.add_connection`` / ``remove_connection`` (e.g. from a visualisation) call this
        so that the next round plays on the changed network. A run folder's checkpoint rebuilds the
        network from the scenario, so hand-made changes are not carried across a resume.
        """
        self._derive_network_arrays()
        self.game.check_network(self.degree, self.scenario.network.kind)

    def agent_by_id(self, agent_id: int) -> SVOAgent:
        """The Mesa agent of a table's ``agent_id`` (0-based; its ``unique_id`` is ``agent_id + 1``)."""
        if self._space is None:
            self.space  # noqa: B018 - builds the Mesa layer
        return self._agents_by_index[agent_id]

    @property
    def n_agents(self) -> int:
        return int(self.state.theta.shape[0])

    @property
    def value_categories(self) -> np.ndarray:
        return categories(self.state.theta)

    # ------------------------------------------------------------------ one round
    def match(self) -> np.ndarray:
        """Edges that play this round, ``(m, 2)`` (a game played with every neighbour: every edge)."""
        if self.scenario.matching == "all_edges" or self.game.plays_every_neighbour:
            return self.edges
        rng = self.streams["matching"]
        if self.complete_graph:
            return random_permutation_pairs(self.n_agents, rng)
        return random_maximal_matching(self.edges, self.n_agents, rng)

    def step(self) -> None:
        """Play one round (see the module docstring for the five phases)."""
        menu = self.schedule.menu_for_round(self.round)
        pairs = self.match()
        if pairs is self.edges:  # every edge plays: everyone with a neighbour decides
            deciding = self._with_edges
        else:
            deciding = np.flatnonzero(np.bincount(pairs.ravel(order="K"), minlength=self.n_agents) > 0)
        choice, per_group = self.decide(menu, deciding, pairs)
        outcome = self.pay(menu, pairs, choice)
        self.remember(menu, pairs, choice, outcome)
        self.log.collect(menu, deciding, choice, per_group, outcome)
        if self.dynamics.reads_choices:
            behaved = choice[deciding].copy()  # what the dynamics may read as behaviour: no fallback choices
            for ids, decisions in per_group.values():
                behaved[np.searchsorted(deciding, ids[~decisions.valid])] = NO_CHOICE
            self.dynamics.observe(self.round, menu.menu_id, deciding, behaved)
        self.round += 1
        if self.dynamics.active and self.round % self.dynamics.config.every == 0:
            self.update_values()

    async def astep(self) -> None:
        """Play one round from async code: :meth:`step` in a worker thread, the caller's loop stays free."""
        await asyncio.to_thread(self.step)

    def update_values(self) -> None:
        """Apply the value-dynamics rule; re-set-up deciders of agents whose value changed."""
        changes = self.dynamics.update(self)
        if not changes:
            return
        changed = changes.agent_id
        self.n_value_changes[changed] += 1
        for code, name in enumerate(self.group_names):
            members = changed[self.state.group_code[changed] == code]
            if members.size:
                self.deciders[name].setup(members, self.state.theta[members])
        self.log.collect_value_changes(changes, self.scenario.dynamics.rule)

    def recent_choices(self, since_round: int) -> dict[int, list[tuple[str, int]]]:
        """Per agent, (menu_id, choice) of its valid decisions from round ``since_round`` on.

        Kept by rules that read choices (``influence``), for the last ``dynamics.every`` rounds;
        empty for the others.
        """
        window = self.dynamics.window
        return {} if window is None else window.choices(since_round, self.round)

    def requests(self, menu: Menu, deciding: np.ndarray) -> dict[str, DecisionRequest]:
        """One :class:`DecisionRequest` per group that has agents deciding this round."""
        requests = {}
        everyone = deciding.size == self.n_agents  # deciding is sorted and unique: every agent decides
        codes = None if everyone else self.state.group_code[deciding]
        for code, name in enumerate(self.group_names):
            ids = self.group_members[code] if codes is None else deciding[codes == code]
            if ids.size:
                requests[name] = DecisionRequest(
                    round=self.round,
                    menu_id=menu.menu_id,
                    options=menu.options,
                    agent_ids=ids,
                    thetas=self.state.theta[ids],
                    history_source=functools.partial(self.state.history_of, ids),
                    game=menu.game,
                )
        return requests

    def decide(
        self, menu: Menu, deciding: np.ndarray, pairs: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, Decisions]]]:
        """Ask every group's decider; returns the choice per agent (−1 = none) and raw results.

        With ``communication.turns > 0`` and the round's ``pairs`` given, paired agents talk
        first (:mod:`hvae.simulation.talk`) and each LLM agent sees its conversation when it decides.
        """
        requests = self.requests(menu, deciding)
        results: dict[str, Decisions] = {}
        async_groups = [g for g in requests if self.deciders[g].is_async]
        for group in requests:
            if group not in async_groups:
                results[group] = self.deciders[group].decide(requests[group], self.decider_rngs[group])
        talk = None
        if pairs is not None and self.talk is not None and self.talk.plan(requests, async_groups):
            talk = (menu, pairs)
        if async_groups:
            results.update(self._run_async(requests, async_groups, talk))
        choice = np.full(self.n_agents, NO_CHOICE, dtype=np.int64)
        per_group = {}
        for group, request in requests.items():
            decisions = results[group]
            if decisions.choice.shape[0] != request.n:
                raise RuntimeError(
                    f"decider of group {group!r} returned {decisions.choice.shape[0]} choices "
                    f"for {request.n} agents"
                )
            bad = (decisions.choice < NO_CHOICE) | (decisions.choice >= len(menu.options))
            if bad.any():
                raise RuntimeError(
                    f"decider of group {group!r} chose option {decisions.choice[bad][0]} on a "
                    f"menu of {len(menu.options)} options"
                )
            choice[request.agent_ids] = decisions.choice
            per_group[group] = (request.agent_ids, decisions)
        return choice, per_group

    def setup_llm_agents(self, on_progress=None) -> None:
        """Run every pending LLM agent setup now (otherwise the first round does it).

        ``on_progress(done, total)`` is called after each agent, so a caller can show progress
        during what is, with a slow model, the longest wait of a run.
        """
        deciders = [d for d in self.deciders.values() if isinstance(d, SetsUpAgents) and d.pending_setups]
        total = sum(d.pending_setups for d in deciders)
        if not total:
            return
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if on_progress is not None:
                on_progress(done, total)

        for decider in deciders:
            decider.on_agent_ready = tick

        async def gather() -> None:
            await gather_all(d.ensure_setup() for d in deciders)

        try:
            self.event_loop.run(gather())
        finally:
            for decider in deciders:
                decider.on_agent_ready = None

    def _run_async(self, requests, groups, talk: tuple[Menu, np.ndarray] | None = None) -> dict[str, Decisions]:
        async def gather() -> list[Decisions]:
            asked = requests
            if talk is not None and self.talk is not None:
                menu, pairs = talk
                asked = await self.talk.before_deciding(menu, pairs, requests, groups)
            return await gather_all(self.deciders[g].adecide(asked[g], self.decider_rngs[g]) for g in groups)

        return dict(zip(groups, self.event_loop.run(gather())))

    def pay(self, menu: Menu, pairs: np.ndarray, choice: np.ndarray) -> dict[str, np.ndarray]:
        """The game's payoffs of the round for every agent (zeros for idle agents), added to the totals."""
        outcome = self.game.payoffs(menu, pairs, choice, self.n_agents)
        self.state.cumulative_payoff += outcome["payoff"]
        self.state.n_games += outcome["n_played"]
        return outcome

    def remember(self, menu: Menu, pairs: np.ndarray, choice: np.ndarray, outcome: dict) -> None:
        """Push what partners gave into each agent's bounded history (means over partners; what
        counts as a partner is the game's: :meth:`hvae.simulation.games.Game.memory`)."""
        memory = self.game.memory(pairs, choice, outcome, self.n_agents)
        # a game whose memory is its outcome already summed what partners gave: the payoffs' "received"
        received = outcome["received"] if memory is outcome else None
        self.state.remember(pairs, choice, memory, self.round, received)

    # ------------------------------------------------------------------ lifecycle
    def run(self, rounds: int | None = None) -> None:
        """Play ``rounds`` rounds (default: the scenario's)."""
        for _ in range(self.scenario.rounds if rounds is None else rounds):
            self.step()

    def close(self) -> None:
        """Release deciders' resources and the event loop."""
        for decider in self.deciders.values():
            decider.close()
        if self.llm.pool is not None:
            self.event_loop.run(self.llm.aclose())
        self.event_loop.close()
