"""The sweep's execution: planned runs as dask.distributed tasks, with resume and failures.

:func:`run_sweep` plans the folders (complete runs are skipped, unfinished ones redone), starts a
local cluster or connects to a scheduler, runs :func:`execute_run` for every run on the workers,
and fills the results table (:mod:`hvae.experiments.sweep.results`) as runs finish; see
:mod:`hvae.experiments.sweep` for the whole story.
"""

from __future__ import annotations

from hvae.files.status import FINISHED
import json
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from hvae.agents.llm.secrets import redact_text
from hvae.experiments.sweep.results import SweepTable, run_metrics
from hvae.experiments.sweep.spec import PlannedRun, Sweep, validate_runs
from hvae.analysis.runfolder import MAX_SUMMARY_BYTES
from hvae.files.untrusted import read_regular
from hvae.scenarios.errors import ScenarioError
from hvae.scenarios.loader import load_scenario, read_text
from hvae.simulation.lock import FolderLock, check_unlocked
from hvae.simulation.progress import ProgressBar
from hvae.simulation.store import RunFolderError


DEFAULT_WORKERS = 2


#: How often a task may be on a worker that dies before it is failed (0: never retried).
ALLOWED_FAILURES = 0


def execute_run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one planned run in the current (worker) process; return its row of the table.

    ``task`` holds plain values only: ``scenario`` (path), ``overrides``, ``seed``, ``folder``.
    A run that raises is returned as ``failed`` with the error rather than raised.
    """
    from hvae.experiments.runs import run_to_folder

    folder = Path(task["folder"])
    if folder.exists() and _folder_status(folder) not in FINISHED:
        check_unlocked(folder)
        shutil.rmtree(folder)  # left by an earlier attempt on a worker that died
    error = None
    if not folder.exists():
        scenario = load_scenario(task["scenario"], task["overrides"], seed=task["seed"])
        try:
            run_to_folder(scenario, folder)
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


def _folder_status(folder: Path) -> str | None:
    try:
        return json.loads(read_regular(folder / "summary.json", "summary.json", MAX_SUMMARY_BYTES)).get("status")
    except (OSError, ValueError, AttributeError, RecursionError):  # UnsafeFile is a ValueError
        return None


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
        if _folder_status(folder) in FINISHED:
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
        found = yaml.safe_load(read_text(path))
    except (OSError, yaml.YAMLError, ScenarioError):
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
    table = SweepTable(sweep, out_dir)
    previous = table.previous_rows()
    summarise = []
    for run in skipped:  # a complete run's row is carried over; without one it is recomputed
        row = previous.get(run.run_id)
        if row is not None and row.get("status") in FINISHED:
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
    """With value dynamics, add ``invasion.parquet`` and the invasion figures to the sweep folder
    (final vs initial share, and, when the sweep varies one numeric parameter, final share against it)."""
    from hvae.analysis.invasion import invasion_by_parameter_plot, invasion_plot, invasion_table, numeric_parameters

    complete = [
        out_dir / run.run_id for run in sweep.runs
        if _folder_status(out_dir / run.run_id) in FINISHED
    ]
    with_dynamics = [
        folder for folder in complete
        if (yaml.safe_load(read_text(folder / "scenario.yaml")).get("dynamics") or {}).get("rule", "none") != "none"
    ]
    if not with_dynamics:
        return
    table = invasion_table(with_dynamics)
    params = {run.run_id: run.params for run in sweep.runs}
    for key in sweep.param_keys:
        column = [params.get(run_id, {}).get(key) for run_id in table["run"]] if len(table) else []
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in column):
            table[key] = column  # numeric parameters only: a mapping (a network section) is no column
    table.to_parquet(out_dir / "invasion.parquet", index=False)
    invasion_plot(table, out_dir / "figures")
    if len(sweep.param_keys) == 1:  # with several, one figure would mix the other parameters' runs
        for key in numeric_parameters(table, sweep.param_keys):
            invasion_by_parameter_plot(table, key, out_dir / "figures")


def _execute(sweep, work, out_dir, table, outcome, client, limit, progress, log) -> None:
    from distributed import as_completed

    if progress is None:
        progress = sys.stderr.isatty()
    log = log or (lambda line: click.echo(line, err=True))
    total = len(sweep.runs)
    done = total - len(work)
    bar = ProgressBar() if progress else None
    task = bar.add(f"sweep {sweep.name}", total=total, unit="runs", completed=done, note="[red]0 failed[/]") if bar else None
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
            if row["status"] in FINISHED:
                if not only_summarise:
                    outcome.ran += 1
            else:
                outcome.failed[run.run_id] = row.get("error") or row["status"]
            if bar is not None:
                bar.update(task, completed=done, note=f"[red]{len(outcome.failed)} failed[/]")
            else:
                log(f"[{done}/{total}] {run.run_id}: {row['status']}"
                    + (f" ({row['elapsed_s']:.1f} s)" if row.get("elapsed_s") is not None else "")
                    + (f": {row['error']}" if row["status"] not in FINISHED and row.get("error") else ""))
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
