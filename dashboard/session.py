"""One dashboard session: the controls, the model they build, and what the page shows of it.

This module knows nothing about the browser. A :class:`Controls` holds what the page's sidebar
sets (population shares and size, network family, update rule and strength, menus, seed);
:func:`build_scenario` turns the scenario the dashboard was started with plus those controls into
a validated :class:`~hvae.scenarios.schema.Scenario` — through the same validation as
``hvae run``, so a bad parameter is the same one-line message a user would get on the command
line. The typed fields are read by :func:`parse_control` first (a number, finite, whole where it
must be), and the population is at most :data:`DASHBOARD_MAX_AGENTS`. A :class:`DashboardSession` owns the :class:`~hvae.simulation.model.HvaeModel` built from
it, plays rounds (:meth:`DashboardSession.advance`, called from a worker thread by the page, so
the page stays responsive while a round's LLM calls are in flight) and keeps a :class:`View` —
an immutable snapshot of the figures — that the page draws::

    from hvae.scenarios.loader import load_scenario
    session = DashboardSession(load_scenario("oracle_population"))
    session.advance(6)
    session.view.round                     # 6
    session.view.vr_by_group               # decision VR per group, beside chance and ceiling

The run is not written anywhere: a dashboard is for looking; ``hvae run`` makes the run folder.
The model's row buffer (:class:`~hvae.simulation.records.RoundLog`) is drained after every round
into the session's own running figures, so a long session does not grow without bound beyond the
per-round population figures.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from hvae.agents.plugins import GAMES, RULES
from hvae.analysis.palette import group_colors
from hvae.analysis.rationality import decision_scores
from hvae.scenarios.errors import ScenarioError
from hvae.scenarios.loader import validate_data
from hvae.scenarios.schema import DEFAULT_SELECTION_STRENGTH, Scenario
from hvae.simulation.model import HvaeModel
from hvae.simulation.static_tables import menus_table

#: Network families the page offers, with the parameters a family gets when it is picked on the
#: page (the scenario's own parameters are kept when its family is picked again).
NETWORK_DEFAULTS: dict[str, dict[str, Any]] = {
    "complete": {"kind": "complete"},
    "ring_lattice": {"kind": "ring_lattice", "k": 4},
    "watts_strogatz": {"kind": "watts_strogatz", "k": 4, "p": 0.1},
    "barabasi_albert": {"kind": "barabasi_albert", "m": 2},
    "erdos_renyi": {"kind": "erdos_renyi", "p": 0.2},
}
#: Menu kinds the page offers — every registered game (hvae.agents.plugins) — with their defaults
#: (the scenario's own menus are kept likewise).
MENU_DEFAULTS: dict[str, dict[str, Any]] = {
    entry.kind: {"kind": entry.kind, **getattr(entry.config, "default_section", {})} for entry in GAMES
}
UPDATE_RULES = tuple(RULES.kinds())
#: The page redraws its figures at most once per this many agents' worth of decisions: populations
#: up to this size redraw every round, larger ones every ``ceil(n / REDRAW_AGENTS)`` rounds.
REDRAW_AGENTS = 200
#: Rows of the latest round's decisions the page lists.
LATEST_ROWS = 12
#: The largest population the page builds (it draws every agent of the network each redraw); ``hvae
#: run`` takes up to :data:`hvae.agents.limits.MAX_AGENTS`.
DASHBOARD_MAX_AGENTS = 5_000
#: The page's typed fields: control name → (label on the page, number type).
NUMBER_FIELDS: dict[str, tuple[str, type]] = {
    "size": ("population size", int),
    "strength": ("update strength", float),
    "every": ("update every (rounds)", int),
    "seed": ("seed", int),
}


def default_strength(rule: str) -> float:
    """The scenario schema's default strength for an update rule (a step for ``influence``)."""
    entry = RULES.get(rule)
    default = entry.config.model_fields["strength"].default if entry is not None else None
    return float(default) if isinstance(default, (int, float)) else DEFAULT_SELECTION_STRENGTH


def default_redraw_every(n_agents: int) -> int:
    """Rounds between redraws for a population of ``n_agents`` (1 up to :data:`REDRAW_AGENTS`)."""
    return max(1, math.ceil(n_agents / REDRAW_AGENTS))


@dataclass(frozen=True)
class Controls:
    """What the page's sidebar sets. ``shares`` are weights per scenario group (0 leaves a group out)."""

    shares: dict[str, float]
    size: int
    network: str
    rule: str
    strength: float
    every: int
    menus: str
    seed: int

    @classmethod
    def of(cls, scenario: Scenario) -> Controls:
        """The controls that reproduce ``scenario`` as it is."""
        counts = scenario.group_counts()
        n = sum(counts.values())
        return cls(
            shares={name: count / n for name, count in counts.items()},
            size=n,
            network=scenario.network.kind,
            rule=scenario.dynamics.rule,
            strength=scenario.dynamics.strength,
            every=scenario.dynamics.every,
            menus=scenario.menus.kind,
            seed=scenario.seed,
        )

    def with_rule(self, rule: str) -> Controls:
        """A new update rule, with that rule's default strength."""
        return replace(self, rule=rule, strength=default_strength(rule))


