"""Run data: what every analysis, figure and report function reads, from a folder or from memory.

The analysis never needs to know where a run lives. It reads a run through the :class:`RunData`
protocol — its tables by name, its resolved scenario and its summary — which two classes satisfy:

- :class:`~hvae.analysis.runfolder.RunFolder`: a run folder on disk (the archive; ``hvae run``);
- :class:`MemoryRun`: a run played in memory (``hvae.Simulation(...).run()`` without ``out``),
  holding the same tables as pyarrow tables and the same ``scenario.yaml`` / ``summary.json`` texts
  the folder would hold, so both give the same numbers.

Functions that take a run accept either, or a path to a folder (:func:`as_run`)::

    from hvae.analysis.population import per_round
    per_round("runs/demo")                      # a folder
    per_round(hvae.Simulation.from_yaml("oracle_population").run().run)   # memory

A new kind of run data (a database, a remote store) needs only the members of :class:`RunData`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import yaml

from hvae.analysis.runfolder import NotARunFolder, RunFolder, RunTables

__all__ = ["MemoryRun", "MissingTable", "RunData", "as_run", "is_run"]


class MissingTable(NotARunFolder):
    """The run has no table of that name (a run without talk has no ``messages``)."""


class RunData(Protocol):
    """One run's data, wherever it is kept: tables by name, the resolved scenario, the summary."""

    @property
    def label(self) -> str:
        """Where the run is, for messages and reports (a folder's path, or ``in memory: ...``)."""
        ...

    @property
    def summary(self) -> dict[str, Any]:
        """``summary.json``: status, seed, counts, versions."""
        ...

    @property
    def status(self) -> str:
        """``complete``, ``interrupted``, ``failed`` or ``running``."""
        ...

    @property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario as plain data (``scenario.yaml``)."""
        ...

    def has_table(self, name: str) -> bool:
        """Whether the run has table ``name`` (``decisions``, ``rounds``, ``agents``, ``messages`` ...)."""
        ...

    def table(self, name: str) -> pa.Table:
        """Table ``name`` as pyarrow (raises :class:`~hvae.analysis.runfolder.NotARunFolder` if absent)."""
        ...

    def frame(self, name: str) -> pd.DataFrame:
        """Table ``name`` as a pandas DataFrame."""
        ...

    def decisions(self) -> pd.DataFrame: ...

    def rounds(self) -> pd.DataFrame: ...

    def agents(self) -> pd.DataFrame: ...

    def menus(self) -> pd.DataFrame: ...


_MEMBERS = ("label", "summary", "status", "scenario", "has_table", "table", "frame", "decisions", "rounds", "agents", "menus")


def is_run(obj: object) -> bool:
    """Whether ``obj`` has every member of :class:`RunData` (checked on its class: nothing is read)."""
    return all(hasattr(type(obj), member) for member in _MEMBERS)


def as_run(run: RunData | str | Path) -> RunData:
    """Accept run data, or the path of a run folder (opened as a :class:`RunFolder`)."""
    if is_run(run):
        return run  # type: ignore[return-value]
    if isinstance(run, (str, Path)):
        return RunFolder(run)
    raise TypeError(f"expected run data (a RunFolder, a MemoryRun) or a run folder's path, got {type(run).__name__}")


class MemoryRun(RunTables):
    """A run held in memory: the texts and tables its run folder would hold, without the folder.

    Built from a :class:`~hvae.simulation.store.MemoryStore`'s ``texts`` and ``tables`` (by
    :func:`hvae.experiments.runs.run_in_memory`); ``scenario`` and ``summary`` are parsed from the
    same YAML and JSON texts a folder's files hold, so they compare equal to a folder's.

    >>> run = MemoryRun({"summary.json": '{"status": "complete", "seed": 3}', "scenario.yaml": "name: t"},
    ...                 {"rounds": pa.table({"round": [0, 1]})})
    >>> run.status, run.scenario["name"], len(run.rounds()), run.has_table("messages")
    ('complete', 't', 2, False)
    """

    def __init__(self, texts: Mapping[str, str], tables: Mapping[str, pa.Table]) -> None:
        self.texts = dict(texts)
        self.tables = dict(tables)
        for name in ("summary.json", "scenario.yaml"):
            if name not in self.texts:
                raise ValueError(f"run data in memory needs {name}")

    @property
    def label(self) -> str:
        return f"in memory: {self.scenario.get('name', '?')}, seed {self.summary.get('seed')}"

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.texts["summary.json"])

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @property
    def scenario(self) -> dict[str, Any]:
        return yaml.safe_load(self.texts["scenario.yaml"])

    def has_table(self, name: str) -> bool:
        return name in self.tables

    def table(self, name: str) -> pa.Table:
        if name not in self.tables:
            raise MissingTable(f"{self.label} has no {name} table")
        return self.tables[name]

    def __repr__(self) -> str:
        return f"MemoryRun({self.label!r}, tables={sorted(self.tables)})"
