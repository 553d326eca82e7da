"""LLM concurrency benchmark: how close LLM populations get to the server's limit (issue 22's figures).

Every figure is measured against the stub server of ``tests/llm_stub_server.py`` run in its own
process (``--stub`` names another script with the same interface: ``--latency S --max-parallel C``,
first stdout line the base URL, ``GET /stub/stats``), with the ``openai`` backend, ``all_edges``
matching (every agent decides once a round), ``order: fixed``, cache off. Each configuration runs
in a fresh child process of this script, so resident memory is its own. One run prints, side by
side:

1. **client ceiling** — N=``--ceiling-agents`` (2,000) on a ring, ``max_concurrency`` 256, server
   at zero latency: decisions per second over a timed round (setup done) and the client's CPU per
   decision (the stub's CPU is in its own process). Goal ≥ 1,000 decisions/s, ≤ 1 ms CPU.
2. **10,000 LLM agents** — setup time (progress on stderr), one decision round (goal ≤ 10 s) and
   resident memory per LLM agent beyond a rule-agent population of the same size and network
   (goal ≤ 100 KB).
3. **per decision vs population** — round time per decision at 1,000 and at 4,000 agents (goal:
   4,000 within 1.3× of 1,000).
4. **rounds vs ideal** — the default round (N=32 on a complete graph, server C=16,
   ``max_concurrency`` 16, 200 ms; goal ≥ 0.9 of ideal) and N=1,000 on a ring (C=256, 256, 50 ms;
   goal ≥ 0.8), where ideal = ceil(N / min(C, max_concurrency)) × latency; the best of
   ``--rounds`` timed rounds counts, and the server's own span (first request in → last reply
   out) is shown beside it.
5. ``--embedded`` adds the embedded model (SmolLM2-135M in-process, one call at a time).

Run it from the repository root with the project's interpreter::

    python benchmarks/bench_llm_concurrency.py                 # all figures (a few minutes on 2 cores)
    python benchmarks/bench_llm_concurrency.py --quick         # smaller populations, same layout

Timings are wall-clock (``time.perf_counter``) and CPU (``time.process_time``) of the client
process; on a shared machine they are lower bounds of what the code can do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "llm_stub_server.py"

GOALS = {"ceiling": 1000.0, "cpu_ms": 1.0, "round_10k_s": 10.0, "kb_per_agent": 100.0, "growth": 1.3,
         "default_ratio": 0.9, "large_ratio": 0.8}


# ---------------------------------------------------------------------------------- the stub
class ProcessStub:
    """The stub server in a child process; stats come from ``GET /stub/stats``."""

    def __init__(self, script: Path, latency: float, max_parallel: int | None) -> None:
        self.args = [str(script), "--latency", str(latency)]
        if max_parallel:
            self.args += ["--max-parallel", str(max_parallel)]
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> ProcessStub:
        self.process = subprocess.Popen([sys.executable, *self.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the stub process has used so far."""
        import psutil

        times = psutil.Process(self.process.pid).cpu_times() if self.process is not None else None
        return times.user + times.system if times is not None else 0.0

    def log(self) -> list[dict]:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stub/stats", timeout=30) as reply:
            return json.load(reply).get("log", [])