def parse_control(name: str, text: str) -> int | float:
    """The number typed into the field ``name`` (see :data:`NUMBER_FIELDS`), or a one-line :class:`ScenarioError`.

    Only the reading is checked here (a number, finite, whole where it must be); ranges are the
    scenario schema's, checked by :func:`build_scenario`. ``nan`` and ``inf`` never reach the
    controls: a value that is not equal to itself would make the page redraw without end.
    """
    label, kind = NUMBER_FIELDS[name]
    raw = str(text).strip()
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    try:
        value = float(raw)
    except ValueError:
        raise ScenarioError(f"dashboard: {label}: {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise ScenarioError(f"dashboard: {label}: {shown!r} is not a finite number")
    if kind is int:
        if value != int(value) or not raw.lstrip("+-").isdigit():
            raise ScenarioError(f"dashboard: {label}: {shown!r} is not a whole number")
        return int(raw)
    return value


def build_scenario(base: Scenario, controls: Controls) -> Scenario:
    """``base`` changed by ``controls``, validated like a scenario file (raises :class:`ScenarioError`).

    Only what the controls change is rewritten: unchanged shares and size keep the groups' own
    counts, and a network family or menu kind that is the scenario's own keeps its parameters.
    """
    if not 0 < controls.size <= DASHBOARD_MAX_AGENTS:
        raise ScenarioError(f"dashboard: population size must be between 1 and {DASHBOARD_MAX_AGENTS:,} (got {controls.size})")
    data = base.model_dump(mode="json", exclude_none=True)
    unchanged = Controls.of(base)
    if controls.shares != unchanged.shares or controls.size != unchanged.size:
        for name, share in controls.shares.items():
            if not (isinstance(share, (int, float)) and math.isfinite(share) and share >= 0):
                raise ScenarioError(f"dashboard: share of group {name!r} must be a number ≥ 0 (got {share!r})")
        groups = []
        for group in data["population"]:
            share = controls.shares.get(group["name"], 0.0)
            if share > 0:
                group = {key: value for key, value in group.items() if key not in ("count", "share")}
                groups.append({**group, "share": share})
        if not groups:
            raise ScenarioError("dashboard: every group has share 0; give at least one group a share above 0")
        total = sum(group["share"] for group in groups)
        for group in groups:
            group["share"] = group["share"] / total
        data["population"] = groups
        data["size"] = controls.size
    if controls.network != base.network.kind:
        if controls.network not in NETWORK_DEFAULTS:
            raise ScenarioError(f"dashboard: unknown network family {controls.network!r}")
        data["network"] = dict(NETWORK_DEFAULTS[controls.network])
    if controls.menus != base.menus.kind:
        if controls.menus not in MENU_DEFAULTS:
            raise ScenarioError(f"dashboard: unknown menu kind {controls.menus!r}")
        data["menus"] = dict(MENU_DEFAULTS[controls.menus])
    data["dynamics"] = {
        **data.get("dynamics", {}), "rule": controls.rule, "strength": controls.strength, "every": controls.every,
    }
    data["seed"] = controls.seed
    try:
        return validate_data(data, "dashboard")
    except (OverflowError, MemoryError, ValueError, TypeError) as error:  # never a raw exception on the page
        if isinstance(error, ScenarioError):
            raise
        raise ScenarioError(f"dashboard: the parameters cannot make a scenario ({type(error).__name__})") from None


@dataclass(frozen=True, eq=False)
class View:
    """What the page shows after a round: plain data, safe to read while the next round is played."""

    round: int
    n_agents: int
    group_names: list[str]
    theta: np.ndarray  # value angle per agent (node)
    group_code: np.ndarray
    edges: np.ndarray
    shares: pd.DataFrame  # round × value category → share of the population (rows after each round)
    mean_payoff: pd.DataFrame  # round × group → mean payoff of the round
    vr_by_group: pd.DataFrame  # group → decision_vr, chance_vr, ceiling_vr, n (scored decisions)
    latest: pd.DataFrame  # the latest round's decisions (first LATEST_ROWS rows)
    group_colors: dict[str, str] = field(default_factory=dict)  # group → colour (analysis.palette.group_colors)
    llm_calls: int = 0
    model_key: int = 0  # which session's model this is a view of (the network layout is kept per model)


@dataclass
class _Totals:
    """Running sums for decision VR per group (figure, chance and ceiling over the same decisions)."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)  # group → [vr, chance, ceiling, n]

    def add(self, decisions: pd.DataFrame, scores: pd.DataFrame) -> None:
        scored = scores["decision_vr"].notna()
        frame = pd.concat([decisions.loc[scored, ["group"]], scores.loc[scored]], axis=1)
        for group, rows in frame.groupby("group", observed=True):
            add = np.array([rows["decision_vr"].sum(), rows["chance_vr"].sum(), rows["ceiling_vr"].sum(), len(rows)])
            self.sums[str(group)] = self.sums.get(str(group), np.zeros(4)) + add

    def table(self, groups: list[str]) -> pd.DataFrame:
        rows = []
        for group in groups:
            vr, chance, ceiling, n = self.sums.get(group, np.zeros(4))
            defined = n > 0
            rows.append({
                "group": group,
                "decision_vr": vr / n if defined else np.nan,
                "chance_vr": chance / n if defined else np.nan,
                "ceiling_vr": ceiling / n if defined else np.nan,
                "n": int(n),
            })
        return pd.DataFrame(rows, columns=["group", "decision_vr", "chance_vr", "ceiling_vr", "n"])


_MODEL_KEYS = itertools.count(1)

LATEST_COLUMNS = ["round", "agent_id", "group", "value_angle", "partner_id", "menu_id", "choice", "self_amount", "other_amount", "payoff", "valid"]


class DashboardSession:
    """A model built from a scenario, played round by round for the page.

    Args:
        scenario: the validated scenario (after the page's controls).
        model_factory: builds the model (tests pass one with scripted deciders).
    """

    def __init__(self, scenario: Scenario, model_factory: Callable[[Scenario], HvaeModel] = HvaeModel) -> None:
        self.scenario = scenario
        self.model = model_factory(scenario)
        self.key = next(_MODEL_KEYS)
        self.lock = threading.Lock()  # one round at a time; held while a round is played
        self.redraw_every = default_redraw_every(self.model.n_agents)
        self._menus = menus_table(self.model).to_pandas()
        self._totals = _Totals()
        self._shares: list[dict[str, Any]] = []
        self._payoffs: list[dict[str, Any]] = []
        self._latest = pd.DataFrame(columns=LATEST_COLUMNS)
        self._record_shares(self.model.round)
        self.view = self._snapshot()

    @property
    def round(self) -> int:
        return self.model.round

    @property
    def finished(self) -> bool:
        """Whether the scenario's ``rounds`` have been played (``--set rounds=N`` plays longer)."""
        return self.model.round >= self.scenario.rounds

    def advance(self, rounds: int = 1, keep_going: Callable[[], bool] = lambda: True,
                on_round: Callable[[int], None] | None = None) -> View:
        """Play up to ``rounds`` rounds (stopping early when ``keep_going()`` turns false); new view.

        Blocks for as long as the rounds take (LLM calls included): call it from a worker thread.
        The view is refreshed once, at the end; ``on_round(round)`` is called after each round.
        """
        with self.lock:
            for _ in range(rounds):
                if self.finished or not keep_going():
                    break
                self.model.step()
                self._absorb()
                if on_round is not None:
                    on_round(self.round)
            self.view = self._snapshot()
        return self.view

    def close(self) -> None:
        """Release the model's deciders (LLM worker processes, clients) once no round is running."""
        with self.lock:
            self.model.close()

    # ------------------------------------------------------------------ internals
    def _absorb(self) -> None:
        """Drain the round's rows into the running figures."""
        tables = self.model.log.drain()
        decisions = tables["decisions"].to_pandas()
        rounds = tables["rounds"].to_pandas()
        if len(decisions):
            self._totals.add(decisions, decision_scores(decisions, self._menus))
            latest_round = decisions["round"].max()
            latest = decisions.loc[decisions["round"] == latest_round, LATEST_COLUMNS]
            self._latest = latest.head(LATEST_ROWS).reset_index(drop=True)
        by_group = rounds[rounds["grouping"] == "group"]
        for round_index, rows in by_group.groupby("round"):
            self._payoffs.append({"round": int(round_index) + 1, **dict(zip(rows["group"], rows["mean_payoff"]))})
        self._record_shares(self.model.round)

    def _record_shares(self, round_index: int) -> None:
        # Shares of the value categories held now (after the round and any value update).
        names = self.model.value_categories
        counts = pd.Series(names).value_counts()
        self._shares.append({"round": round_index, **(counts / len(names)).to_dict()})

    def _snapshot(self) -> View:
        model = self.model
        return View(
            round=model.round,
            n_agents=model.n_agents,
            group_names=list(model.group_names),
            theta=model.state.theta.copy(),
            group_code=model.state.group_code.copy(),
            edges=model.edges.copy(),
            shares=pd.DataFrame(self._shares).set_index("round").fillna(0.0),
            mean_payoff=pd.DataFrame(self._payoffs).set_index("round") if self._payoffs else pd.DataFrame(),
            vr_by_group=self._totals.table(model.group_names),
            latest=self._latest.copy(),
            group_colors=group_colors({
                name: model.initial_theta[model.state.group_code == code] for code, name in enumerate(model.group_names)
            }),
            llm_calls=_llm_calls(model),
            model_key=self.key,
        )


def _llm_calls(model: HvaeModel) -> int:
    """LLM calls made so far, over all backends (0 without LLM groups)."""
    if model.llm_pool is None:
        return 0
    return int(sum(report.get("calls", 0) for report in model.llm_pool.health_reports().values()))
