"""Reading a run folder: the only way analysis touches a run.

:class:`RunFolder` opens the files the run store wrote — consolidated tables or, for a run that
was killed before it could consolidate, its part files — so a finished, interrupted or copied run
can be analysed without the model code::

    run = RunFolder("runs/quickstart")
    run.status                 # 'complete'
    run.decisions()            # pandas DataFrame, one row per decision
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


def _read_parquet(path: Path) -> pa.Table:
    """One parquet file of a run folder; a garbage file is :class:`NotARunFolder` (one line), not a traceback."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise NotARunFolder(f"{path} is not a readable parquet table ({type(error).__name__})") from None


class RunFolder:
    """Read-only access to one run folder's files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "summary.json").is_file():
            raise NotARunFolder(f"{self.path} is not an hvae run folder (no summary.json)")

    @property
    def summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, nested too deep
            raise NotARunFolder(f"{path} is not readable JSON ({type(error).__name__})") from None
        if not isinstance(summary, dict):
            raise NotARunFolder(f"{path} is not a JSON object")
        return summary

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
            pieces.append(_read_parquet(whole))
        parts_dir = self.path / "parts" / name
        if parts_dir.is_dir():
            pieces.extend(_read_parquet(p) for p in sorted(parts_dir.glob("part-*.parquet")))
        if not pieces:
            raise NotARunFolder(f"{self.path} has no {name} table")
        if len(pieces) == 1:
            return pieces[0]
        return pa.concat_tables(pieces, promote_options="default")

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
