"""Embedded-model speed and memory: decisions per second and the worker's RSS, round by round.

Runs a population of embedded-LLM agents (SmolLM2-135M-Instruct through llama.cpp in its worker
process, the backend's defaults: one-letter grammar, prefix cache) on slider menus, every agent
deciding every round, with the response cache off. The setup phase (value description and goal,
two calls per agent, free text) is timed apart from the decisions, which are what a run makes
most of. After each round it records the worker's resident memory, so a cache that ignores its
cap shows as growth.

    python benchmarks/bench_embedded.py                       # 8 agents, 12 rounds
    python benchmarks/bench_embedded.py --rounds 24 --prompt-cache-mb 256 --threads 2

Goal (issue 8): at least 1.5 decisions/s on 2 cores. Prints PASS/FAIL beside it; never asserts.
"""

from __future__ import annotations

import argparse
import os
import time

import psutil

from hvae.scenarios.loader import validate_data
from hvae.simulation.model import HvaeModel

GOAL_DECISIONS_PER_S = 1.5


def scenario(agents: int, rounds: int, backend: dict) -> dict:
    per_value = max(1, agents // 4)
    values = ["altruistic", "prosocial", "individualistic", "competitive"]
    return {
        "name": "bench_embedded",
        "seed": 7,
        "rounds": rounds,
        "population": [
            {"name": f"llm_{v}", "count": per_value, "value": v, "decider": {"kind": "llm", "backend": "embedded"}}
            for v in values
        ],
        "network": {"kind": "complete"},
        "matching": "random",
        "menus": {"kind": "slider"},
        "history": {"length": 3},
        "backends": {"embedded": {"kind": "embedded", **backend}},
        "cache": {"enabled": False},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=8, help="LLM agents, split over the four values (default 8)")
    parser.add_argument("--rounds", type=int, default=12, help="rounds (default 12)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: the backend's default)")
    parser.add_argument("--prompt-cache-mb", type=int, help="prefix-cache cap (default: the backend's default)")
    args = parser.parse_args(argv)
    backend: dict = {}
    if args.threads:
        backend["n_threads"] = args.threads
    if args.prompt_cache_mb is not None:
        backend["prompt_cache_mb"] = args.prompt_cache_mb
    model = HvaeModel(validate_data(scenario(args.agents, args.rounds, backend), "bench"))
    try:
        started = time.perf_counter()
        model.setup_llm_agents()
        setup_s = time.perf_counter() - started
        client = next(iter(model.llm_pool._clients.values()))._raw
        worker = psutil.Process(client.worker_pid)
        setup_stats = dict(client.stats)
        rss = [worker.memory_info().rss]
        decisions = 0
        started = time.perf_counter()
        for _ in range(args.rounds):
            before = model.log.totals["decisions"]
            model.step()
            decisions += model.log.totals["decisions"] - before
            rss.append(worker.memory_info().rss)
        elapsed = time.perf_counter() - started
        stats = {k: client.stats[k] - setup_stats[k] for k in client.stats}
    finally:
        model.close()
    rate = decisions / elapsed
    mb = [r / 2**20 for r in rss]
    print(f"embedded benchmark: {args.agents} agents, {args.rounds} rounds, {os.cpu_count()} cores, backend {backend or 'defaults'}")
    print(f"  setup: {setup_stats['requests']} calls in {setup_s:.1f} s ({setup_stats['completion_tokens']} tokens generated)")
    print(f"  decisions: {decisions} in {elapsed:.1f} s = {rate:.2f} decisions/s  (goal >= {GOAL_DECISIONS_PER_S}) "
          f"{'PASS' if rate >= GOAL_DECISIONS_PER_S else 'FAIL'}")
    requests = max(stats["requests"], 1)
    print(f"  per decision call: {stats['prompt_tokens'] / requests:.0f} prompt tokens, "
          f"{stats['reused_tokens'] / requests:.0f} restored from the prefix cache, "
          f"{stats['completion_tokens'] / requests:.1f} generated, {stats['compute_s'] / requests:.3f} s in llama.cpp")
    print(f"  worker RSS (MB) after setup and each round: {' '.join(f'{m:.0f}' for m in mb)}")
    print(f"  worker RSS growth over the rounds: {mb[-1] - mb[0]:+.0f} MB (peak {max(mb):.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
