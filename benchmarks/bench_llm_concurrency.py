"""LLM concurrency benchmark: how close one round of LLM agents gets to the server's limit.

Part 1 — the ``openai`` backend against the stub server of ``tests/llm_stub_server.py``, which
answers every request after a fixed latency (``--latency``, default 0.2 s) and serves at most
``--server-concurrency`` (C, default 16) requests at once. A population of ``--agents`` (N,
default 32) LLM agents on a complete graph with ``all_edges`` matching (so every agent decides
every round) is built with ``max_concurrency`` = ``--max-concurrency`` (default 16). The first
``model.step()`` is a warm-up (the agents' two setup calls, one decision round, HTTP connections
opened); then ``--rounds`` more rounds are timed one by one — decision phase only, because setup
is already done. Each timed round is compared with

* the ideal ``ceil(N / min(C, max_concurrency)) × latency`` — goal: ideal / actual >= 0.9;
* the same round with ``max_concurrency: 1`` (sequential) — goal: >= 8× faster.

The stub runs in its own process by default (``--in-process-stub``: a thread of this one, whose
handler threads then share the client's GIL). The server side is reported too: the most requests it served at once, and the span from the
first decision request's arrival to the last reply (what the client overhead adds is the rest).

Part 2 — the ``embedded`` backend (SmolLM2-135M in-process through llama.cpp, one call at a time):
4 LLM agents, cache off, one warm-up round (setup + one decision round, not timed), then
``--embedded-rounds`` timed rounds; prints decisions/s and model calls/s on this machine. It takes
a minute or two on 2 cores (about 2–3 s per call); ``--skip-embedded`` leaves it out.

Run it from the repository root with the project's interpreter::

    python benchmarks/bench_llm_concurrency.py                    # N=32, C=16, 0.2 s, + embedded
    python benchmarks/bench_llm_concurrency.py --skip-embedded
    python benchmarks/bench_llm_concurrency.py --agents 64 --server-concurrency 32 --max-concurrency 32 --latency 0.1

Timings are wall-clock (``time.perf_counter``); the figure reported per configuration is the
best of the timed rounds, the median is printed next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the stub server lives with the tests

from llm_stub_server import StubServer  # noqa: E402

from hvae.scenarios.loader import validate_data  # noqa: E402
from hvae.scenarios.schema import Scenario  # noqa: E402
from hvae.simulation.model import HvaeModel  # noqa: E402

GOAL_IDEAL_RATIO = 0.9
GOAL_SPEEDUP = 8.0


# ---------------------------------------------------------------------------------- scenarios
def llm_scenario(agents: int, rounds: int, backend_name: str, backend: dict | None) -> Scenario:
    data = {
        "name": "bench-llm",
        "seed": 11,
        "rounds": rounds,
        "population": [
            {"name": "llm", "count": agents, "value": "prosocial",
             "decider": {"kind": "llm", "backend": backend_name, "order": "fixed", "reasks": 1}},
        ],
        "network": {"kind": "complete"},
        "matching": "all_edges",
        "menus": {"kind": "slider"},
        "cache": {"enabled": False},
    }
    if backend is not None:
        data["backends"] = {backend_name: backend}
    return validate_data(data, "bench")


@dataclass
class RoundTimes:
    wall_s: list[float]  # per timed round, decision phase (whole model.step) only
    server_span_s: list[float]  # per timed round: first decision request arrives -> last reply sent
    cpu_s: list[float]  # per timed round: CPU time of this process (the client; the stub too if in-process)
    peak_parallel: int
    decisions_per_round: int
    invalid: int

    @property
    def best(self) -> float:
        return min(self.wall_s)

    @property
    def median(self) -> float:
        return statistics.median(self.wall_s)


class ProcessStub:
    """The stub server in a child process (``python tests/llm_stub_server.py``), so its threads
    never compete with the client for this process's GIL; stats come from ``GET /stub/stats``."""

    def __init__(self, latency: float, max_parallel: int) -> None:
        self.args = ["--latency", str(latency), "--max-parallel", str(max_parallel)]
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> "ProcessStub":
        script = ROOT / "tests" / "llm_stub_server.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), *self.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.__exit__()
            raise RuntimeError(f"stub server did not start (said {self.base_url!r})")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.stdin.close()  # the stub stops at EOF on stdin
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(timeout=10)
            self.process = None

    def log(self) -> list[dict]:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stub/stats", timeout=10) as reply:
            return json.load(reply)["log"]


class ThreadStub:
    """The stub server in a thread of this process (``--in-process-stub``)."""

    def __init__(self, latency: float, max_parallel: int) -> None:
        self.server = StubServer(latency_s=latency, max_parallel=max_parallel)

    def __enter__(self) -> "ThreadStub":
        self.server.start()
        self.base_url = self.server.base_url
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def log(self) -> list[dict]:
        return self.server.stats()["log"]


def time_openai_rounds(agents: int, max_concurrency: int, latency: float, server_c: int, rounds: int, in_process: bool) -> RoundTimes:
    """Warm-up step (setup + one round), then ``rounds`` timed steps against a fresh stub."""
    with (ThreadStub if in_process else ProcessStub)(latency, server_c) as stub:
        backend = {
            "kind": "openai", "base_url": stub.base_url, "model": "stub", "timeout_s": 60.0,
            "retries": 0, "backoff_s": 0.0, "max_concurrency": max_concurrency,
        }
        model = HvaeModel(llm_scenario(agents, rounds + 1, "srv", backend))
        try:
            model.step()  # warm-up: setup calls + one decision round + connections
            walls, spans, peaks, cpus = [], [], [], []
            for _ in range(rounds):
                before = len(stub.log())
                cpu = time.process_time()
                started = time.perf_counter()
                model.step()
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
                this_round = _settled(stub, before)
                assert len(this_round) == agents, (len(this_round), agents)
                spans.append(max(s["finished"] for s in this_round) - min(s["started"] for s in this_round))
                peaks.append(_peak(this_round))
            return RoundTimes(walls, spans, cpus, max(peaks), agents, model.log.totals["invalid"])
        finally:
            model.close()


