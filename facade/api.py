"""The Python API: build a population, run it (in memory or into a run folder), read and plot it.

Three objects carry an experiment, the same pipeline as ``hvae run`` (scenario → model → run data →
analysis), without leaving Python:

- :class:`Simulation` holds a validated :class:`~hvae.scenarios.schema.Scenario`, read from YAML
  (:meth:`Simulation.from_yaml`) or built from Python objects (:meth:`Simulation.build`: groups,
  network, menus, dynamics — the same pydantic models the YAML validates into).
- :meth:`Simulation.run` plays it and returns :class:`Results`: in memory (no folder at all), or
  into a run folder — the archive, exactly as ``hvae run`` writes it — with ``out=``.
- :class:`Results` reads one run or several seeds through the analysis layer's data protocol
  (:mod:`hvae.analysis.rundata`), so a folder and memory give the same numbers: tables as pandas
  DataFrames, per-group value rationality beside chance and ceiling, and ``res.plot.<figure>()``
  returning matplotlib Figures.

Mesa users step by hand: ``sim.model`` is a :class:`Model` (an
:class:`~hvae.simulation.model.HvaeModel` with Mesa's ``DataCollector``)::

    >>> import hvae
    >>> sim = hvae.Simulation.build(
    ...     name="pair", rounds=6, seed=1, network={"kind": "complete"},
    ...     population=[hvae.Group(name="givers", count=3, value="altruistic", decider="oracle"),
    ...                 hvae.Group(name="takers", count=3, value="competitive", decider="oracle")])
    >>> model = sim.model
    >>> for _ in range(3):
    ...     model.step()
    >>> model.datacollector.get_model_vars_dataframe()["round"].tolist()
    [1, 2, 3]
    >>> sorted({a.value_category for a in model.agents})
    ['altruistic', 'competitive']
    >>> res = sim.run()                   # a fresh model, all 6 rounds, in memory
    >>> sorted(res.decisions["round"].unique().tolist())
    [0, 1, 2, 3, 4, 5]
    >>> res.groups()[["group", "n_agents"]].values.tolist()
    [['givers', 3], ['takers', 3]]
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import mesa
import pandas as pd
import yaml
from matplotlib.figure import Figure

from hvae.agents.deciders import Decider
from hvae.agents.svo import CATEGORY_ORDER, categories
from hvae.analysis import population
from hvae.analysis.dataset import Analysis
from hvae.analysis.plots import FIGURES, make_figures
from hvae.analysis.report import write_report
from hvae.analysis.rundata import RunData, as_run
from hvae.analysis.runfolder import RunFolder
from hvae.analysis.summary import group_summary
from hvae.experiments.runs import run_in_memory, run_to_folder
from hvae.scenarios.loader import load_scenario, shipped_scenarios, validate_data
from hvae.scenarios.schema import Scenario
from hvae.simulation.model import HvaeModel
from hvae.simulation.records import gini

__all__ = ["Model", "Plots", "Results", "Simulation", "load_run", "scenarios"]


def _share(category: str) -> Callable[[HvaeModel], float]:
    return lambda model: float((categories(model.state.theta) == category).mean())


#: Model variables collected after every round (``model.datacollector.get_model_vars_dataframe()``).
MODEL_REPORTERS: dict[str, Callable[[HvaeModel], Any]] = {
    "round": lambda model: model.round,
    "total_payoff": lambda model: float(model.state.cumulative_payoff.sum()),
    "gini_cumulative_payoff": lambda model: gini(model.state.cumulative_payoff),
    "mean_value_angle": lambda model: float(model.state.theta.mean()),
    **{f"share_{name}": _share(name) for name in CATEGORY_ORDER},
}
#: Agent variables collected after every round (``get_agent_vars_dataframe()``, by step and agent).
AGENT_REPORTERS = {
    "agent_id": "agent_id",
    "group": "group",
    "value_angle": "value_angle",
    "value_category": "value_category",
    "cumulative_payoff": "cumulative_payoff",
}


class Model(HvaeModel):
    """:class:`~hvae.simulation.model.HvaeModel` with Mesa's ``DataCollector``, collected after each round.

    ``model.agents`` are :class:`~hvae.simulation.agent.SVOAgent` objects with ``value_angle``,
    ``value_category``, ``cumulative_payoff`` and ``group``; ``model.datacollector`` gives
    :data:`MODEL_REPORTERS` (one row per round played) and :data:`AGENT_REPORTERS` (one row per
    round and agent) as DataFrames. The rounds played are the same as :class:`HvaeModel`'s.
    """

    def __init__(self, scenario: Scenario, **options: Any) -> None:
        super().__init__(scenario, **options)
        self.datacollector = mesa.DataCollector(model_reporters=MODEL_REPORTERS, agent_reporters=AGENT_REPORTERS)

    def step(self) -> None:
        """Play one round, then collect the model and agent variables."""
        super().step()
        self.datacollector.collect(self)


class Simulation:
    """A scenario ready to run: from YAML, from Python objects, or from a :class:`Scenario`.

    Args:
        scenario: a validated scenario (see :meth:`from_yaml` and :meth:`build` for the usual ways).
        deciders: your own deciders by group name (:class:`~hvae.agents.deciders.Decider`
            subclasses), replacing the decider the scenario names for that group; each model sets
            the same instance up again. A run folder records the scenario's decider, so such a run
            is not resumable from its folder.
    """

    def __init__(self, scenario: Scenario, deciders: dict[str, Decider] | None = None) -> None:
        if not isinstance(scenario, Scenario):
            raise TypeError(f"Simulation needs a hvae.Scenario, got {type(scenario).__name__}; see Simulation.build / from_yaml")
        unknown = sorted(set(deciders or {}) - {group.name for group in scenario.population})
        if unknown:
            raise ValueError(f"deciders given for groups the scenario does not have: {', '.join(unknown)}")
        self.scenario = scenario
        self.deciders = dict(deciders or {})
        self._model: Model | None = None

    @classmethod
    def from_yaml(
        cls, name_or_path: str | Path, overrides: Iterable[str] = (), *, deciders: dict[str, Decider] | None = None, **settings: Any
    ) -> Simulation:
        """A shipped scenario's name or a YAML file, with overrides.

        ``overrides`` are ``key.path=value`` strings as ``hvae run --set`` takes them; ``settings``
        replace top-level keys (``rounds=96``, ``seed=3``, ``network={"kind": "complete"}``). Bad
        input raises :class:`~hvae.scenarios.loader.ScenarioError` with one line saying where.

        >>> Simulation.from_yaml("oracle_population", rounds=12, seed=3).scenario.rounds
        12
        """
        extra = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
        return cls(load_scenario(name_or_path, [*overrides, *extra]), deciders)

    @classmethod
    def build(cls, *, deciders: dict[str, Decider] | None = None, **fields: Any) -> Simulation:
        """A scenario from Python objects: the keys of a scenario file as keyword arguments.

        Values may be the schema's objects (:class:`~hvae.scenarios.schema.Group`, a network or
        menus model) or plain dicts and strings, exactly as in YAML; the whole is validated as a
        file is (:class:`~hvae.scenarios.loader.ScenarioError` on bad input).

        >>> sim = Simulation.build(name="tiny", rounds=2, population=[
        ...     {"name": "a", "count": 2, "value": 45, "decider": "oracle"}])
        >>> sim.scenario.network.kind, sim.scenario.menus.kind
        ('complete', 'slider')
        """
        return cls(validate_data(dict(fields), "<python>"), deciders)

    @property
    def model(self) -> Model:
        """The model to step by hand (built on first use, then kept): ``sim.model.step()``.

        :meth:`run` always plays a fresh model from round 0, so it is unaffected by hand steps.
        """
        if self._model is None:
            self._model = self.new_model()
        return self._model

    def new_model(self) -> Model:
        """A fresh model at round 0 (with this simulation's own deciders, if any)."""
        return Model(self.scenario, deciders=self.deciders or None)

    def run(self, out: str | Path | None = None, *, progress: bool = False) -> Results:
        """Play every round of a fresh model: in memory, or into the new run folder ``out``.

        The folder is the one ``hvae run`` writes (locked while written, checkpointed, resumable
        with ``hvae run --resume``); in memory nothing touches the disk. Either way the returned
        :class:`Results` read the same numbers.
        """
        model = self.new_model()
        if out is None:
            return Results(run_in_memory(self.scenario, model=model, progress=progress), models=[model])
        result = run_to_folder(self.scenario, out, model=model, progress=progress)
        return Results(RunFolder(result.path), models=[model])

    def run_seeds(self, seeds: Iterable[int], out: str | Path | None = None, *, progress: bool = False) -> Results:
        """Run once per seed (``out/seed-<seed>`` folders when ``out`` is given); :class:`Results` over all."""
        runs: list[RunData] = []
        models: list[Model] = []
        for seed in seeds:
            one = Simulation(self.scenario.model_copy(update={"seed": int(seed)}), self.deciders)
            res = one.run(None if out is None else Path(out) / f"seed-{seed}", progress=progress)
            runs += res.runs
            models += res.models
        return Results(runs, models=models)

    def __repr__(self) -> str:
        return f"Simulation({self.scenario.name!r}, {self.scenario.n_agents} agents, {self.scenario.rounds} rounds)"


class Results:
    """One run, or several seeds of one scenario, read through :mod:`hvae.analysis.rundata`.

    Tables are pandas DataFrames (several runs: stacked, with a ``seed`` column); the measures come
    from :mod:`hvae.analysis` with the same definitions as ``hvae report``; ``plot`` draws its
    figures (:class:`Plots`).

    Args:
        runs: run data (a :class:`~hvae.analysis.runfolder.RunFolder`, a
            :class:`~hvae.analysis.rundata.MemoryRun`), a run folder's path, or several of them.
        models: the models that played the runs (their ``datacollector``), when known.
    """

    def __init__(self, runs: RunData | str | Path | Sequence[RunData | str | Path], models: Sequence[Model] = ()) -> None:
        items = [runs] if isinstance(runs, (str, Path)) or not isinstance(runs, Sequence) else list(runs)
        if not items:
            raise ValueError("Results needs at least one run")
        self.runs: list[RunData] = [as_run(item) for item in items]
        self.models = list(models)

    # ------------------------------------------------------------------ the run(s)
    @property
    def run(self) -> RunData:
        """The run's data (the first run's, for several seeds)."""
        return self.runs[0]

    @property
    def model(self) -> Model | None:
        """The model that played the (first) run, with its ``datacollector``; None for a loaded folder."""
        return self.models[0] if self.models else None

    @property
    def summary(self) -> dict[str, Any]:
        return self.run.summary

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def scenario(self) -> dict[str, Any]:
        return self.run.scenario

    # ------------------------------------------------------------------ tables
    def frame(self, name: str) -> pd.DataFrame:
        """Table ``name`` (``decisions``, ``rounds``, ``agents``, ``menus``, ``network``, ...)."""
        if len(self.runs) == 1:
            return self.run.frame(name)
        return pd.concat([r.frame(name).assign(seed=r.summary.get("seed")) for r in self.runs], ignore_index=True)

    @property
    def decisions(self) -> pd.DataFrame:
        """One row per decision: round, agent, menu, choice, payoffs, validity."""
        return self.frame("decisions")

    @property
    def rounds(self) -> pd.DataFrame:
        """Per round and group / category / all: payoffs, welfare, Gini, shares."""
        return self.frame("rounds")

    @property
    def agents(self) -> pd.DataFrame:
        """One row per agent: group, decider, value, final payoff."""
        return self.frame("agents")

    # ------------------------------------------------------------------ measures
    def groups(self) -> pd.DataFrame:
        """Per group: value rationality beside chance and ceiling, revealed angle, payoffs (``hvae summary``)."""
        if len(self.runs) == 1:
            return group_summary(self.run)
        return pd.concat([group_summary(r).assign(seed=r.summary.get("seed")) for r in self.runs], ignore_index=True)

    def value_shares(self, by: population.Grouping = "value_category") -> pd.DataFrame:
        """Share of each value category (or group) per round; several seeds: the mean over seeds."""
        if len(self.runs) == 1:
            return population.value_shares(self.run, by)
        return self.analysis.shares if by == "value_category" else self.per_round(by).pivot(index="round", columns="group", values="share")

    def per_round(self, by: population.Grouping | str = "group") -> pd.DataFrame:
        """Per round and group (``by="all"``: the whole population): payoff, welfare, Gini, share.

        Several seeds: the mean with a 95% t-interval over seeds (``<metric>_low`` / ``_high``).
        """
        if len(self.runs) == 1:
            return population.per_round(self.run, by)  # type: ignore[arg-type]
        return population.per_round_across_seeds(self.runs, by)  # type: ignore[arg-type]

    @cached_property
    def analysis(self) -> Analysis:
        """The figures' data, computed once (:class:`~hvae.analysis.dataset.Analysis`)."""
        return Analysis.of(self.runs)

    # ------------------------------------------------------------------ outputs
    @property
    def plot(self) -> Plots:
        """The figures of ``hvae report`` as matplotlib Figures: ``res.plot.value_shares()``."""
        return Plots(self)

    def report(self, out: str | Path) -> Path:
        """Write the self-contained HTML report (``hvae report``) to ``out``; return its path."""
        return write_report(self.runs, out)

    def save_figures(self, out_dir: str | Path) -> list[Path]:
        """Save every figure that has data as PNG and SVG under ``out_dir``; return the paths."""
        return make_figures(self.runs, out_dir, analysis=self.analysis)

    def __repr__(self) -> str:
        name = self.scenario.get("name", "?")
        seeds = ", ".join(str(r.summary.get("seed")) for r in self.runs)
        return f"Results({name!r}, {'seed' if len(self.runs) == 1 else 'seeds'} {seeds}, {self.status})"


class Plots:
    """The report's figures, one method each, returning a matplotlib ``Figure``.

    The methods are the figures of :data:`hvae.analysis.plots.FIGURES`: ``value_rationality``,
    ``svo_ring``, ``revealed_drift``, ``payoff_by_group``, ``welfare``, ``gini``, ``value_shares``,
    ``pair_payoffs``, ``network``. A figure without data in the run (no value shares when every
    decider ignores its value) raises ``ValueError``. Several seeds: means with 95% bands.
    """

    def __init__(self, results: Results) -> None:
        self._results = results

    def __dir__(self) -> list[str]:
        return [stem for stem, _build, _caption in FIGURES]

    def __getattr__(self, name: str) -> Callable[[], Figure]:
        builders = {stem: build for stem, build, _caption in FIGURES}
        if name not in builders:
            raise AttributeError(f"no figure {name!r}; the figures are: {', '.join(builders)}")
        return functools.partial(self._draw, name, builders[name])

    def _draw(self, name: str, build: Callable[[Analysis], Figure | None]) -> Figure:
        figure = build(self._results.analysis)
        if figure is None:
            raise ValueError(f"the run has no data for the {name} figure")
        return figure


def load_run(*paths: str | Path) -> Results:
    """:class:`Results` of one run folder, or of several seeds of one scenario."""
    return Results([RunFolder(path) for path in paths])


def scenarios() -> dict[str, str]:
    """The shipped scenarios (name → description) that :meth:`Simulation.from_yaml` takes by name.

    >>> "oracle_population" in scenarios()
    True
    """
    out = {}
    for name, path in sorted(shipped_scenarios().items()):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "scenario" not in data:  # a sweep file names a base scenario; it is run by `hvae sweep`
            out[name] = str(data.get("description", ""))
    return out
