"""hvae: heterogeneous value alignment experiments in Python.

Populations of agents with Social Value Orientations (rule deciders or LLMs) play allocation games
on a network in a Mesa world; the analysis measures how well each agent's behaviour follows its
value and what the mix of values does over time. One screen is a whole experiment::

    import hvae

    sim = hvae.Simulation.from_yaml("oracle_population", rounds=12)   # a shipped scenario, or a path
    res = sim.run()                       # in memory; sim.run(out="runs/x") writes the run folder
    res.groups()                          # value rationality per group, beside chance and ceiling
    res.value_shares()                    # population share of each value category per round
    fig = res.plot.value_rationality()    # a matplotlib Figure

The names here are the whole public surface; everything else lives in the rooms (``hvae.agents``,
``hvae.scenarios``, ``hvae.simulation``, ``hvae.analysis``, ``hvae.experiments``, ``hvae.cli``).
"""

from __future__ import annotations

from importlib import metadata as _metadata

from hvae.api import Model, Results, Simulation, load_run, scenarios
from hvae.scenarios.schema import Group, Scenario

try:
    __version__: str = _metadata.version("hvae")  # one source: pyproject.toml's [project] version
except _metadata.PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["Group", "Model", "Results", "Scenario", "Simulation", "__version__", "load_run", "scenarios"]
