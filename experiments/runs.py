"""One run as ``hvae run`` makes it: the simulation's run folder plus its per-group table.

:func:`hvae.simulation.runner.run_scenario` plays a scenario into a run folder; the simulation
never reads its output back. This protocol adds the one analysis product every completed run
folder carries — ``groups.parquet`` / ``groups.csv``, the per-group table of
:func:`hvae.analysis.summary.group_summary` — written under the folder's lock before the run is
marked complete. The command line, sweeps and Python users who want the same folder call these::

    from hvae.experiments.runs import run_scenario
    from hvae.scenarios.loader import load_scenario
    result = run_scenario(load_scenario("oracle_population"), "runs/demo")
    (result.path / "groups.parquet").is_file()   # True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hvae.analysis.summary import write_group_table
from hvae.scenarios.schema import Scenario
from hvae.simulation import runner
from hvae.simulation.runner import RunResult


def run_scenario(scenario: Scenario, out_dir: str | Path, **options: Any) -> RunResult:
    """:func:`hvae.simulation.runner.run_scenario` (same options) with the per-group table written."""
    return runner.run_scenario(scenario, out_dir, write_groups=write_group_table, **options)


def resume_run(run_dir: str | Path, **options: Any) -> RunResult:
    """:func:`hvae.simulation.runner.resume_run` (same options) with the per-group table written."""
    return runner.resume_run(run_dir, write_groups=write_group_table, **options)
