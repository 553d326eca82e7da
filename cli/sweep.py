"""``hvae sweep SWEEP.yaml``: run a sweep file on dask workers (see :mod:`hvae.experiments.sweep`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hvae.cli.errors import UserError, error_line, friendly_errors
from hvae.experiments.sweep import DEFAULT_WORKERS, TABLE_NAME, load_sweep, run_sweep


@click.command("sweep")
@click.argument("sweep_file", metavar="SWEEP.yaml", type=click.Path(path_type=Path))
@click.option("--workers", type=click.IntRange(min=1), help=f"Local worker processes (default {DEFAULT_WORKERS}).")
@click.option("--scheduler", metavar="ADDRESS", help="Use a running dask scheduler, e.g. tcp://host:8786.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Sweep folder (default runs/<sweep name>).")
@friendly_errors
def sweep(sweep_file: Path, workers: int | None, scheduler: str | None, out_dir: Path | None) -> None:
    """Run every run of a sweep file (a grid and/or list of overrides × seeds) on dask workers.

    Runs already complete in the sweep folder are skipped, unfinished ones are redone. Writes
    one row per run to sweep.parquet and sweep.csv; exits 1 if any run failed.
    """
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
            click.echo(error_line(f"  {run_name}: {reason}"), err=True)
        sys.exit(1)
