"""``hvae run`` for a talk comparison (``communication.compare: true``): both arms, then the report.

:func:`run` and :func:`resume` are what ``hvae run SCENARIO`` and ``hvae run --resume FOLDER``
call when the scenario asks for a comparison or the folder holds one
(:mod:`hvae.experiments.talk`); they print each arm's per-group table and the report's path.
"""

from __future__ import annotations

from pathlib import Path

import click

from hvae.cli.tables import print_run_summary
from hvae.scenarios.schema import Scenario


def _print(result, quiet: bool, wide: bool) -> None:
    if not quiet:
        for arm, path in result.arms.items():
            click.echo(f"\n{arm.replace('_', ' ')} arm ({path}):")
            print_run_summary(path, wide=wide)
    click.echo(f"comparison folder: {result.path}")
    if result.report is not None:
        click.echo(f"report: {result.report}")


def run(config: Scenario, out_dir: Path, *, progress: bool, quiet: bool, wide: bool) -> None:
    """Play both arms of ``config`` into ``out_dir`` and write the comparison."""
    from hvae.experiments.talk import run_comparison

    _print(run_comparison(config, out_dir, progress=progress), quiet, wide)


def resume(folder: Path, *, progress: bool, quiet: bool, wide: bool, trust_backends: bool = False) -> None:
    """Finish the comparison in ``folder`` (``trust_backends``: see :mod:`hvae.simulation.credentials`)."""
    from hvae.experiments.talk import resume_comparison

    _print(resume_comparison(folder, progress=progress, trust_backends=trust_backends), quiet, wide)
