"""The million-agent benchmark: the shipped ``surrogate_million`` scenario, timed end to end.

Issue 23's budget: 1,000,000 surrogate agents, 100 rounds (10^8 decisions) on a sparse small-world
network with imitation dynamics, **within 2 minutes and 4 GB** on the project's 2-core machine. This
script plays the scenario with :func:`hvae.experiments.runs.run_to_folder` — the run folder exactly as
``hvae run`` writes it (part files every ``flush_every`` rounds, checkpoints, consolidation, the
per-group table) — into a temporary folder, and prints

* the wall time, the process's CPU time (on a machine shared with other work the CPU time is what
  the run would take alone: the engine is single-threaded numpy) and decisions/s, with the time spent in each phase of a round (decide, pay,
  remember, records, value dynamics) and outside the rounds (model build, writing, consolidation);
* the peak resident memory of the process (``ru_maxrss``), which includes the interpreter and the
  libraries;
* a verdict against the budget, and the machine's load average (the figures are wall-clock: on a
  shared machine, compare them with the load).

Run it from the repository root::

    python benchmarks/bench_million.py                          # the budget run (about 1-2 minutes)
    python benchmarks/bench_million.py --set rounds=10          # shorter; any scenario override
    python benchmarks/bench_million.py --set size=100000 --keep runs/million_100k   # keep the folder

``--keep DIR`` writes the run folder to DIR (then ``hvae report DIR``) instead of a temporary one.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hvae.scenarios.loader import load_scenario
from hvae.simulation.model import HvaeModel

BUDGET_S = 120.0
BUDGET_BYTES = 4 * 2**30
PHASES = ("match", "decide", "pay", "remember", "update_values")


def timed_model(scenario, seconds: dict[str, float]) -> HvaeModel:
    """The scenario's model with its round phases wrapped to add their wall time to ``seconds``."""
    start = time.perf_counter()
    model = HvaeModel(scenario)
    seconds["model build"] += time.perf_counter() - start

    def wrap(owner, name: str, label: str) -> None:
        method = getattr(owner, name)

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - began

        setattr(owner, name, timed)

    for phase in PHASES:
        wrap(model, phase, phase)
    wrap(model.log, "collect", "records")
    return model


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="surrogate_million", help="scenario name or file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", type=Path, help="write the run folder here instead of a temporary one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from hvae.experiments.runs import run_to_folder

    args = parse_args(argv)
    scenario = load_scenario(args.scenario, args.overrides)
    seconds: dict[str, float] = defaultdict(float)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hvae-million-") as tmp:
        out = args.keep or Path(tmp) / "run"
        start, cpu_start = time.perf_counter(), time.process_time()
        model = timed_model(scenario, seconds)
        result = run_to_folder(scenario, out, model=model, progress=sys.stderr.isatty())
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        folder_mb = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file()) / 2**20
    rss = peak_rss_bytes()
    decisions = int(result.summary["n_decisions"])
    in_rounds = sum(seconds[p] for p in (*PHASES, "records"))
    print(
        f"scenario: {scenario.name}, {model.n_agents:,} agents, {len(model.edges):,} edges, {scenario.rounds} rounds, "
        f"records: decisions={scenario.records.decisions}"
    )
    print(f"wall {wall:.1f} s (CPU {cpu:.1f} s), {decisions:,} decisions, {decisions / wall:,.0f} decisions/s, "
          f"status {result.summary['status']}")
    print("phases: " + ", ".join(f"{name} {seconds[name]:.1f} s" for name in ("model build", *PHASES, "records"))
          + f"; outside the rounds (writing, checkpoints, consolidation, tables) {wall - in_rounds - seconds['model build']:.1f} s")
    print(f"peak RSS {rss / 2**30:.2f} GiB; run folder {folder_mb:.1f} MiB")
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min; {os.cpu_count()} CPUs)")
    fast, small = wall <= BUDGET_S, rss <= BUDGET_BYTES
    verdict = "PASS" if fast and small else "FAIL"
    print(f"verdict: {verdict} — {wall:.0f} s {'<=' if fast else '>'} {BUDGET_S:.0f} s; "
          f"{rss / 2**30:.2f} GiB {'<=' if small else '>'} {BUDGET_BYTES / 2**30:.0f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
