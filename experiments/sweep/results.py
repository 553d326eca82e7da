"""The sweep's results: one row of headline figures per run, and the aggregate table.

:func:`run_metrics` reads a finished run folder (status, payoffs, Gini, decision VR overall and
per group) into one row; :class:`SweepTable` holds one row per planned run and rewrites
``sweep.parquet`` and ``sweep.csv`` atomically as runs finish, carrying over the rows of runs that
were already complete; credentials in parameter values (a ``base_url``'s password) are masked.
"""

from __future__ import annotations

from hvae.files.status import FINISHED
import json
import math
from pathlib import Path
from typing import Any

from hvae.agents.llm.secrets import redact_text
from hvae.experiments.sweep.spec import PlannedRun, Sweep
from hvae.files.atomic import replaced_atomically


TABLE_NAME = "sweep"


def run_metrics(folder: str | Path) -> dict[str, Any]:
    """Headline figures of a run folder (complete or not): status, payoffs, Gini, decision VR."""
    from hvae.analysis.runfolder import NotARunFolder, RunFolder

    try:
        run = RunFolder(folder)
    except NotARunFolder:
        return {"status": "failed", "error": f"{folder} has no summary.json"}
    summary = run.summary
    row: dict[str, Any] = {
        "status": summary.get("status", "unknown"),
        "error": summary.get("error"),
        "rounds_completed": summary.get("rounds_completed"),
        "n_agents": summary.get("n_agents"),
        "n_decisions": summary.get("n_decisions"),
        "elapsed_s": summary.get("elapsed_s"),
    }
    try:
        row.update(_figures(run))
    except Exception as exc:  # noqa: BLE001 - a partial folder may lack tables; keep the row
        if row["status"] in FINISHED:
            row["error"] = f"figures: {type(exc).__name__}: {exc}"
    return row


def _figures(run: Any) -> dict[str, Any]:
    import pandas as pd

    from hvae.analysis.rationality import decision_scores

    figures: dict[str, Any] = {}
    rounds = run.rounds()
    last = rounds[rounds["round"] == rounds["round"].max()]
    everyone = last[last["grouping"] == "all"]
    if len(everyone):
        figures["mean_payoff"] = float(everyone["mean_payoff"].iloc[0])
        figures["mean_cumulative_payoff"] = float(everyone["mean_cumulative_payoff"].iloc[0])
        figures["gini"] = float(everyone["gini_cumulative_payoff"].iloc[0])
    for _, category in last[last["grouping"] == "category"].iterrows():
        figures[f"mean_payoff[{category['group']}]"] = float(category["mean_payoff"])
    decisions = run.decisions()
    scores = decision_scores(decisions, run.menus())
    per_agent = pd.DataFrame(
        {"agent_id": decisions["agent_id"].to_numpy(), "group": decisions["group"].astype(str).to_numpy(),
         "vr": scores["decision_vr"].to_numpy()}
    ).groupby(["group", "agent_id"], sort=False)["vr"].mean()
    figures["decision_vr"] = float(per_agent.mean()) if len(per_agent) else math.nan
    for group, vr in per_agent.groupby(level="group", sort=False).mean().items():
        figures[f"decision_vr[{group}]"] = float(vr)
    return figures


class SweepTable:
    """The aggregate table, one row per planned run, rewritten atomically as parquet and CSV."""

    FRONT = ("run_id", "index")
    BACK = ("seed", "status", "skipped", "error")
    TAIL = ("worker", "run_folder")

    def __init__(self, sweep: Sweep, out_dir: Path) -> None:
        self.sweep = sweep
        self.out_dir = out_dir
        self.rows: dict[str, dict[str, Any]] = {
            run.run_id: self._base(run) | {"status": "pending", "skipped": False} for run in sweep.runs
        }

    def _base(self, run: PlannedRun) -> dict[str, Any]:
        params = {key: _redacted(value) for key, value in run.params.items()}
        return {"run_id": run.run_id, "index": run.index, **params, "seed": run.seed,
                "run_folder": str(self.out_dir / run.run_id)}

    def set(self, run: PlannedRun, row: dict[str, Any]) -> None:
        self.rows[run.run_id] = {**row, **self._base(run)}

    def previous_rows(self) -> dict[str, dict[str, Any]]:
        import pandas as pd

        path = self.out_dir / f"{TABLE_NAME}.parquet"
        if not path.is_file():
            return {}
        try:
            frame = pd.read_parquet(path)
        except Exception:  # noqa: BLE001 - an unreadable old table is just recomputed
            return {}
        keep = set(frame.columns) - set(self.sweep.param_keys)  # parameters come from the plan
        rows = {}
        for record in frame.to_dict("records"):
            rows[str(record["run_id"])] = {k: v for k, v in record.items() if k in keep and not _missing(v)}
        return rows

    def frame(self) -> Any:
        import pandas as pd

        frame = pd.DataFrame(list(self.rows.values()))
        params = [k for k in self.sweep.param_keys if k in frame.columns]
        for key in params:
            frame[key] = _plain_column(frame[key])
        fixed = [*self.FRONT, *params, *self.BACK]
        metrics = [c for c in frame.columns if c not in fixed and c not in self.TAIL]
        frame = frame.reindex(columns=[*fixed, *metrics, *self.TAIL])
        frame["skipped"] = frame["skipped"].fillna(False).astype(bool)
        for column in COUNT_COLUMNS:
            if column in frame.columns:
                frame[column] = _counts(frame[column])
        return frame.sort_values("index", kind="stable").reset_index(drop=True)

    def write(self) -> None:
        import pyarrow as pa

        from hvae.simulation.store import write_parquet_atomic

        frame = self.frame()
        for column in ("error", "worker"):
            frame[column] = frame[column].astype("string")
        write_parquet_atomic(pa.Table.from_pandas(frame, preserve_index=False), self.out_dir / f"{TABLE_NAME}.parquet")
        with replaced_atomically(self.out_dir / f"{TABLE_NAME}.csv") as tmp:
            frame.to_csv(tmp, index=False)


#: Columns of whole numbers: kept integer (nullable) when runs are pending or a sweep resumes.
COUNT_COLUMNS = ("index", "seed", "rounds_completed", "n_agents", "n_decisions")


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _counts(column: Any) -> Any:
    """A column of whole numbers (some missing) as pandas' nullable ``Int64``; other columns unchanged."""
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce")
    present = values.dropna()
    if present.size != column.notna().sum() or not bool((present % 1 == 0).all()):
        return column
    return values.astype("Int64")


def _redacted(value: Any) -> Any:
    """A parameter value with credentials in URLs masked (for the table)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _plain_column(column: Any) -> Any:
    """Keep a column of simple scalars of one kind; anything else becomes JSON text."""
    values = list(column)
    kinds = {bool if isinstance(v, bool) else (float if isinstance(v, (int, float)) else type(v)) for v in values}
    if len(kinds) == 1 and kinds <= {bool, float, str}:
        return column
    return column.map(lambda v: v if isinstance(v, str) else json.dumps(v))
