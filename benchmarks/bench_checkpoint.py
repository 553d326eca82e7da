"""Checkpoint cost: capture + atomic save, and validated load, of a mid-run model.

A run checkpoints after every flush (by default every round), so this is a per-round cost. It
builds ``ring_continuous`` at ``--agents`` agents, plays a few rounds, then times
:func:`hvae.simulation.checkpoint.capture` + :func:`~hvae.simulation.checkpoint.save` (JSON
manifest + ``.npz``, both synced, manifest renamed last) and
:func:`~hvae.simulation.checkpoint.load` (checksum and type validation) into a temporary folder::

    python benchmarks/bench_checkpoint.py                 # 1000 agents
    python benchmarks/bench_checkpoint.py --agents 10000

Times are the best of ``--repeat`` batches of ``--batch`` calls.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hvae.scenarios.loader import load_scenario
from hvae.simulation import checkpoint
from hvae.simulation.model import HvaeModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6, help="rounds played before checkpointing")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    model = HvaeModel(load_scenario("ring_continuous", [f"size={args.agents}", f"rounds={args.rounds}"]))
    for _ in range(args.rounds):
        model.step()
    rows = {"decisions": args.agents * args.rounds, "rounds": 10 * args.rounds, "value_changes": 0}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        save_s = load_s = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            for _ in range(args.batch):
                checkpoint.save(path, checkpoint.capture(model, rows))
            save_s = min(save_s, (time.perf_counter() - started) / args.batch)
            started = time.perf_counter()
            for _ in range(args.batch):
                checkpoint.load(path)
            load_s = min(load_s, (time.perf_counter() - started) / args.batch)
        size = sum(p.stat().st_size for p in path.iterdir())
    model.close()
    print(
        f"{args.agents} agents: capture + save {save_s * 1000:.1f} ms, load {load_s * 1000:.1f} ms, "
        f"{size / 1024:.0f} KiB on disk"
    )


if __name__ == "__main__":
    main()
