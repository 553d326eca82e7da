"""How long ``hvae evaluate`` takes for rule deciders, end to end, as a user types it.

Rule deciders (random, oracle, reciprocal) are the baselines every LLM figure is compared with;
tight intervals need many repeats, so they must be cheap. Goal: 20,000 repeats per value in at
most 5 s, including the command's start-up, the files (``answers.parquet``, ``evaluation.parquet``,
summaries) and the figures.

    python benchmarks/bench_evaluate.py                       # random, 20,000 repeats, 3 runs
    python benchmarks/bench_evaluate.py --agent oracle,random --repeats 50000 --runs 1

Each run is the real command in a fresh process (``hvae evaluate --agent AGENT --repeats N --out
TMP --json``); the script then repeats the work in this process to show where the time goes
(answering the items, building the tables and writing the files, drawing the figures). Times
vary with machine load: compare figures taken on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALUES = "altruistic,prosocial,individualistic,competitive"


def hvae_command() -> list[str]:
    executable = Path(sys.executable).with_name("hvae")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "hvae.simulation.cli"]


def end_to_end(agent: str, repeats: int, runs: int) -> list[float]:
    """Wall-clock seconds of ``runs`` separate ``hvae evaluate`` processes."""
    times = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = subprocess.run(
                [*hvae_command(), "evaluate", "--agent", agent, "--values", VALUES, "--repeats", str(repeats),
                 "--seed", str(i), "--out", str(Path(tmp) / "ev"), "--json"],
                capture_output=True, text=True,
            )
            times.append(time.perf_counter() - start)
            if result.returncode != 0:
                raise SystemExit(f"hvae evaluate failed: {result.stderr.strip()}")
    return times


def breakdown(agent: str, repeats: int) -> dict[str, float]:
    """Seconds per stage of one evaluation, in this process."""
    import pandas as pd

    from hvae.analysis.evaluation import radar_chart, ring_plot
    from hvae.simulation.evaluation import Evaluation, EvaluationPlan

    stages = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        evaluation = Evaluation(EvaluationPlan(agents=agent.split(","), values=VALUES.split(","), repeats=repeats))
        stages["set up"] = time.perf_counter() - start
        start = time.perf_counter()
        path = evaluation.run(Path(tmp) / "ev")
        stages["answer, tables, files"] = time.perf_counter() - start
        start = time.perf_counter()
        table = pd.read_parquet(path / "evaluation_summary.parquet")
        repeats_table = pd.read_parquet(path / "evaluation.parquet")
        radar_chart(table, path / "figures", "slider_vr")
        radar_chart(table, path / "figures", "decision_vr")
        ring_plot(repeats_table, path / "figures")
        stages["figures"] = time.perf_counter() - start
        stages["rows (answers)"] = float(len(pd.read_parquet(path / "answers.parquet", columns=["choice"])))
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="random")
    parser.add_argument("--repeats", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cells = len(args.agent.split(",")) * len(VALUES.split(","))
    times = end_to_end(args.agent, args.repeats, args.runs)
    median = statistics.median(times)
    print(f"hvae evaluate --agent {args.agent} --repeats {args.repeats:,} ({cells} cells, "
          f"{cells * args.repeats:,} questionnaires of 6 items)")
    print(f"  end to end, {args.runs} fresh processes: " + ", ".join(f"{t:.2f} s" for t in times)
          + f"  (median {median:.2f} s, {median / (cells * args.repeats) * 1e6:.1f} µs per questionnaire)")
    print(f"  goal: <= 5 s for 20,000 repeats -> {'met' if median <= 5 or args.repeats != 20_000 else 'NOT met'}")
    stages = breakdown(args.agent, args.repeats)
    rows = int(stages.pop("rows (answers)"))
    print(f"  in process ({rows:,} answer rows): " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))


if __name__ == "__main__":
    main()