def _settled(stub, start: int) -> list[dict]:
    """Log entries from ``start`` once each has its finish time (set just after the reply)."""
    deadline = time.perf_counter() + 2.0
    while True:
        entries = stub.log()[start:]
        if all(s["finished"] is not None for s in entries) or time.perf_counter() > deadline:
            return entries
        time.sleep(0.005)


def _peak(entries: list[dict]) -> int:
    """Most requests in service at once among ``entries``."""
    events = sorted([(s["started"], 1) for s in entries] + [(s["finished"] or s["started"], -1) for s in entries])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def time_embedded(agents: int, rounds: int) -> dict:
    model = HvaeModel(llm_scenario(agents, rounds + 1, "embedded", None))
    decider = model.deciders["llm"]
    try:
        started = time.perf_counter()
        model.step()  # warm-up: model load, setup (2 calls per agent), one decision round
        warmup_s = time.perf_counter() - started
        calls_before = decider.counts["llm_calls"]
        invalid_before = decider.counts["llm_invalid"]
        started = time.perf_counter()
        for _ in range(rounds):
            model.step()
        elapsed = time.perf_counter() - started
        calls = decider.counts["llm_calls"] - calls_before
        return {
            "agents": agents,
            "rounds": rounds,
            "decisions": agents * rounds,
            "calls": calls,
            "invalid": decider.counts["llm_invalid"] - invalid_before,
            "elapsed_s": elapsed,
            "warmup_s": warmup_s,
        }
    finally:
        model.close()


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", "-n", type=int, default=32, help="LLM agents N (default 32)")
    parser.add_argument("--server-concurrency", "-c", type=int, default=16, help="server concurrency limit C (default 16)")
    parser.add_argument("--max-concurrency", type=int, default=16, help="backend max_concurrency (default 16)")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds (default 0.2)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3)")
    parser.add_argument("--sequential-rounds", type=int, default=1, help="timed rounds with max_concurrency 1 (default 1)")
    parser.add_argument("--in-process-stub", action="store_true",
                        help="run the stub in a thread of this process (default: its own process)")
    parser.add_argument("--skip-embedded", action="store_true", help="leave out the embedded-model measurement")
    parser.add_argument("--embedded-agents", type=int, default=4, help="embedded LLM agents (default 4)")
    parser.add_argument("--embedded-rounds", type=int, default=3, help="timed embedded rounds (default 3)")
    args = parser.parse_args(argv)

    n, c, m, latency = args.agents, args.server_concurrency, args.max_concurrency, args.latency
    width = min(c, m)
    ideal = math.ceil(n / width) * latency
    print(f"openai backend vs stub server: N={n} agents, server C={c}, max_concurrency={m}, latency={latency:.3f} s, "
          f"stub {'in this process' if args.in_process_stub else 'in its own process'}")
    print(f"  ideal decision round   ceil(N/min(C,max_concurrency)) x latency = {ideal:.3f} s")

    concurrent = time_openai_rounds(n, m, latency, c, args.rounds, args.in_process_stub)
    ratio = ideal / concurrent.best
    print(
        f"  concurrent round       best {concurrent.best:.3f} s, median {concurrent.median:.3f} s "
        f"over {args.rounds} rounds ({', '.join(f'{t:.3f}' for t in concurrent.wall_s)})"
    )
    print(
        f"  server side            span first request -> last reply: best {min(concurrent.server_span_s):.3f} s; "
        f"peak in service {concurrent.peak_parallel}"
    )
    cpu = statistics.median(concurrent.cpu_s)
    print(f"  client CPU per round   {cpu:.3f} s ({1000 * cpu / n:.1f} ms per decision, one event loop)")
    print(f"  ideal / actual         {ratio:.3f}  (goal >= {GOAL_IDEAL_RATIO})  {'PASS' if ratio >= GOAL_IDEAL_RATIO else 'FAIL'}")

    sequential = time_openai_rounds(n, 1, latency, c, args.sequential_rounds, args.in_process_stub)
    speedup = sequential.best / concurrent.best
    print(
        f"  sequential round       max_concurrency=1: best {sequential.best:.3f} s "
        f"(ideal {n * latency:.3f} s); peak in service {sequential.peak_parallel}"
    )
    print(f"  speed-up vs sequential {speedup:.2f}x  (goal >= {GOAL_SPEEDUP:.0f}x)  {'PASS' if speedup >= GOAL_SPEEDUP else 'FAIL'}")
    print(f"  invalid decisions      concurrent {concurrent.invalid}, sequential {sequential.invalid}")

    if not args.skip_embedded:
        print(f"embedded backend (SmolLM2-135M, llama.cpp, one call at a time): {args.embedded_agents} agents, "
              f"cache off, {args.embedded_rounds} timed rounds after a warm-up round", flush=True)
        result = time_embedded(args.embedded_agents, args.embedded_rounds)
        print(f"  warm-up (load + setup + 1 round, not counted) {result['warmup_s']:.1f} s")
        print(
            f"  {result['decisions']} decisions, {result['calls']} model calls, {result['invalid']} invalid "
            f"in {result['elapsed_s']:.1f} s"
        )
        print(
            f"  {result['decisions'] / result['elapsed_s']:.3f} decisions/s, "
            f"{result['calls'] / result['elapsed_s']:.3f} calls/s, "
            f"{result['elapsed_s'] / max(result['calls'], 1):.2f} s per call"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
