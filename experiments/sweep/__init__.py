"""Parameter sweeps: one scenario, many overrides and seeds, run in parallel on dask.distributed."""

from hvae.experiments.sweep.execution import *  # noqa: F403 - the pure move; split next
from hvae.experiments.sweep.execution import expand, load_sweep, run_id, run_sweep, validate_runs  # noqa: F401
