"""The runner: scenario → model → rounds → run folder (or memory).

:func:`play_scenario` builds the model, writes the static files (resolved scenario, agents, menus,
network), plays the rounds with a progress bar, appends rows to the store every
``output.flush_every`` rounds and keeps ``summary.json`` current, so at any moment the folder says
how far the run got. However the run ends — finished, Ctrl-C, or an error — the status is written
(``complete``, ``interrupted``, ``failed``) and the part files are consolidated; only a
``complete`` run is ever marked complete. After every flush the model is checkpointed
(:mod:`hvae.simulation.checkpoint`), so :func:`resume_run` continues an interrupted, failed or
killed run exactly where its last checkpoint left it. The run folder is locked
(:mod:`hvae.simulation.lock`) for as long as a run or a resume writes it. A dead LLM backend
(:class:`~hvae.agents.llm.health.BackendUnavailable`) stops the run as ``failed``, like any
error. Ctrl-C stops after the current round (a second Ctrl-C stops at once)::

    from hvae.scenarios.loader import load_scenario
    result = play_scenario(load_scenario("oracle_population"), "runs/demo")
    result.summary["status"]   # 'complete'

With ``out_dir=None`` the same rounds are played into a :class:`~hvae.simulation.store.MemoryStore`
instead: no folder, no lock, no checkpoint (nothing to resume), no transcript file;
``result.store`` holds the texts and tables a folder would hold.

The simulation does not analyse its own output: the per-group table (``groups.parquet``) that
``hvae run`` leaves in every completed folder is written by a ``write_groups`` callable handed in
from above — :func:`hvae.experiments.runs.run_to_folder` passes the analysis layer's writer, and is
the function to call for a run folder exactly as ``hvae run`` makes it.
"""

from __future__ import annotations

import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from hvae.agents.deciders import KeepsAccounts
from hvae.agents.llm.backends import BackendUnavailable
from hvae.agents.llm.health import valid_share_warning
from hvae.files.status import COMPLETE, COMPLETE_WITH_WARNINGS, FINISHED
from hvae.agents.llm.secrets import redact_text
from hvae.files.untrusted import one_line
from hvae.scenarios.loader import dump_scenario
from hvae.scenarios.schema import Scenario
from hvae.simulation.model import HvaeModel
from hvae.simulation.progress import ProgressBar
from hvae.simulation.records import OPTIONAL_TABLES, TABLE_SCHEMAS
from hvae.simulation.static_tables import agents_table, menus_table, network_table
from hvae.simulation import checkpoint
from hvae.simulation.credentials import check_backends_trusted, check_credentials_restored, redacted_fields
from hvae.simulation.inputs import check_inputs_unchanged, input_fingerprints
from hvae.simulation.store import MemoryStore, RunFolderError, RunStore

RoundCallback = Callable[[HvaeModel], None]
#: Writes derived tables into a completed run folder, under its lock, before it is marked complete.
FolderWriter = Callable[[Path], object]


