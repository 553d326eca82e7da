"""Sweep throughput benchmark: oracle runs per second on 1 vs 2 (or more) dask workers.

It writes a sweep file in a temporary folder — the shipped ``oracle_population`` scenario (32
oracle agents, small-world graph, slider menus) played for ``--runs`` seeds, ``--rounds`` rounds
each — and runs it with :func:`hvae.experiments.sweep.run_sweep` on a local cluster of each worker
count given. For each it reports

* **steady** — runs/s on a cluster that is already up and has imported hvae (the sweep alone:
  each task loads the scenario, runs it into its folder, computes the row's figures; the parent
  writes the table after every run);
* **total** — runs/s including starting and closing the local cluster, what ``hvae sweep`` costs
  from the command line;

and the speed-up of each worker count over the first. Run it from the repository root::

    python benchmarks/bench_sweep.py                        # 24 runs, workers 1 and 2
    python benchmarks/bench_sweep.py --runs 48 --rounds 48 --workers 1 2 4

The speed-up cannot exceed the number of free CPU cores (``os.cpu_count()`` is printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from hvae.experiments.sweep import load_sweep, run_sweep


def write_sweep(folder: Path, runs: int, rounds: int) -> Path:
    path = folder / "bench.yaml"
    seeds = ", ".join(str(seed) for seed in range(1, runs + 1))
    path.write_text(
        f"name: bench\nscenario: oracle_population\nseeds: [{seeds}]\noverrides: {{rounds: {rounds}}}\n"
    )
    return path


def steady(sweep_path: Path, out: Path, workers: int) -> float:
    """Seconds for the sweep on a cluster that is already started and warmed up."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.CRITICAL, scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
                Client(cluster) as client:
            client.run(_warm_up)
            started = time.perf_counter()
            outcome = run_sweep(load_sweep(sweep_path), out, client=client, progress=False, log=lambda line: None)
            elapsed = time.perf_counter() - started
    assert not outcome.failed, outcome.failed
    return elapsed


def _warm_up() -> None:
    import hvae.analysis.rationality  # noqa: F401
    import hvae.simulation.runner  # noqa: F401


def total(sweep_path: Path, out: Path, workers: int) -> float:
    """Seconds for the sweep including starting and closing its local cluster."""
    started = time.perf_counter()
    outcome = run_sweep(load_sweep(sweep_path), out, workers=workers, progress=False, log=lambda line: None)
    elapsed = time.perf_counter() - started
    assert not outcome.failed, outcome.failed
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24, help="runs per sweep (seeds of oracle_population)")
    parser.add_argument("--rounds", type=int, default=24, help="rounds per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    args = parser.parse_args()

    print(f"sweep of {args.runs} oracle_population runs x {args.rounds} rounds (32 agents); "
          f"{os.cpu_count()} CPU cores")
    print(f"{'workers':>7}  {'steady s':>8}  {'runs/s':>7}  {'speed-up':>8}  {'total s':>7}  {'runs/s':>7}  {'speed-up':>8}")
    base_steady = base_total = None
    with tempfile.TemporaryDirectory(prefix="hvae-bench-sweep-") as tmp:
        folder = Path(tmp)
        sweep_path = write_sweep(folder, args.runs, args.rounds)
        for workers in args.workers:
            s = steady(sweep_path, folder / f"steady-{workers}", workers)
            t = total(sweep_path, folder / f"total-{workers}", workers)
            base_steady = base_steady or s
            base_total = base_total or t
            print(f"{workers:>7}  {s:>8.2f}  {args.runs / s:>7.2f}  {base_steady / s:>7.2f}x  "
                  f"{t:>7.2f}  {args.runs / t:>7.2f}  {base_total / t:>7.2f}x")


if __name__ == "__main__":
    main()
