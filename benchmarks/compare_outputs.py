"""Same seed, same tables: run every shipped scenario and compare its run folder with a saved one.

A refactoring that keeps behaviour must leave every table of every shipped scenario unchanged. This
script runs each shipped scenario (sweep files excluded) with its own seed and writes the run
folders under ``OUT``; given ``--against BASE`` it compares every ``*.parquet`` table of each run
with the one in ``BASE`` (same columns, same rows, same values; floats exactly equal; wall-clock latencies excepted) and exits 1 on
any difference. LLM groups are played by the ``replay`` backend (scripted letters, no model, cache
off), so the comparison needs no model and is exact::

    python benchmarks/compare_outputs.py /tmp/before            # on the old code
    python benchmarks/compare_outputs.py /tmp/after --against /tmp/before   # on the new code
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from hvae.scenarios.loader import load_scenario, shipped_scenarios

try:  # a run folder as `hvae run` makes it (with groups.parquet)
    from hvae.experiments.runs import run_to_folder
except ImportError:  # older code: the same function was called run_scenario (before that, in the runner)
    try:
        from hvae.experiments.runs import run_scenario as run_to_folder
    except ImportError:
        from hvae.simulation.runner import run_scenario as run_to_folder

#: Columns that measure the machine, not the model (wall-clock seconds).
VOLATILE = ("latency_s",)

#: Extra runs beyond the shipped scenarios as they stand: every value-update rule, on a shipped scenario.
VARIANTS = {
    f"ring_continuous+{rule}": ("ring_continuous", [f"dynamics={{rule: {rule}, every: 6, strength: 2}}"])
    for rule in ("imitation", "moran", "influence")
}

#: Shipped scenarios too large to replay whole for a comparison: played small (their tables are
#: compared all the same). The million-agent example is its own benchmark (bench_million.py).
SMALL = {"surrogate_million": ["size=20000", "rounds=10", "records.sample_agents=500"]}

#: Scripted replies for every LLM backend: each agent's replay client answers them in order (two
#: setup answers, then letters), more than a shipped scenario asks, so no run exhausts its script.
REPLIES = ", ".join(['"I value what my value says."', '"Choose by my value."'] + ['"%s"' % letter for letter in "ACBADEBICFGH" * 5])


def replay_backends(path: Path) -> str | None:
    """A ``backends=`` override giving every backend the scenario file names a replay backend of the
    same name (None: the file names none), so its groups keep their backend names."""
    backends = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("backends") or {}
    if not backends:
        return None
    return "{%s}" % ", ".join(f"{name}: {{kind: replay, replies: [{REPLIES}]}}" for name in backends)


def scenario_names() -> list[str]:
    """The shipped scenarios that are scenarios (a sweep file names a base ``scenario:`` instead)."""
    return [name for name, path in sorted(shipped_scenarios().items()) if "\nscenario:" not in path.read_text()]


def runs() -> dict[str, tuple[str, list[str]]]:
    """Run name -> (shipped scenario, overrides): every shipped scenario, then the variants."""
    plan = {}
    for name in scenario_names():
        overrides = ["cache.enabled=false", *SMALL.get(name, [])]
        backends = replay_backends(shipped_scenarios()[name])
        if backends is not None:
            overrides.append(f"backends={backends}")
        plan[name] = (name, overrides)
    plan.update(VARIANTS)
    return plan


def run_all(out: Path) -> list[Path]:
    """Run every planned run into ``out/<name>``; LLM backends replaced by replay."""
    done = []
    for name, (scenario, overrides) in runs().items():
        result = run_to_folder(load_scenario(scenario, overrides), out / name)
        if result.summary["status"] not in ("complete", "complete_with_warnings"):
            raise SystemExit(f"{name}: run ended {result.summary['status']}")
        done.append(out / name)
        print(f"{name}: {result.summary['rounds_completed']} rounds -> {out / name}")
    return done


def compare(out: Path, base: Path) -> list[str]:
    """Every difference between the parquet tables of ``out`` and ``base`` (empty: identical)."""
    problems = []
    for name in runs():
        if not (base / name).exists() and (out / name).exists():
            print(f"{name}: new in this code (no run in {base}): not compared")
            continue
        tables = sorted(p.relative_to(base / name) for p in (base / name).rglob("*.parquet"))
        if not tables:
            problems.append(f"{name}: no tables in {base / name}")
        for table in tables:
            try:
                new, old = (pd.read_parquet(root / name / table) for root in (out, base))
                pd.testing.assert_frame_equal(
                    new.drop(columns=list(VOLATILE), errors="ignore"),
                    old.drop(columns=list(VOLATILE), errors="ignore"),
                    check_exact=True,
                )
                print(f"{name}/{table}: identical")
            except (AssertionError, FileNotFoundError) as error:
                problems.append(f"{name}/{table}: {str(error).splitlines()[0]}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for this code's run folders (must not exist)")
    parser.add_argument("--against", type=Path, help="run folders written by the code to compare with")
    args = parser.parse_args()
    run_all(args.out)
    if args.against is not None:
        problems = compare(args.out, args.against)
        for line in problems:
            print("DIFFERENT", line)
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