@dataclass
class RunResult:
    """Where a run was written and how it ended (``path`` is None for a run played in memory)."""

    path: Path | None
    summary: dict[str, Any]
    store: MemoryStore | None = None  # the in-memory run's texts and tables


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("hvae", "mesa", "numpy", "pandas", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


class RunFailed(Exception):
    """The run stopped because a backend became unusable; the folder is marked ``failed``, resumable."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(f"the run stopped: {cause}. The folder is marked failed; resume it with: hvae run --resume {path}")
        self.path = path
        self.cause = cause


class RunInterrupted(Exception):
    """The run stopped on Ctrl-C; the folder is consistent, marked ``interrupted`` and resumable."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"run interrupted; resume it with: hvae run --resume {path}")
        self.path = path


def play_scenario(
    scenario: Scenario,
    out_dir: str | Path | None,
    *,
    progress: bool = False,
    on_round: RoundCallback | None = None,
    model: HvaeModel | None = None,
    write_groups: FolderWriter | None = None,
    estimate: dict[str, Any] | None = None,
) -> RunResult:
    """Play ``scenario`` into the new folder ``out_dir`` (None: into memory) and return where it went.

    ``estimate`` (what ``hvae run --dry-run`` prints, as JSON) is kept in ``summary.json`` as
    ``llm_estimate``, beside the actual counts.

    ``write_groups(path)``, if given, writes the per-group table into the completed folder; if it
    raises, the error is recorded as ``groups_error`` in ``summary.json`` and the run stays complete.

    Raises:
        RunFolderError: ``out_dir`` exists and is not empty.
        RunInterrupted: Ctrl-C (the folder is left consistent, marked ``interrupted``, resumable).
        KeyboardInterrupt: Ctrl-C in a run played in memory (there is nothing to resume).
    """
    model = model or HvaeModel(scenario)  # build first: bad input must not leave a folder
    inputs = input_fingerprints(scenario)
    # a folder is locked until the run ends (released by _Play.finish)
    store: RunStore | MemoryStore = MemoryStore() if out_dir is None else RunStore.create(out_dir)
    store.write_text("scenario.yaml", dump_scenario(scenario))
    summary: dict[str, Any] = {
        "status": "running",
        "scenario": scenario.name,
        "seed": model.seed,
        "rounds_planned": scenario.rounds,
        "rounds_completed": 0,
        "n_agents": model.n_agents,
        "started_at": _now(),
        "finished_at": None,
        "versions": _versions(),
    }
    if redacted_fields(scenario):
        summary["redacted"] = redacted_fields(scenario)
    if inputs:
        summary["inputs"] = inputs
    if estimate is not None:
        summary["llm_estimate"] = estimate
    store.write_json("summary.json", summary)
    store.write_table("agents", agents_table(model))
    store.write_table("menus", menus_table(model))
    store.write_table("network", network_table(model))
    if store.path is not None:
        model.attach_run_folder(store.path)
    return _Play(model, store, summary, write_groups).run(progress=progress, on_round=on_round)


def resume_run(
    run_dir: str | Path, *, progress: bool = False, on_round: RoundCallback | None = None, keep_going: bool = False,
    write_groups: FolderWriter | None = None, trust_backends: bool = False,
) -> RunResult:
    """Continue an interrupted, failed or killed run from its last checkpoint.

    The folder is locked first (a run still being written by another process is refused). The
    model is rebuilt from the folder's resolved scenario and restored from ``checkpoint.json``;
    rows written after that checkpoint are cut away, so the finished tables equal those of an
    uninterrupted run. ``keep_going`` overrides the scenario's ``backend_errors.keep_going``.

    The folder is not trusted (see :mod:`hvae.simulation.credentials`): a backend that would read
    an environment variable needs ``trust_backends``; input files must be those the run started
    with (:mod:`hvae.simulation.inputs`); and the checkpoint must match the folder's tables and
    transcript (:func:`~hvae.simulation.checkpoint.check_against_folder`). All of this is checked
    before anything is cut or written.

    Raises:
        RunFolderError: not a run folder, a run that is already complete, a folder another
            process is writing (:class:`~hvae.simulation.lock.FolderLocked`), a checkpoint
            that cannot be used (:class:`~hvae.simulation.checkpoint.CheckpointError`), backends
            not trusted (:class:`~hvae.simulation.credentials.UntrustedBackends`), or changed inputs.
    """
    from hvae.scenarios.loader import load_scenario

    path = Path(run_dir)
    if not (path / "summary.json").is_file():
        raise RunFolderError(f"{run_dir} is not an hvae run folder (no summary.json)")
    if not (path / "scenario.yaml").is_file():
        kind = RunStore(path).read_json("summary.json").get("kind")  # read only, to name what it is
        if kind == "evaluation":
            raise RunFolderError(f"{run_dir} is an evaluation folder; only runs can be resumed (run 'hvae evaluate' again)")
        raise RunFolderError(f"{run_dir} is not an hvae run folder (no scenario.yaml)")
    store = RunStore.open(path)
    try:
        summary = store.read_json("summary.json")  # read under the lock: it may have just changed
        if summary.get("kind") == "evaluation":
            raise RunFolderError(f"{run_dir} is an evaluation folder; only runs can be resumed")
        if summary.get("status") in FINISHED:
            raise RunFolderError(f"{run_dir} is already complete; nothing to resume")
        state = checkpoint.load(store.path)  # validated before anything changes
        scenario = load_scenario(store.path / "scenario.yaml")
        check_backends_trusted(scenario, path, trust_backends)  # before any client is built
        check_credentials_restored(scenario, summary.get("redacted") or [], store.path)
        check_inputs_unchanged(scenario, summary, path)
        if keep_going and not scenario.backend_errors.keep_going:
            scenario = scenario.model_copy(
                update={"backend_errors": scenario.backend_errors.model_copy(update={"keep_going": True})}
            )
        model = HvaeModel(scenario)
        try:
            if state is not None:
                checkpoint.restore(model, state)
                checkpoint.check_against_folder(state, store, scenario.rounds, TABLE_SCHEMAS)
                rows, transcript_bytes = state.rows_written, int(state.extra.get("transcript_bytes", 0))
            else:  # killed before the first checkpoint: start again from round 0
                rows, transcript_bytes = {}, 0
            store.truncate_tables({name: rows.get(name, 0) for name in TABLE_SCHEMAS}, TABLE_SCHEMAS)
        except BaseException:
            model.close()
            raise
        transcript = store.path / "transcripts.jsonl"
        if store.file_size("transcripts.jsonl") or transcript.exists():  # a regular file (checked) or none
            with open(transcript, "r+b") as handle:
                handle.truncate(transcript_bytes)
        summary.update(status="running", finished_at=None)
        summary.pop("error", None)
        resumed = {"time": _now(), "round": model.round}
        if keep_going:
            resumed["keep_going"] = True
        summary.setdefault("resumed_at", []).append(resumed)
        store.write_json("summary.json", summary)
        model.attach_run_folder(store.path)
        return _Play(model, store, summary, write_groups).run(progress=progress, on_round=on_round)
    finally:
        store.close()


class _Play:
    """Plays the remaining rounds of a run, flushing and checkpointing as it goes."""

    def __init__(
        self, model: HvaeModel, store: RunStore | MemoryStore, summary: dict[str, Any], write_groups: FolderWriter | None = None
    ) -> None:
        self.model, self.store, self.summary = model, store, summary
        self.write_groups = write_groups
        self.started = time.perf_counter() - float(summary.get("elapsed_s", 0.0))
        self.stop_requested = False

    def flush(self, with_checkpoint: bool = True) -> None:
        """Append buffered rows; then (between rounds only) checkpoint the model."""
        model, store, summary = self.model, self.store, self.summary
        for name, table in model.log.drain().items():
            store.append(name, table)
        _write_llm_agents(model, store)
        summary.update(_counts(model))
        _record_health(model, summary)
        summary["rounds_completed"] = model.round
        summary["elapsed_s"] = round(time.perf_counter() - self.started, 3)
        if with_checkpoint and store.path is not None:  # a run in memory has nothing to resume from
            transcript = store.path / "transcripts.jsonl"
            extra = {"transcript_bytes": transcript.stat().st_size if transcript.exists() else 0}
            checkpoint.save(store.path, checkpoint.capture(model, store.rows_written, extra))
        store.write_json("summary.json", summary)

    def _on_sigint(self, signum, frame) -> None:
        if self.stop_requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop_requested = True

    def run(self, *, progress: bool, on_round: RoundCallback | None) -> RunResult:
        model, summary = self.model, self.summary
        scenario = model.scenario
        flush_every = scenario.output.flush_every
        checkpoint_every = scenario.output.checkpoint_every or flush_every
        previous_handler = _install_sigint(self._on_sigint)
        bar = _progress_bar(scenario, progress, completed=model.round, traffic=model.llm_pool)
        consistent = True  # False while a round is half-played
        try:
            consistent = False
            model.setup_llm_agents(bar.setup_progress if bar is not None else None)
            consistent = True
            while model.round < scenario.rounds:
                consistent = False
                model.step()
                consistent = True
                due = model.round % checkpoint_every == 0
                if due or model.log.pending_rounds() >= flush_every:
                    self.flush(with_checkpoint=due)
                if on_round is not None:
                    on_round(model)
                if bar is not None:
                    bar.advance()
                if self.stop_requested:
                    raise KeyboardInterrupt
            self.flush()
            summary["status"] = COMPLETE
        except KeyboardInterrupt:
            summary["status"] = "interrupted"
            if self.store.path is None:
                raise
            summary["resumable"] = True
            raise RunInterrupted(self.store.path) from None
        except BaseException as error:
            summary["status"] = "failed"
            summary["error"] = redact_text(f"{type(error).__name__}: {error}")
            if self.store.path is None:
                raise
            summary["resumable"] = True
            if isinstance(error, BackendUnavailable):
                raise RunFailed(self.store.path, error) from error
            raise
        finally:
            _restore_sigint(previous_handler)
            if bar is not None:
                bar.stop()
            self.finish(flush_first=summary["status"] not in FINISHED, checkpoint_ok=consistent)
        store = self.store
        return RunResult(store.path, summary, store if isinstance(store, MemoryStore) else None)

    def finish(self, flush_first: bool, checkpoint_ok: bool) -> None:
        model, store, summary = self.model, self.store, self.summary
        try:
            if flush_first:
                self.flush(with_checkpoint=checkpoint_ok)  # keep the rounds that did finish
        finally:
            _write_llm_agents(model, store)
            _record_health(model, summary)
            model.close()
            summary["finished_at"] = _now()
            summary.update(_counts(model))
            store.write_table("agents", agents_table(model))
            for name, schema in TABLE_SCHEMAS.items():
                if name in OPTIONAL_TABLES and not store.has_rows(name):
                    continue
                rows = store.consolidate(name, schema)
                if name == "decisions":
                    summary["n_decision_rows"] = rows
            summary["rounds_completed"] = model.round if checkpoint_ok else summary.get("rounds_completed", 0)
            if summary["status"] == COMPLETE:
                warning = valid_share_warning(summary, model.scenario.backend_errors.min_valid_share)
                if warning:
                    summary["status"] = COMPLETE_WITH_WARNINGS
                    summary["warnings"] = [*summary.get("warnings", []), warning]
            if summary["status"] in FINISHED and self.write_groups is not None and store.path is not None:
                _write_groups(self.write_groups, store.path, summary)
            if summary["status"] in FINISHED and store.path is not None:
                checkpoint.remove(store.path)
                summary.pop("resumable", None)
            store.write_json("summary.json", summary)
            store.close()  # the folder's lock: another process may resume it from now on


def _write_groups(write_groups: FolderWriter, path: Path, summary: dict[str, Any]) -> None:
    """The per-group table as data (``groups.parquet``/``.csv``); a failure is recorded, not raised."""
    try:
        write_groups(path)
    except Exception as error:  # noqa: BLE001 - the run's own data is complete either way
        summary["groups_error"] = f"{type(error).__name__}: {error}"


def _install_sigint(handler):
    """Route Ctrl-C to ``handler`` while a run plays (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, handler)


def _restore_sigint(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


def _write_llm_agents(model: HvaeModel, store: RunStore | MemoryStore) -> None:
    records = model.llm_setup_records()
    if records:
        store.write_table("llm_agents", pa.Table.from_pylist(records))


def _record_health(model: HvaeModel, summary: dict[str, Any]) -> None:
    """Calls and failures per LLM backend (``backend_health`` in ``summary.json``)."""
    if model.llm_pool is None:
        return
    traffic = model.llm_pool.traffic()
    if traffic:  # calls in flight, calls/s, p50/p95 latency per backend (issue 22.6)
        summary["llm_traffic"] = traffic
    reports = model.llm_pool.health_reports()
    if reports:
        summary["backend_health"] = {
            name: {key: value for key, value in report.items() if key != "recent"} for name, report in reports.items()
        }


LLM_COUNTS = (
    "llm_calls", "llm_cache_hits", "llm_invalid", "tokens_in", "tokens_out",
    "llm_retries", "llm_errors", "llm_reasks", "llm_fallbacks", "llm_setup_failures", "llm_decisions",
)


def _counts(model: HvaeModel) -> dict[str, int]:
    totals = model.log.totals
    counts = {"n_decisions": totals["decisions"], "n_invalid": totals["invalid"], "n_idle": totals["idle"]}
    counts.update({key: 0 for key in LLM_COUNTS})
    for decider in model.deciders.values():
        if isinstance(decider, KeepsAccounts):
            for key, value in decider.accounting().items():
                counts[key] = counts.get(key, 0) + value
    return counts


class _Bar:
    """The run's progress: LLM agents set up (while that lasts), then rounds played."""

    def __init__(self, scenario: Scenario, completed: int, traffic: Any = None) -> None:
        self.bar = ProgressBar(transient=True)
        note = _LiveNote(traffic) if traffic is not None else ""  # the LLM backends' backpressure, live
        self.task = self.bar.add(one_line(scenario.name, 60), total=scenario.rounds, unit="rounds", completed=completed, note=note)
        self.setup_task = None

    def setup_progress(self, done: int, total: int) -> None:
        if self.setup_task is None:
            self.setup_task = self.bar.add("LLM setup", total=total, unit="agents set up")
        self.bar.update(self.setup_task, completed=done)
        if done >= total:
            self.bar.remove(self.setup_task)
            self.setup_task = None

    def advance(self) -> None:
        self.bar.update(self.task, advance=1)

    def stop(self) -> None:
        self.bar.stop()


class _LiveNote:
    """Formats as the pool's traffic line each time the bar redraws (calls in flight, calls/s, p50/p95)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def __format__(self, spec: str) -> str:
        try:
            return self.pool.traffic_line()
        except RuntimeError:  # a latency window changed while the bar's thread read it
            return ""


def _progress_bar(scenario: Scenario, enabled: bool, completed: int = 0, traffic: Any = None) -> _Bar | None:
    return _Bar(scenario, completed, traffic) if enabled else None
