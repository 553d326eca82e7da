"""Population-scale throughput benchmark: hvae's full runner against a bare numpy kernel.

It builds a scenario in code — four equal groups of ``oracle`` deciders (altruistic, prosocial,
individualistic, competitive) on a Watts–Strogatz network, slider menus, history length 5 — and

1. times :func:`hvae.simulation.runner.play_scenario` end to end (model build, every round,
   decision/round records, parquet part files, consolidation, summary) into a temporary folder;
2. times a bare numpy kernel doing the same arithmetic on the same edges, angles and menus —
   matching, oracle argmax with random tie-breaks, decomposed-game payoffs, cumulative payoffs —
   with no recording and no file writes;
3. prints decisions/s for both, their ratio, and a verdict against the goals
   (>= 100,000 decisions/s and within 5x of the bare kernel).

Run it from the repository root with the project's interpreter::

    python benchmarks/bench_population.py                       # 1000 agents, 1000 rounds, all_edges
    python benchmarks/bench_population.py --matching random
    python benchmarks/bench_population.py --agents 200 --rounds 200 --repeat 3
    python benchmarks/bench_population.py --profile             # + top 25 functions (cProfile)
    python benchmarks/bench_population.py --decider surrogate   # surrogate agents (issue 23), see below

``--decider surrogate`` plays the four groups with the ``surrogate`` decider instead: a ``by: value``
policy (``--policy FILE``, or a built-in one: β 0.1, first-position bonus 0.5, reciprocity 0.5, 2%
invalid replies) with counterbalanced displays recorded per decision. The bare kernel is still the
oracle's arithmetic, so the ratio is only a scale and the payoff cross-check does not apply; the
goal is the throughput (>= 100,000 decisions/s).

Timings are the best of ``--repeat`` runs. The kernel draws its matching from the same random
stream the model uses, so both play the same pairs every round and make the same number of
decisions; oracle tie-breaks use their own draws.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from hvae.agents.deciders import argmax_random_ties
from hvae.scenarios.loader import validate_data
from hvae.scenarios.schema import Scenario
from hvae.simulation.matching import random_maximal_matching
from hvae.simulation.model import STREAMS, HvaeModel
from hvae.simulation.runner import play_scenario

GOAL_DECISIONS_PER_S = 100_000
GOAL_RATIO = 5.0
VALUES = ("altruistic", "prosocial", "individualistic", "competitive")
TIE_TOLERANCE = 1e-9  # same as hvae.agents.svo.UTILITY_TOLERANCE


# ---------------------------------------------------------------------------------- scenario
def build_scenario(
    agents: int, rounds: int, k: int, p: float, matching: str, flush_every: int, seed: int,
    decider: dict[str, Any] | str = "oracle",
) -> Scenario:
    """Four equal groups (counts differ by at most one; oracles unless ``decider``) on a Watts–Strogatz network."""
    base, extra = divmod(agents, len(VALUES))
    population = [
        {
            "name": value,
            "count": base + (1 if i < extra else 0),
            "value": value,
            "decider": decider,
        }
        for i, value in enumerate(VALUES)
    ]
    data: dict[str, Any] = {
        "name": "bench_population",
        "description": "Benchmark: four oracle groups on a small-world network, slider menus.",
        "seed": seed,
        "rounds": rounds,
        "population": [g for g in population if g["count"] > 0],
        "network": {"kind": "watts_strogatz", "k": k, "p": p},
        "matching": matching,
        "menus": {"kind": "slider"},
        "history": {"length": 5},
        "output": {"flush_every": flush_every},
    }
    return validate_data(data, "<bench_population>")


# ---------------------------------------------------------------------------------- hvae
@dataclass
class Timing:
    """Wall time of one side, the decisions it made, and side-specific details."""

    seconds: float
    decisions: int
    extra: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds > 0 else float("inf")


def time_hvae(scenario: Scenario) -> Timing:
    """One full ``play_scenario`` into a fresh temporary folder (writes included)."""
    with tempfile.TemporaryDirectory(prefix="hvae-bench-") as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        result = play_scenario(scenario, out)
        seconds = time.perf_counter() - start
        agents = pq.read_table(out / "agents.parquet", columns=["agent_id", "cumulative_payoff"])
        order = np.argsort(agents.column("agent_id").to_numpy())
        cumulative = agents.column("cumulative_payoff").to_numpy()[order]
        folder_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return Timing(
        seconds,
        int(result.summary["n_decisions"]),
        {
            "status": result.summary["status"],
            "rows": result.summary.get("n_decision_rows"),
            "cumulative": cumulative,
            "folder_mb": folder_bytes / 2**20,
        },
    )


def profile_hvae(scenario: Scenario, top: int = 25) -> str:
    """``play_scenario`` under cProfile; the ``top`` functions by cumulative time, as text."""
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="hvae-bench-prof-") as tmp:
        profiler.enable()
        play_scenario(scenario, Path(tmp) / "run")
        profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------- kernel
def bare_kernel(
    edges: np.ndarray,
    thetas_deg: np.ndarray,
    menus: list[np.ndarray],
    rounds: int,
    matching: str,
    matching_rng: np.random.Generator,
    decision_rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """The model's arithmetic and nothing else; returns (cumulative payoffs, decisions made).

    Per round: match, oracle argmax (U = cos θ·s + sin θ·o, random tie-breaks), decomposed-game
    payoffs (own "self" per game played + what partners gave) via ``np.bincount``, accumulate.
    """
    n = thetas_deg.size
    radians = np.radians(thetas_deg)
    cos_t, sin_t = np.cos(radians), np.sin(radians)
    u_all = np.ascontiguousarray(edges[:, 0])
    v_all = np.ascontiguousarray(edges[:, 1])
    cumulative = np.zeros(n)
    decisions = 0
    for r in range(rounds):
        options = menus[r % len(menus)]
        if matching == "all_edges":
            u, v = u_all, v_all
        else:
            priorities = matching_rng.permutation(u_all.size).astype(np.int64)
            # the matching itself is already bare numpy: share hvae's function
            pairs = random_maximal_matching(edges, n, matching_rng, priorities=priorities)
            u, v = pairs[:, 0], pairs[:, 1]
        n_games = np.bincount(u, minlength=n) + np.bincount(v, minlength=n)
        deciding = np.flatnonzero(n_games)
        utilities = np.outer(cos_t[deciding], options[:, 0]) + np.outer(sin_t[deciding], options[:, 1])
        top = utilities.max(axis=1, keepdims=True)
        is_top = utilities >= top - TIE_TOLERANCE * np.maximum(1.0, np.abs(top))
        pick = np.where(is_top, decision_rng.random(utilities.shape), -1.0).argmax(axis=1)
        kept = np.zeros(n)
        given = np.zeros(n)
        kept[deciding] = options[pick, 0]
        given[deciding] = options[pick, 1]
        received = np.bincount(u, given[v], n) + np.bincount(v, given[u], n)
        cumulative += received + n_games * kept
        decisions += deciding.size
    return cumulative, decisions


def time_kernel(scenario: Scenario, model: HvaeModel) -> Timing:
    """Run :func:`bare_kernel` on ``model``'s edges, angles and menus (setup not timed)."""
    edges = model.edges.astype(np.int64)
    thetas = model.state.theta.copy()
    menus = [m.options.astype(float) for m in model.schedule.menus]
    # The model's matching stream, re-derived: both sides play the very same pairs.
    seeds = np.random.SeedSequence(model.seed).spawn(len(STREAMS))
    matching_rng = np.random.default_rng(seeds[STREAMS.index("matching")])
    decision_rng = np.random.default_rng(model.seed + 1)
    start = time.perf_counter()
    cumulative, decisions = bare_kernel(
        edges, thetas, menus, scenario.rounds, scenario.matching, matching_rng, decision_rng
    )
    seconds = time.perf_counter() - start
    return Timing(seconds, decisions, {"cumulative": cumulative})


