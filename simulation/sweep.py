"""Parameter sweeps: one scenario, many overrides and seeds, run in parallel on dask.distributed.

A **sweep file** (YAML) names a base scenario and the runs to make from it::

    name: competition_by_graph           # letters, digits, _.- (not only dots); default --out is runs/<name>
    description: share of competitive agents x graph family
    scenario: sweep_base                 # a path relative to this file, or a shipped scenario's name
    seeds: [1, 2]                        # every run point is played once per seed
    overrides:                           # optional: --set style changes applied to every run
      rounds: 24
    runs:                                # optional: explicit points, each a mapping of overrides
      - {population.0.share: 0.75, population.1.share: 0.25}
      - {population.0.share: 0.5, population.1.share: 0.5}
    grid:                                # optional: key path -> list of values (cartesian product)
      network:
        - {kind: watts_strogatz, k: 4, p: 0.1}
        - {kind: grid, rows: 5, cols: 8}
      matching: [random, all_edges]

Keys are the ``--set`` key paths of ``hvae run`` (``population.0.share``, ``network.kind``, list
entries by index) and values are YAML values (a whole section may be replaced by a mapping).
The points are ``runs × grid`` (either alone if the other is missing; one point with neither),
each played for every seed: ``len(runs) × Π len(grid values) × len(seeds)`` runs. Overrides apply
in the order ``overrides``, then the ``runs`` entry, then the grid point; a key may not be set by
both ``runs`` and ``grid``, and the seed comes only from ``seeds``.

Each run gets a deterministic folder under the sweep's output folder, named from its position,
parameters and seed (sanitised to ``[A-Za-z0-9._=+-]``)::

    runs/competition_by_graph/
        sweep.yaml                       the sweep file as given
        sweep.parquet, sweep.csv         one row per run (rewritten atomically as runs finish)
        run-0000_population.0.share=0.75_population.1.share=0.25_network=watts_strogatz-k4-p0.1_matching=random_seed=1/
        run-0001_..._seed=2/             ordinary hvae run folders (see hvae.simulation.store)

**Execution.** Every run's scenario is loaded and validated first, so a bad value fails at once
(one line naming the sweep file's line, exit status 2) before any folder is made. Then each run
is a dask.distributed task: a ``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)``
by default, or an existing cluster given by its scheduler address. A task carries only the
scenario's path, its overrides and the seed; the worker loads the scenario, runs it into its
folder with :func:`~hvae.simulation.runner.run_scenario` and sends back a small dict of headline
figures (status, mean payoff overall and per value category in the last round, final Gini of
cumulative payoffs, decision VR overall and per group, decisions, elapsed seconds). The aggregate
table gets one row per run: the parameters, ``seed``, ``status`` (``complete``, ``failed``,
``pending`` …), ``skipped`` (already complete before this sweep started), ``error``, the
figures, ``worker`` and ``run_folder``.

**One writer.** The sweep holds the output folder's lock (:mod:`hvae.simulation.lock`) while it
runs, and each run holds its own run folder's: a second ``hvae sweep`` into the same folder is
refused with one line naming the holder, and a run folder another process is still writing is
never deleted or rerun.

**Re-running** the same sweep into the same folder skips every run whose folder says
``complete`` (its row is carried over) and redoes the others (the unfinished folder is deleted
first). A complete folder whose resolved scenario differs from what the sweep now asks for is an
error: the sweep file changed, so choose another ``--out``. Folder names start with the run's
position, so adding seeds or values to a sweep renumbers (and reruns) the runs after them: extend
a finished sweep into a new ``--out`` folder. Ctrl-C cancels the sweep (exit status 130); the
table keeps the finished rows and the interrupted runs are redone next time.

**Failures.** A run that raises is reported ``failed`` with the error; a worker process that dies
mid-run (killed, out of memory, crashed) fails that run with the reason instead of retrying it
(the local scheduler is started with ``allowed-failures: 0``; for your own scheduler set
``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES``). The sweep always finishes, writes the table,
lists the failed runs and exits with status 1.

From Python::

    from hvae.simulation.sweep import load_sweep, run_sweep
    outcome = run_sweep(load_sweep("scenarios/sweep_example.yaml"), "runs/example", workers=2)
    outcome.table        # pandas DataFrame, as in sweep.parquet
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hvae.scenarios.loader import (
    ScenarioError,
    format_validation_error,
    _line_of,
    dump_scenario,
    load_scenario,
    read_yaml,
    resolve_scenario_path,
)
from hvae.agents.llm.secrets import redact_text, strip_credentials
from hvae.scenarios.schema import SafeName
from hvae.simulation.lock import FolderLock, check_unlocked
from hvae.simulation.store import RunFolderError

TABLE_NAME = "sweep"
DEFAULT_WORKERS = 2
#: How often a task may be on a worker that dies before it is failed (0: never retried).
ALLOWED_FAILURES = 0

_KEY_PATH = re.compile(r"^[^\s=.]+(\.[^\s=.]+)*$")


# ---------------------------------------------------------------------------------- sweep file
class SweepFile(BaseModel):
    """The sweep file's schema (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    name: SafeName
    description: str = ""
    scenario: str = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"must be unique, repeated: {', '.join(map(str, repeated))}")
        return seeds

    @field_validator("overrides", "grid")
    @classmethod
    def _key_paths(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        _check_keys(mapping)
        return mapping

    @field_validator("runs")
    @classmethod
    def _run_key_paths(cls, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for entry in runs:
            if not entry:
                raise ValueError("a runs entry needs at least one key path: value")
            _check_keys(entry)
        return runs

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [key for key, values in grid.items() if not values]
        if empty:
            raise ValueError(f"grid key {empty[0]!r} has no values")
        return grid

    @model_validator(mode="after")
    def _no_clashes(self) -> SweepFile:
        run_keys = {key for entry in self.runs for key in entry}
        both = sorted(run_keys & set(self.grid))
        if both:
            raise ValueError(f"{both[0]!r} is set by both runs and grid")
        return self


def _check_keys(mapping: dict[str, Any]) -> None:
    for key in mapping:
        if not isinstance(key, str) or not _KEY_PATH.match(key):
            raise ValueError(f"{key!r} is not a key path like rounds or population.0.share")
        if key == "seed":
            raise ValueError("the seed is set by 'seeds', not by an override")


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: where it goes and how its scenario is made."""

    index: int
    run_id: str
    params: dict[str, Any]  # key path -> value (the runs entry and the grid point)
    seed: int
    overrides: tuple[str, ...]  # --set strings, global overrides first


@dataclass
class Sweep:
    """A loaded sweep file: its settings, the base scenario's path and every planned run."""

    config: SweepFile
    path: Path
    scenario_path: Path
    runs: list[PlannedRun]
    text: str = ""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def param_keys(self) -> list[str]:
        keys = [key for entry in self.config.runs for key in entry]
        return list(dict.fromkeys([*keys, *self.config.grid]))


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (a path, or a sweep shipped in ``scenarios/`` by name) and
    expand it into runs (the scenarios are not loaded yet).

    Raises:
        ScenarioError: one line, ``file:line: key.path: message``.
    """
    path = Path(path)
    if not path.exists():
        path = resolve_scenario_path(path)  # a sweep file shipped in scenarios/, e.g. sweep_example
    data, node = read_yaml(path)
    try:
        config = SweepFile.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_format_error(error, str(path), node)) from None
    scenario_path = _resolve_base(config.scenario, path, node)
    return Sweep(config, path, scenario_path, list(expand(config)), path.read_text(encoding="utf-8"))


def _resolve_base(name: str, sweep_path: Path, node: yaml.Node | None) -> Path:
    relative = sweep_path.parent / name
    if relative.is_file():
        return relative.resolve()
    try:
        return resolve_scenario_path(name).resolve()
    except ScenarioError:
        line = _line_of(node, ("scenario",))
        where = f"{sweep_path}:{line}" if line else str(sweep_path)
        raise ScenarioError(
            f"{where}: scenario: {name!r} is neither a file next to the sweep file nor a shipped scenario"
        ) from None


def _format_error(error: ValidationError, source: str, node: yaml.Node | None) -> str:
    return format_validation_error(error, source, node, what="sweep")


def expand(config: SweepFile) -> Iterator[PlannedRun]:
    """Every run of the sweep, in a fixed order: runs entry, then grid point, then seed."""
    entries = config.runs or [{}]
    keys = list(config.grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*config.grid.values())]
    base = tuple(override_string(k, v) for k, v in config.overrides.items())
    index = 0
    for entry in entries:
        for point in points:
            params = {**entry, **point}
            overrides = base + tuple(override_string(k, v) for k, v in params.items())
            for seed in config.seeds:
                yield PlannedRun(index, run_id(index, params, seed), params, seed, overrides)
                index += 1


def override_string(key: str, value: Any) -> str:
    """``key=value`` with the value written as JSON (which the ``--set`` parser reads as YAML)."""
    return f"{key}={json.dumps(value, sort_keys=False)}"


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_MAX_PART = 48


def value_label(value: Any) -> str:
    """A short readable label of a parameter value (``{kind: grid, rows: 5}`` → ``grid-rows5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, dict):
        parts = [value_label(value["kind"])] if "kind" in value else []
        parts += [f"{k}{value_label(v)}" for k, v in value.items() if k != "kind"]
        return "-".join(parts)
    if isinstance(value, (list, tuple)):
        return "-".join(value_label(v) for v in value)
    return strip_credentials(str(value))  # a base_url's password never becomes a folder name


def _safe(text: str) -> str:
    text = _UNSAFE.sub("-", text).strip("-") or "x"
    if len(text) > _MAX_PART:
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        text = f"{text[: _MAX_PART - 7]}~{digest}".replace("~", "-")
    return text


def run_id(index: int, params: dict[str, Any], seed: int) -> str:
    """``run-0007_competitors.share=0.5_network=grid-rows5-cols8_seed=2`` (deterministic)."""
    parts = [f"run-{index:04d}"]
    parts += [f"{_safe(key)}={_safe(value_label(value))}" for key, value in params.items()]
    parts.append(f"seed={seed}")
    return "_".join(parts)


# ---------------------------------------------------------------------------------- validation
def validate_runs(sweep: Sweep) -> dict[str, str]:
    """Load every run's scenario; return the resolved scenario YAML per run id.

    Raises:
        ScenarioError: the first run whose scenario is invalid, pointing at the sweep file's line
            of the value that breaks it when one value alone does.
    """
    resolved: dict[str, str] = {}
    base_checked = False
    for run in sweep.runs:
        try:
            scenario = load_scenario(sweep.scenario_path, run.overrides, seed=run.seed)
        except ScenarioError as error:
            if not base_checked:
                load_scenario(sweep.scenario_path)  # a broken base scenario is reported as it is
            raise ScenarioError(_blame(sweep, run, error)) from None
        base_checked = True
        resolved[run.run_id] = dump_scenario(scenario)
    return resolved


def _blame(sweep: Sweep, run: PlannedRun, error: ScenarioError) -> str:
    """One line for a run whose scenario is invalid, at the sweep file's line of the culprit value."""
    _, node = read_yaml(sweep.path)
    config = sweep.config
    base = [override_string(k, v) for k, v in config.overrides.items()]
    candidates: list[tuple[tuple[Any, ...], str, Any, list[str]]] = [
        (("overrides", key), key, value, [override_string(key, value)]) for key, value in config.overrides.items()
    ]
    for number, entry in enumerate(config.runs):
        if all(run.params.get(k) == v for k, v in entry.items()):
            candidates += [(("runs", number, k), k, v, [*base, override_string(k, v)]) for k, v in entry.items()]
            break
    for key, values in config.grid.items():
        position = values.index(run.params[key])
        candidates.append((("grid", key, position), key, run.params[key], [*base, override_string(key, run.params[key])]))
    for loc, key, value, overrides in candidates:
        try:
            load_scenario(sweep.scenario_path, overrides)
        except ScenarioError as alone:
            line = _line_of(node, loc)
            where = f"{sweep.path}:{line}" if line else str(sweep.path)
            section = ".".join(map(str, loc[:-1])) if loc[0] == "runs" else loc[0]
            return f"{where}: {section}: {key}={value_label(value)} does not fit the scenario: {alone}"
    return f"{sweep.path}: run {run.run_id}: {error}"


# ---------------------------------------------------------------------------------- the task
def execute_run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one planned run in the current (worker) process; return its row of the table.

    ``task`` holds plain values only: ``scenario`` (path), ``overrides``, ``seed``, ``folder``.
    A run that raises is returned as ``failed`` with the error rather than raised.
    """
    from hvae.simulation.runner import run_scenario

    folder = Path(task["folder"])
    if folder.exists() and _folder_status(folder) != "complete":
        check_unlocked(folder)
        shutil.rmtree(folder)  # left by an earlier attempt on a worker that died
    error = None
    if not folder.exists():
        scenario = load_scenario(task["scenario"], task["overrides"], seed=task["seed"])
        try:
            run_scenario(scenario, folder)
        except Exception as exc:  # noqa: BLE001 - reported in the row; the folder says failed too
            error = f"{type(exc).__name__}: {exc}"
    row = run_metrics(folder)
    if error and not row.get("error"):
        row["error"] = error
    row["worker"] = _worker_address()
    return row


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


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
        if row["status"] == "complete":
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


def _folder_status(folder: Path) -> str | None:
    try:
        return json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------- the sweep
@dataclass
class SweepOutcome:
    """What a sweep did: the aggregate table and the ids of the runs that failed."""

    table: Any  # pandas DataFrame
    out_dir: Path
    failed: dict[str, str] = field(default_factory=dict)  # run id -> reason
    ran: int = 0
    skipped: int = 0
    elapsed_s: float = 0.0


def plan_folders(sweep: Sweep, out_dir: Path, resolved: dict[str, str]) -> tuple[list[PlannedRun], list[PlannedRun], list[Path]]:
    """Split runs into (to run, skipped) and list unfinished folders to delete; nothing is changed.

    Raises:
        RunFolderError: a complete folder holds a different scenario than the sweep asks for.
    """
    todo, skipped, stale = [], [], []
    for run in sweep.runs:
        folder = out_dir / run.run_id
        if not folder.exists():
            todo.append(run)
            continue
        if _folder_status(folder) == "complete":
            if not _same_scenario(folder / "scenario.yaml", resolved[run.run_id]):
                raise RunFolderError(
                    f"{folder} is a complete run of a different scenario (did the sweep file or its "
                    "scenario change?); choose another --out folder or remove it"
                )
            skipped.append(run)
        else:
            check_unlocked(folder)  # a run another process is still writing is never deleted
            stale.append(folder)
            todo.append(run)
    return todo, skipped, stale


def _same_scenario(path: Path, expected: str) -> bool:
    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return _covers(yaml.safe_load(expected), found)


def _covers(expected: Any, found: Any) -> bool:
    # keys that the folder lacks (defaults added by a newer hvae) do not count as differences
    if isinstance(expected, dict) and isinstance(found, dict):
        return all(k not in found or _covers(v, found[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(found, list):
        return len(expected) == len(found) and all(map(_covers, expected, found))
    return expected == found


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    *,
    workers: int = DEFAULT_WORKERS,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Validate, then run every unfinished run of ``sweep`` into ``out_dir``; return the outcome.

    ``client`` (a ``distributed.Client``) is used as it is; else ``scheduler`` is connected to;
    else a local cluster of ``workers`` processes is started and closed. ``progress`` shows a
    rich bar on stderr (default: when stderr is a terminal); otherwise ``log`` (default: stderr)
    gets one line per finished run.

    The sweep folder is locked for as long as the sweep writes it (see
    :mod:`hvae.simulation.lock`): a second sweep into the same folder is refused.

    Raises:
        ScenarioError: a run's scenario is invalid (nothing was written).
        RunFolderError: the output folder holds runs this sweep would not make, or another
            process is writing it (:class:`~hvae.simulation.lock.FolderLocked`).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"{out_dir} exists and is not a folder; choose another --out folder")
    resolved = validate_runs(sweep)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"cannot create sweep folder {out_dir}: {error.strerror}") from None
    try:
        lock = FolderLock.acquire(out_dir, "sweep")  # one sweep writes a folder at a time
    except BaseException:
        _remove_if_empty(out_dir, created)
        raise
    try:
        return _run_locked(sweep, out_dir, resolved, started, workers, scheduler, client, progress, log)
    finally:
        lock.release()
        _remove_if_empty(out_dir, created)  # e.g. the scheduler could not be reached: nothing was written


def _remove_if_empty(folder: Path, created: bool) -> None:
    if created:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            pass


def _run_locked(sweep, out_dir, resolved, started, workers, scheduler, client, progress, log) -> SweepOutcome:
    todo, skipped, stale = plan_folders(sweep, out_dir, resolved)
    table = _Table(sweep, out_dir)
    previous = table.previous_rows()
    summarise = []
    for run in skipped:  # a complete run's row is carried over; without one it is recomputed
        row = previous.get(run.run_id)
        if row is not None and row.get("status") == "complete":
            table.set(run, {**row, "skipped": True})
        else:
            summarise.append(run)
    work = [(run, False) for run in todo] + [(run, True) for run in summarise]

    outcome = SweepOutcome(table=None, out_dir=out_dir, skipped=len(skipped))
    owned: list[Any] = []
    try:
        # On our own local cluster, tasks are handed out one per worker as workers free up, so a
        # worker that dies takes only the run it was running with it (tasks already sent to a
        # worker count as its victims too). A cluster given by address gets every task at once
        # (its scheduler queues them, and an adaptive cluster scales on that queue).
        limit = workers if client is None and not scheduler else None
        if work:
            client = client or _connect(workers, scheduler, owned)  # before anything is written
        for folder in stale:
            shutil.rmtree(folder)
        (out_dir / "sweep.yaml").write_text(redact_text(sweep.text), encoding="utf-8")
        table.write()
        if work:
            _execute(sweep, work, out_dir, table, outcome, client, limit, progress, log)
    finally:
        for thing in reversed(owned):
            _quietly_close(thing)
    outcome.table = table.frame()
    _write_invasion(sweep, out_dir, outcome)
    outcome.elapsed_s = time.perf_counter() - started
    return outcome


def _write_invasion(sweep: Sweep, out_dir: Path, outcome: SweepOutcome) -> None:
    """With value dynamics, add ``invasion.parquet`` and the invasion figure to the sweep folder."""
    from hvae.analysis.invasion import invasion_plot, invasion_table

    complete = [
        out_dir / run.run_id for run in sweep.runs
        if _folder_status(out_dir / run.run_id) == "complete"
    ]
    with_dynamics = [
        folder for folder in complete
        if (yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8")).get("dynamics") or {}).get("rule", "none") != "none"
    ]
    if not with_dynamics:
        return
    table = invasion_table(with_dynamics)
    table.to_parquet(out_dir / "invasion.parquet", index=False)
    invasion_plot(table, out_dir / "figures")


def _execute(sweep, work, out_dir, table, outcome, client, limit, progress, log) -> None:
    from distributed import as_completed

    if progress is None:
        progress = sys.stderr.isatty()
    log = log or (lambda line: click.echo(line, err=True))
    total = len(sweep.runs)
    done = total - len(work)
    bar = _Progress(sweep.name, total, done) if progress else None
    token = uuid.uuid4().hex[:8]
    futures: dict[Any, tuple[PlannedRun, bool]] = {}
    try:
        waiting = list(work)

        def submit(run: PlannedRun, only_summarise: bool) -> Any:
            task = {
                "scenario": str(sweep.scenario_path), "overrides": list(run.overrides), "seed": run.seed,
                "folder": str(out_dir / run.run_id),
            }
            function = _summarise if only_summarise else execute_run
            future = client.submit(function, task, key=f"hvae-{run.run_id}-{token}", pure=False)
            futures[future] = (run, only_summarise)
            return future

        first = waiting[: limit or len(waiting)]
        del waiting[: len(first)]
        running = as_completed([submit(*item) for item in first])
        for future in running:
            if waiting:
                running.add(submit(*waiting.pop(0)))
            run, only_summarise = futures[future]
            try:
                row = future.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # noqa: BLE001 - the worker died or the task broke
                row = {"status": "failed", "error": _reason(error)}
            row["skipped"] = only_summarise
            table.set(run, row)
            table.write()
            done += 1
            if row["status"] == "complete":
                if not only_summarise:
                    outcome.ran += 1
            else:
                outcome.failed[run.run_id] = row.get("error") or row["status"]
            if bar is not None:
                bar.update(done, len(outcome.failed))
            else:
                log(f"[{done}/{total}] {run.run_id}: {row['status']}"
                    + (f" ({row['elapsed_s']:.1f} s)" if row.get("elapsed_s") is not None else "")
                    + (f": {row['error']}" if row["status"] != "complete" and row.get("error") else ""))
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
        if bar is not None:
            bar.stop()
        table.write()


def _summarise(task: dict[str, Any]) -> dict[str, Any]:
    row = run_metrics(task["folder"])
    row["worker"] = _worker_address()
    return row


def _reason(error: BaseException) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        worker = getattr(error.last_worker, "address", error.last_worker)
        return f"the worker process died while running it (killed, out of memory or crashed; worker {worker})"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _connect(workers: int, scheduler: str | None, owned: list[Any]) -> Any:
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise RunFolderError(f"--scheduler {scheduler}: cannot connect ({error})") from None
        owned.append(client)
        return client
    with dask.config.set({
        "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
        # one task per single-threaded worker: a worker that dies takes only its running task with it
        "distributed.scheduler.worker-saturation": 1.0,
    }):
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.CRITICAL,
            # no dashboard; the scheduler's HTTP endpoints on a free port (8787 may be taken)
            scheduler_kwargs={"dashboard_address": ":0", "allowed_failures": ALLOWED_FAILURES},
        )
        owned.append(cluster)
        client = Client(cluster)
        owned.append(client)
    client.register_plugin(_IgnoreCtrlC(), name="hvae-ignore-sigint")
    return client


def _ignore_sigint() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _IgnoreCtrlC() -> Any:  # noqa: N802 - a class made on demand (importing distributed is slow)
    """Local workers ignore Ctrl-C (the terminal sends it to them too): the sweep process handles it,
    cancels the runs and closes the cluster, instead of every worker printing a traceback."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class IgnoreCtrlC(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            _ignore_sigint()

    return IgnoreCtrlC()


def _quietly_close(thing: Any) -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        thing.close()
    except Exception:  # noqa: BLE001 - shutting down; nothing useful to report
        pass


class _Progress:
    def __init__(self, name: str, total: int, done: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn(f"[bold]sweep {name}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
            TextColumn("[red]{task.fields[failed]} failed[/]"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task("sweep", total=total, completed=done, failed=0)
        self.progress.start()

    def update(self, done: int, failed: int) -> None:
        self.progress.update(self.task, completed=done, failed=failed)

    def stop(self) -> None:
        self.progress.stop()


class _Table:
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
            rows[str(record["run_id"])] = {
                k: v for k, v in record.items() if k in keep and not (isinstance(v, float) and math.isnan(v))
            }
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
        return frame.sort_values("index", kind="stable").reset_index(drop=True)

    def write(self) -> None:
        import pyarrow as pa

        from hvae.simulation.store import write_parquet_atomic

        frame = self.frame()
        for column in ("error", "worker"):
            frame[column] = frame[column].astype("string")
        write_parquet_atomic(pa.Table.from_pandas(frame, preserve_index=False), self.out_dir / f"{TABLE_NAME}.parquet")
        csv = self.out_dir / f"{TABLE_NAME}.csv"
        tmp = csv.with_name(f".{csv.name}.tmp")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, csv)


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


# ---------------------------------------------------------------------------------- the command
def _friendly(func: Callable) -> Callable:
    """The CLI's ``friendly_errors``, looked up when the command runs (no import cycle with cli)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from hvae.simulation.cli import friendly_errors

        return friendly_errors(func)(*args, **kwargs)

    return wrapper


@click.command("sweep")
@click.argument("sweep_file", metavar="SWEEP.yaml", type=click.Path(path_type=Path))
@click.option("--workers", type=click.IntRange(min=1), help=f"Local worker processes (default {DEFAULT_WORKERS}).")
@click.option("--scheduler", metavar="ADDRESS", help="Use a running dask scheduler, e.g. tcp://host:8786.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Sweep folder (default runs/<sweep name>).")
@_friendly
def sweep(sweep_file: Path, workers: int | None, scheduler: str | None, out_dir: Path | None) -> None:
    """Run every run of a sweep file (a grid and/or list of overrides × seeds) on dask workers.

    Runs already complete in the sweep folder are skipped, unfinished ones are redone. Writes
    one row per run to sweep.parquet and sweep.csv; exits 1 if any run failed.
    """
    from hvae.simulation.cli import UserError

    if workers is not None and scheduler:
        raise UserError("--workers and --scheduler cannot be used together")
    loaded = load_sweep(sweep_file)
    out_dir = out_dir or Path("runs") / loaded.name
    outcome = run_sweep(loaded, out_dir, workers=workers or DEFAULT_WORKERS, scheduler=scheduler)
    table = out_dir / f"{TABLE_NAME}.parquet"
    click.echo(
        f"sweep {loaded.name}: {len(loaded.runs)} runs ({outcome.ran} ran, {outcome.skipped} skipped, "
        f"{len(outcome.failed)} failed) in {outcome.elapsed_s:.1f} s; table: {table}"
    )
    if outcome.failed:
        click.echo(f"hvae: {len(outcome.failed)} of {len(loaded.runs)} runs failed:", err=True)
        for run_name, reason in outcome.failed.items():
            click.echo(f"  {run_name}: {reason}", err=True)
        sys.exit(1)
