"""The runner: scenario → model → rounds → run folder.

:func:`run_scenario` builds the model, writes the static files (resolved scenario, agents, menus,
network), plays the rounds with a progress bar, appends rows to the store every
``output.flush_every`` rounds and keeps ``summary.json`` current, so at any moment the folder says
how far the run got. However the run ends — finished, Ctrl-C, or an error — the status is written
(``complete``, ``interrupted``, ``failed``) and the part files are consolidated; only a
``complete`` run is ever marked complete::

    from hvae.scenarios.loader import load_scenario
    result = run_scenario(load_scenario("oracle_population"), "runs/demo")
    result.summary["status"]   # 'complete'
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hvae.scenarios.loader import dump_scenario
from hvae.scenarios.schema import Scenario
from hvae.simulation.model import HvaeModel
from hvae.simulation.records import TABLE_SCHEMAS
from hvae.simulation.store import RunStore

RoundCallback = Callable[[HvaeModel], None]


@dataclass
class RunResult:
    """Where a run was written and how it ended."""

    path: Path
    summary: dict[str, Any]


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


def agents_table(model: HvaeModel) -> pa.Table:
    """One row per agent: identity, value, network position and running totals."""
    state = model.state
    return pa.table(
        {
            "agent_id": np.arange(model.n_agents, dtype=np.int32),
            "group": [model.group_names[c] for c in state.group_code],
            "decider": [model.decider_kinds[c] for c in state.group_code],
            "value_spec": [model.scenario.population[c].value_spec.label() for c in state.group_code],
            "value_angle": state.theta.copy(),
            "value_category": model.value_categories.astype(str),
            "initial_value_angle": model.initial_theta.copy(),
            "n_value_changes": model.n_value_changes.copy(),
            "degree": model.degree.astype(np.int32),
            "cumulative_payoff": state.cumulative_payoff.copy(),
            "n_decisions": state.n_decisions.copy(),
            "n_idle": state.n_idle.copy(),
            "n_invalid": state.n_invalid.copy(),
        }
    )


def menus_table(model: HvaeModel) -> pa.Table:
    rows: dict[str, list] = {"menu_id": [], "position_in_cycle": [], "option": [], "self": [], "other": [], "slider_item": []}
    for position, menu in enumerate(model.schedule.menus):
        for option, (s, o) in enumerate(menu.options):
            rows["menu_id"].append(menu.menu_id)
            rows["position_in_cycle"].append(position)
            rows["option"].append(option)
            rows["self"].append(float(s))
            rows["other"].append(float(o))
            rows["slider_item"].append(menu.slider_item)
    return pa.table(rows, schema=pa.schema([
        ("menu_id", pa.string()), ("position_in_cycle", pa.int32()), ("option", pa.int32()),
        ("self", pa.float64()), ("other", pa.float64()), ("slider_item", pa.int32()),
    ]))


def network_table(model: HvaeModel) -> pa.Table:
    return pa.table({"u": model.edges[:, 0].astype(np.int32), "v": model.edges[:, 1].astype(np.int32)})


class RunInterrupted(Exception):
    """The run stopped on Ctrl-C; the folder is consolidated and marked ``interrupted``."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"run interrupted; partial results kept in {path}")
        self.path = path


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    progress: bool = False,
    on_round: RoundCallback | None = None,
    model: HvaeModel | None = None,
) -> RunResult:
    """Run ``scenario`` into the new folder ``out_dir`` and return where it went.

    Raises:
        RunFolderError: ``out_dir`` exists and is not empty.
        RunInterrupted: Ctrl-C (the folder is left consistent and marked ``interrupted``).
    """
    model = model or HvaeModel(scenario)  # build first: bad input must not leave a folder
    store = RunStore.create(out_dir)
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
    store.write_json("summary.json", summary)
    store.write_table("agents", agents_table(model))
    store.write_table("menus", menus_table(model))
    store.write_table("network", network_table(model))
    model.attach_run_folder(store.path)
    flush_every = scenario.output.flush_every
    started = time.perf_counter()

    def flush() -> None:
        for name, table in model.log.drain().items():
            store.append(name, table)
        _write_llm_agents(model, store)
        summary.update(_counts(model))
        summary["rounds_completed"] = model.round
        summary["elapsed_s"] = round(time.perf_counter() - started, 3)
        store.write_json("summary.json", summary)

    bar = _progress_bar(scenario, progress)
    try:
        for _ in range(scenario.rounds):
            model.step()
            if model.log.pending_rounds() >= flush_every:
                flush()
            if on_round is not None:
                on_round(model)
            if bar is not None:
                bar.advance()
        flush()
        summary["status"] = "complete"
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        raise RunInterrupted(store.path) from None
    except BaseException as error:
        summary["status"] = "failed"
        summary["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        if bar is not None:
            bar.stop()
        _finish(model, store, summary, flush if summary["status"] != "complete" else None)
    return RunResult(store.path, summary)


def _finish(model: HvaeModel, store: RunStore, summary: dict, flush: Callable[[], None] | None) -> None:
    try:
        if flush is not None:
            flush()  # keep the rounds that did finish
    finally:
        _write_llm_agents(model, store)
        model.close()
        summary["finished_at"] = _now()
        summary["rounds_completed"] = model.round
        summary.update(_counts(model))
        store.write_table("agents", agents_table(model))
        for name, schema in TABLE_SCHEMAS.items():
            rows = store.consolidate(name, schema)
            if name == "decisions":
                summary["n_decision_rows"] = rows
        store.write_json("summary.json", summary)


def _write_llm_agents(model: HvaeModel, store: RunStore) -> None:
    records = model.llm_setup_records()
    if records:
        store.write_table("llm_agents", pa.Table.from_pylist(records))


LLM_COUNTS = (
    "llm_calls", "llm_cache_hits", "llm_invalid", "tokens_in", "tokens_out",
    "llm_retries", "llm_errors", "llm_reasks", "llm_fallbacks", "llm_setup_failures",
)


def _counts(model: HvaeModel) -> dict[str, int]:
    totals = model.log.totals
    counts = {"n_decisions": totals["decisions"], "n_invalid": totals["invalid"], "n_idle": totals["idle"]}
    counts.update({key: 0 for key in LLM_COUNTS})
    for decider in model.deciders.values():
        accounting = getattr(decider, "accounting", None)
        if callable(accounting):
            for key, value in accounting().items():
                counts[key] = counts.get(key, 0) + value
    return counts


class _Bar:
    def __init__(self, scenario: Scenario) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"[bold]{scenario.name}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("rounds"), TimeRemainingColumn(), transient=True,
        )
        self.task = self.progress.add_task("run", total=scenario.rounds)
        self.progress.start()

    def advance(self) -> None:
        self.progress.advance(self.task)

    def stop(self) -> None:
        self.progress.stop()


def _progress_bar(scenario: Scenario, enabled: bool) -> _Bar | None:
    return _Bar(scenario) if enabled else None