# ---------------------------------------------------------------------------------- one configuration (child)
def scenario(agents: int, network: dict, backend: dict | None, rounds: int, llm: bool = True):
    from hvae.scenarios.loader import validate_data

    decider = {"kind": "llm", "backend": "srv", "order": "fixed", "reasks": 1} if llm else {"kind": "oracle"}
    data = {
        "name": "bench-llm", "seed": 11, "rounds": rounds,
        "population": [{"name": "llm", "count": agents, "value": "prosocial", "decider": decider}],
        "network": network, "matching": "all_edges", "menus": {"kind": "slider"}, "cache": {"enabled": False},
    }
    if backend is not None:
        data["backends"] = {"srv": backend}
    return validate_data(data, "bench")


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def measure(spec: dict) -> dict:
    """One configuration in this (child) process: setup, then timed rounds; returns the figures."""
    import gc

    from hvae.simulation.model import HvaeModel

    n, rounds = spec["agents"], spec["rounds"]
    network = {"kind": "complete"} if spec.get("complete") else {"kind": "ring_lattice", "k": 2}
    if not spec.get("llm", True):  # the rule-agent baseline: same population size and network
        model = HvaeModel(scenario(n, network, None, 2, llm=False))
        model.step()
        gc.collect()
        return {"rss": _rss()}
    with ProcessStub(Path(spec["stub"]), spec["latency"], spec.get("server_c")) as stub:
        backend = {"kind": "openai", "base_url": stub.base_url, "model": "stub", "timeout_s": 120.0,
                   "retries": 0, "backoff_s": 0.0, "max_concurrency": spec["max_concurrency"]}
        model = HvaeModel(scenario(n, network, backend, rounds + 1))
        try:
            started, last = time.perf_counter(), [0.0]

            def progress(done: int, total: int) -> None:
                now = time.perf_counter()
                if spec.get("show_setup") and (now - last[0] > 1.0 or done == total):
                    last[0] = now
                    print(f"\r    setup {done}/{total} agents, {now - started:.0f} s", end="", file=sys.stderr, flush=True)

            model.setup_llm_agents(progress)
            if spec.get("show_setup"):
                print(file=sys.stderr)
            setup_s = time.perf_counter() - started
            walls, cpus, spans, stub_cpus = [], [], [], []
            for _ in range(rounds):
                before = len(stub.log()) if spec.get("span") else 0
                stub_cpu = stub.cpu_s()
                cpu, wall = time.process_time(), time.perf_counter()
                model.step()
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                stub_cpus.append(stub.cpu_s() - stub_cpu)
                if spec.get("span"):
                    entries = [e for e in stub.log()[before:] if e.get("finished") is not None]
                    spans.append(max(e["finished"] for e in entries) - min(e["started"] for e in entries))
            gc.collect()
            return {"setup_s": setup_s, "walls": walls, "cpus": cpus, "spans": spans, "stub_cpus": stub_cpus, "rss": _rss(),
                    "invalid": model.log.totals["invalid"], "decisions": n}
        finally:
            model.close()


def run_child(spec: dict) -> dict:
    """:func:`measure` in a fresh interpreter (its memory is its own)."""
    process = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], stdout=subprocess.PIPE, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({process.returncode}) for {spec}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def time_embedded(agents: int, rounds: int) -> dict:
    from hvae.simulation.model import HvaeModel

    model = HvaeModel(scenario(agents, {"kind": "complete"}, {"kind": "embedded"}, rounds + 1))
    decider = model.deciders["llm"]
    try:
        model.step()  # warm-up: model load, setup, one decision round
        calls_before = decider.counts["llm_calls"]
        started = time.perf_counter()
        for _ in range(rounds):
            model.step()
        elapsed = time.perf_counter() - started
        return {"decisions": agents * rounds, "calls": decider.counts["llm_calls"] - calls_before, "elapsed_s": elapsed}
    finally:
        model.close()


