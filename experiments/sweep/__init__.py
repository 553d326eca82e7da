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
folder with :func:`~hvae.experiments.runs.run_to_folder` and sends back a small dict of headline
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

The modules: :mod:`~hvae.experiments.sweep.spec` (the file, its expansion and run names),
:mod:`~hvae.experiments.sweep.execution` (dask, locking, resume, failures) and
:mod:`~hvae.experiments.sweep.results` (the per-run figures and the aggregate table); the
``hvae sweep`` command is :mod:`hvae.cli.sweep`.

From Python::

    from hvae.experiments.sweep import load_sweep, run_sweep
    outcome = run_sweep(load_sweep("scenarios/sweep_example.yaml"), "runs/example", workers=2)
    outcome.table        # pandas DataFrame, as in sweep.parquet
"""

from hvae.experiments.sweep.execution import DEFAULT_WORKERS, SweepOutcome, execute_run, run_sweep
from hvae.experiments.sweep.results import TABLE_NAME, SweepTable, run_metrics
from hvae.experiments.sweep.spec import PlannedRun, Sweep, SweepFile, expand, load_sweep, run_id, validate_runs

__all__ = [
    "DEFAULT_WORKERS", "TABLE_NAME", "PlannedRun", "Sweep", "SweepFile", "SweepOutcome", "SweepTable",
    "execute_run", "expand", "load_sweep", "run_id", "run_metrics", "run_sweep", "validate_runs",
]
