"""One run as ``hvae run`` makes it: played into a run folder with its per-group table, or into memory.

:func:`hvae.simulation.runner.play_scenario` plays a scenario into a run folder; the simulation
never reads its output back. :func:`run_to_folder` adds the one analysis product every completed
run folder carries — ``groups.parquet`` / ``groups.csv``, the per-group table of
:func:`hvae.analysis.summary.group_summary` — written under the folder's lock before the run is
marked complete. The command line, sweeps and Python users who want the same folder call these::

    from hvae.experiments.runs import run_to_folder
    from hvae.scenarios.loader import load_scenario
    result = run_to_folder(load_scenario("oracle_population"), "runs/demo")
    (result.path / "groups.parquet").is_file()   # True

:func:`run_in_memory` plays the same rounds without a folder and returns the run's data
(:class:`~hvae.analysis.rundata.MemoryRun`), which every analysis function reads as it reads a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hvae.analysis.rundata import MemoryRun
from hvae.analysis.summary import write_group_table
from hvae.scenarios.schema import Scenario
from hvae.simulation import runner
from hvae.simulation.runner import RunResult


def run_to_folder(scenario: Scenario, out_dir: str | Path, **options: Any) -> RunResult:
    """:func:`hvae.simulation.runner.play_scenario` (same options) with the per-group table written."""
    return runner.play_scenario(scenario, out_dir, write_groups=write_group_table, **options)


def run_in_memory(scenario: Scenario, **options: Any) -> MemoryRun:
    """Play ``scenario`` without a folder; return its data (options as :func:`run_to_folder`'s).

    A run that does not complete raises (Ctrl-C: ``KeyboardInterrupt``; a dead backend: its
    error): a run in memory has no folder to resume from.
    """
    result = runner.play_scenario(scenario, None, **options)
    assert result.store is not None  # played into memory
    return MemoryRun(result.store.texts, result.store.tables)


def resume_run(run_dir: str | Path, **options: Any) -> RunResult:
    """:func:`hvae.simulation.runner.resume_run` (same options) with the per-group table written."""
    return runner.resume_run(run_dir, write_groups=write_group_table, **options)