# ---------------------------------------------------------------------------------- main
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--stub", default=str(STUB), help="stub server script (default tests/llm_stub_server.py)")
    parser.add_argument("--quick", action="store_true", help="smaller populations (1,000 / 2,000 instead of 2,000 / 10,000)")
    parser.add_argument("--ceiling-agents", type=int, default=2000)
    parser.add_argument("--big-agents", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration (default 3; 1 for the biggest)")
    parser.add_argument("--embedded", action="store_true", help="add the embedded model (slow)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return 0
    stub = args.stub
    ceiling_n, big_n = (1000, 2000) if args.quick else (args.ceiling_agents, args.big_agents)
    print(f"LLM concurrency benchmark (stub: {Path(stub).name} in its own process; client figures are this process's)")

    # 1. client ceiling
    r = run_child({"stub": stub, "agents": ceiling_n, "max_concurrency": 256, "latency": 0.0, "rounds": args.rounds})
    best = min(r["walls"])
    cpu_ms = 1000 * min(r["cpus"]) / ceiling_n
    rate = ceiling_n / best
    print(f"1. client ceiling      N={ceiling_n}, max_concurrency 256, zero latency: {rate:,.0f} decisions/s "
          f"(round {best:.2f} s), client CPU {cpu_ms:.2f} ms/decision  "
          f"[goal >= {GOALS['ceiling']:,.0f}/s: {verdict(rate >= GOALS['ceiling'])}; <= 1 ms: {verdict(cpu_ms <= GOALS['cpu_ms'])}]")

    # 2. the big population: round and memory
    big = run_child({"stub": stub, "agents": big_n, "max_concurrency": 256, "latency": 0.0, "rounds": 1, "show_setup": True})
    base = run_child({"agents": big_n, "llm": False, "rounds": 1})
    kb = (big["rss"] - base["rss"]) / big_n / 1024
    round_s = min(big["walls"])
    print(f"2. {big_n:,} LLM agents   setup {big['setup_s']:.1f} s ({2 * big_n / big['setup_s']:,.0f} calls/s); one decision round "
          f"{round_s:.2f} s [goal <= {GOALS['round_10k_s']:.0f} s: {verdict(round_s <= GOALS['round_10k_s'])}]; "
          f"memory {kb:.0f} KB per LLM agent beyond {big_n:,} rule agents (RSS {big['rss'] / 2**20:.0f} vs {base['rss'] / 2**20:.0f} MB) "
          f"[goal <= {GOALS['kb_per_agent']:.0f} KB: {verdict(kb <= GOALS['kb_per_agent'])}]")

    # 3. time per decision vs population
    small = run_child({"stub": stub, "agents": 1000, "max_concurrency": 256, "latency": 0.0, "rounds": args.rounds})
    large = run_child({"stub": stub, "agents": 4000, "max_concurrency": 256, "latency": 0.0, "rounds": max(1, args.rounds - 1)})
    per_small = 1000 * min(small["walls"]) / 1000
    per_large = 1000 * min(large["walls"]) / 4000
    growth = per_large / per_small
    print(f"3. per decision        1,000 agents {per_small:.3f} ms, 4,000 agents {per_large:.3f} ms: x{growth:.2f} "
          f"[goal <= {GOALS['growth']}: {verdict(growth <= GOALS['growth'])}]")

    # 4. rounds vs ideal
    for label, n, c, latency, goal, complete in (("default round", 32, 16, 0.2, GOALS["default_ratio"], True),
                                                  ("large round", 1000, 256, 0.05, GOALS["large_ratio"], False)):
        r = run_child({"stub": stub, "agents": n, "max_concurrency": c, "server_c": c, "latency": latency,
                       "rounds": args.rounds, "span": True, "complete": complete})
        ideal = math.ceil(n / c) * latency
        best = min(r["walls"])
        ratio = ideal / best
        k = r["walls"].index(best)
        print(f"4. {label:<19} N={n}, C={c}, max_concurrency {c}, {1000 * latency:.0f} ms: best {best:.3f} s vs ideal {ideal:.3f} s "
              f"= {ratio:.2f} of ideal (server span {min(r['spans']):.3f} s; invalid {r['invalid']}) "
              f"[goal >= {goal}: {verdict(ratio >= goal)}]")
        # the CPU arithmetic: what the round's two processes used, and the share of a core each got
        print(f"   {'':<19} CPU in that round: client {r['cpus'][k]:.3f} s ({1000 * r['cpus'][k] / n:.2f} ms/decision, "
              f"{r['cpus'][k] / best:.0%} of a core), stub {r['stub_cpus'][k]:.3f} s ({1000 * r['stub_cpus'][k] / n:.2f} ms/request, "
              f"{r['stub_cpus'][k] / best:.0%} of a core); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    if args.embedded:
        e = time_embedded(4, 2)
        print(f"5. embedded model      {e['decisions']} decisions, {e['calls']} calls in {e['elapsed_s']:.1f} s: "
              f"{e['elapsed_s'] / max(e['calls'], 1):.2f} s per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
