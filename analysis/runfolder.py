"""Reading a run folder: the only way analysis touches a run.

:class:`RunFolder` opens the files the run store wrote — consolidated tables or, for a run that
was killed before it could consolidate, its part files — so a finished, interrupted or copied run
can be analysed without the model code::

    run = RunFolder("runs/quickstart")
    run.status                 # 'complete'
    run.decisions()            # pandas DataFrame, one row per decision

A run folder is one kind of :class:`~hvae.analysis.rundata.RunData`; a run played in memory
(:class:`~hvae.analysis.rundata.MemoryRun`) is the other, and the analysis reads both alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml


class NotARunFolder(ValueError):
    """The path is not an hvae run folder."""


class RunTables:
    """Tables as DataFrames, from :meth:`table`: shared by a run folder and a run in memory."""

    def table(self, name: str) -> pa.Table:
        raise NotImplementedError

    def frame(self, name: str) -> pd.DataFrame:
        """A table as a pandas DataFrame (dictionary columns become categoricals)."""
        return self.table(name).to_pandas()

    def decisions(self) -> pd.DataFrame:
        return self.frame("decisions")

    def rounds(self) -> pd.DataFrame:
        return self.frame("rounds")

    def agents(self) -> pd.DataFrame:
        return self.frame("agents")

    def menus(self) -> pd.DataFrame:
        return self.frame("menus")


class RunFolder(RunTables):
    """Read-only access to one run folder's files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "summary.json").is_file():
            raise NotARunFolder(f"{self.path} is not an hvae run folder (no summary.json)")

    @property
    def label(self) -> str:
        """The folder's path, for messages and reports."""
        return str(self.path)

    def has_table(self, name: str) -> bool:
        """Whether the folder has table ``name`` (consolidated or as part files)."""
        return (self.path / f"{name}.parquet").is_file() or (self.path / "parts" / name).is_dir()

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.path / "summary.json").read_text(encoding="utf-8"))

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @property
    def scenario(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / "scenario.yaml").read_text(encoding="utf-8"))

    def table(self, name: str) -> pa.Table:
        """A table as pyarrow: the consolidated file plus any part files not yet merged."""
        pieces = []
        whole = self.path / f"{name}.parquet"
        if whole.is_file():
            pieces.append(pq.read_table(whole))
        parts_dir = self.path / "parts" / name
        if parts_dir.is_dir():
            pieces.extend(pq.read_table(p) for p in sorted(parts_dir.glob("part-*.parquet")))
        if not pieces:
            raise NotARunFolder(f"{self.path} has no {name} table")
        if len(pieces) == 1:
            return pieces[0]
        return pa.concat_tables(pieces, promote_options="default")
