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

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from hvae.files.untrusted import UnsafeFile, check_regular, one_line, read_regular

#: Largest ``summary.json`` and ``scenario.yaml`` read from a folder (bytes).
MAX_SUMMARY_BYTES = 64 << 20
MAX_SCENARIO_BYTES = 64 << 20


class NotARunFolder(ValueError):
    """The path is not an hvae run folder."""


def _read_parquet(path: Path) -> pa.Table:
    """One parquet file of a run folder; a garbage file is :class:`NotARunFolder` (one line), not a traceback."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise NotARunFolder(f"{path} is not a readable parquet table ({type(error).__name__})") from None


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
        """``summary.json`` (read each time: a live run rewrites it)."""
        path = self.path / "summary.json"
        try:
            data = json.loads(self._text("summary.json", MAX_SUMMARY_BYTES))
        except (ValueError, RecursionError) as error:  # not JSON, nested too deep
            raise NotARunFolder(f"{path}: not a readable JSON file ({one_line(error, 120)})") from None
        if not isinstance(data, dict):
            raise NotARunFolder(f"{path}: expected a JSON object, got {type(data).__name__}")
        return data

    def _text(self, name: str, max_bytes: int) -> str:
        """A file of the folder as text: a regular file of at most ``max_bytes`` (one-line error otherwise)."""
        try:
            return read_regular(self.path / name, name, max_bytes).decode("utf-8")
        except (UnsafeFile, OSError, UnicodeDecodeError) as error:
            raise NotARunFolder(f"{self.path / name}: cannot be read ({one_line(error, 160)})") from None

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @functools.cached_property
    def scenario(self) -> dict[str, Any]:
        """The resolved ``scenario.yaml``, parsed once per :class:`RunFolder` (it never changes)."""
        return yaml.safe_load(self._text("scenario.yaml", MAX_SCENARIO_BYTES))

    def table(self, name: str) -> pa.Table:
        """A table as pyarrow: the consolidated file plus any part files not yet merged."""
        pieces = []
        whole = self.path / f"{name}.parquet"
        parts_dir = self.path / "parts" / name
        paths = [whole] if whole.exists() else []
        paths += sorted(parts_dir.glob("part-*.parquet")) if parts_dir.is_dir() else []
        for path in paths:
            try:
                check_regular(path, f"{name} table file")
            except UnsafeFile as error:  # a FIFO would hang the reader, a device exhaust it
                raise NotARunFolder(str(error)) from None
            pieces.append(_read_parquet(path))
        if not pieces:
            raise NotARunFolder(f"{self.path} has no {name} table")
        if len(pieces) == 1:
            return pieces[0]
        return pa.concat_tables(pieces, promote_options="default")