def check_kernel_tiebreak() -> None:
    """Guard: the kernel's inline tie-break is hvae's ``argmax_random_ties`` (same draws)."""
    scores = np.array([[1.0, 3.0, 3.0], [2.0, 1.0, 0.0]])
    a = argmax_random_ties(scores, np.random.default_rng(0))
    top = scores.max(axis=1, keepdims=True)
    is_top = scores >= top - TIE_TOLERANCE * np.maximum(1.0, np.abs(top))
    b = np.where(is_top, np.random.default_rng(0).random(scores.shape), -1.0).argmax(axis=1)
    assert np.array_equal(a, b), "kernel tie-break diverged from hvae's argmax_random_ties"


# ---------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--k", type=int, default=6, help="Watts–Strogatz neighbours (even)")
    parser.add_argument("--p", type=float, default=0.1, help="Watts–Strogatz rewiring probability")
    parser.add_argument("--matching", choices=("all_edges", "random"), default="all_edges")
    parser.add_argument("--flush-every", type=int, default=50, help="output.flush_every (rounds)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the best is reported")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also profile hvae (top 25, cumulative)")
    parser.add_argument("--decider", choices=("oracle", "surrogate"), default="oracle")
    parser.add_argument("--policy", type=Path, help="with --decider surrogate: a by-value policy file (default: built in)")
    return parser.parse_args(argv)


