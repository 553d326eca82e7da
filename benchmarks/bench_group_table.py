"""The end-of-run per-group table, timed on an existing run folder (issue 23's million-agent run).

``hvae run`` ends by writing ``groups.parquet``/``groups.csv``
(:func:`hvae.analysis.summary.write_group_table`); at a million agents that step reads a decisions
table of a million rows and an agents table of a million rows. This script copies the folder to a
temporary one (the original is never written), times the table there and says whether it equals the
folder's own ``groups.parquet`` (integers and strings exactly; floats exactly or within 1e-12
relative), with the machine's load average beside the time (wall-clock figures on a shared machine)::

    python benchmarks/bench_million.py --keep runs/million          # once: the run folder
    python benchmarks/bench_group_table.py runs/million
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.analysis.summary import GROUP_TABLE_FILES, write_group_table


def differences(reference: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """Columns of ``table`` that differ from ``reference`` (floats: more than 1e-12 relative)."""
    if list(reference.columns) != list(table.columns) or len(reference) != len(table):
        return ["columns or rows"]
    out = []
    for name in reference.columns:
        a, b = reference[name], table[name]
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            if not np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-12, atol=0.0, equal_nan=True):
                out.append(name)
        elif not a.equals(b):
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    reference_path = args.run_dir / "groups.parquet"
    reference = pd.read_parquet(reference_path) if reference_path.is_file() else None
    with tempfile.TemporaryDirectory(prefix="hvae_groups_") as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(args.run_dir, copy, ignore=shutil.ignore_patterns(*GROUP_TABLE_FILES, "*.html"))
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), time.process_time()
        write_group_table(copy)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        table = pd.read_parquet(copy / "groups.parquet")
    print(f"write_group_table: {wall:.2f} s wall, {cpu:.2f} s CPU; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after (1 min; {os.cpu_count()} CPUs)")
    if reference is None:
        print("no groups.parquet in the folder to compare with")
        return 0
    differing = differences(reference, table)
    print("equal to the folder's groups.parquet" if not differing else f"DIFFERS from the folder's groups.parquet: {differing}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