def surrogate_decider(policy: Path | None, folder: Path) -> dict[str, Any]:
    """The ``surrogate`` decider config: ``policy``, or a built-in by-value policy written to ``folder``."""
    from hvae.agents.surrogate import PolicyUnit, SurrogatePolicy, value_key
    from hvae.agents.svo import CATEGORY_ANGLES

    if policy is None:
        units = {value_key(CATEGORY_ANGLES[v]): PolicyUnit(theta=CATEGORY_ANGLES[v], beta=0.1, position=0.5, reciprocity=0.5,
                                                            invalid_rate=0.02) for v in VALUES}
        policy = folder / "bench_policy.yaml"
        SurrogatePolicy(by="value", units=units, provenance={"made_by": "bench_population"}).save(policy)
    return {"kind": "surrogate", "policy": str(policy)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scratch = tempfile.TemporaryDirectory(prefix="hvae-bench-policy-")
    decider = surrogate_decider(args.policy, Path(scratch.name)) if args.decider == "surrogate" else "oracle"
    scenario = build_scenario(
        args.agents, args.rounds, args.k, args.p, args.matching, args.flush_every, args.seed, decider
    )
    check_kernel_tiebreak()

    start = time.perf_counter()
    model = HvaeModel(scenario)  # the kernel's inputs; also shows what model setup costs
    build_s = time.perf_counter() - start

    hvae = min((time_hvae(scenario) for _ in range(max(1, args.repeat))), key=lambda t: t.seconds)
    kernel = min(
        (time_kernel(scenario, model) for _ in range(max(1, args.repeat))), key=lambda t: t.seconds
    )

    print(
        f"scenario: {model.n_agents} agents, {len(model.edges)} edges (watts_strogatz k={args.k} "
        f"p={args.p}), {args.rounds} rounds, matching={args.matching}, "
        f"flush_every={args.flush_every}, repeat={args.repeat}"
    )
    print(
        f"hvae   play_scenario: {hvae.seconds:8.3f} s  {hvae.decisions:>10,} decisions  "
        f"{hvae.rate:>12,.0f} decisions/s  (incl. model build {build_s:.3f} s; "
        f"status {hvae.extra['status']}, {hvae.extra['rows']:,} rows, "
        f"folder {hvae.extra['folder_mb']:.1f} MiB)"
    )
    print(
        f"bare numpy kernel  : {kernel.seconds:8.3f} s  {kernel.decisions:>10,} decisions  "
        f"{kernel.rate:>12,.0f} decisions/s"
    )
    ratio = hvae.seconds / kernel.seconds
    print(f"ratio hvae time / kernel time: {ratio:.2f}x  (per decision: {kernel.rate / hvae.rate:.2f}x)")
    fast = hvae.rate >= GOAL_DECISIONS_PER_S
    if args.decider == "surrogate":  # the kernel is the oracle's: a scale, not a cross-check
        print(f"cross-check: decisions {'equal' if hvae.decisions == kernel.decisions else 'DIFFER'} (payoffs differ by design)")
        print(f"verdict: {'PASS' if fast else 'FAIL'} — throughput {hvae.rate:,.0f}/s "
              f"{'>=' if fast else '<'} {GOAL_DECISIONS_PER_S:,}/s goal (surrogate deciders)")
    else:
        diff = np.abs(hvae.extra["cumulative"] - kernel.extra["cumulative"])
        scale = max(1.0, float(np.abs(kernel.extra["cumulative"]).max()))
        print(
            f"cross-check: decisions {'equal' if hvae.decisions == kernel.decisions else 'DIFFER'}; "
            f"final cumulative payoffs max |diff| = {diff.max():.3g} (relative {diff.max() / scale:.2g}; "
            "non-zero only where oracle ties were broken differently)"
        )
        close = ratio <= GOAL_RATIO
        verdict = "PASS" if fast and close else "FAIL"
        print(
            f"verdict: {verdict} — throughput {hvae.rate:,.0f}/s "
            f"{'>=' if fast else '<'} {GOAL_DECISIONS_PER_S:,}/s goal; "
            f"{ratio:.2f}x of the bare kernel {'<=' if close else '>'} {GOAL_RATIO:g}x goal"
        )
    if args.profile:
        print("\n--- cProfile of play_scenario (top 25 by cumulative time) ---")
        print(profile_hvae(scenario))
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
