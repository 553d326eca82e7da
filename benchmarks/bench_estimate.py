"""Dry-run estimate vs actual tokens: the quickstart and a 1,000-agent population (issue 22's goal: within 10 %).

Both runs are the real command as a user types it (``hvae run … --no-cache --quiet --no-report``,
fresh processes). A run counts its LLM use with the dry run's own code before it starts and keeps
that in ``summary.json`` (``llm_estimate``, identical to what ``hvae run … --dry-run`` prints);
the script prints it beside what the run used (``llm_calls``, ``tokens_in``, ``tokens_out``):

1. **quickstart** — 8 embedded SmolLM2 agents, 6 rounds (a few minutes on 2 busy cores). Tokens
   are counted with the model's own tokenizer and chat template, so the gap is the replies,
   which the dry run expects at the length their prompts ask for.
2. **1,000 LLM agents** — ``validity_demo``'s population scaled to 250 LLM agents per value (plus
   its 4 rule agents) on a small-world network, ``all_edges``, against ``hvae serve-oracle`` in
   its own process. That server bills as a ChatML chat server does (1 token per 4 characters
   plus 5 template tokens a message and 3 for the reply; the dry run's estimate for an ``openai``
   backend assumes 4 a message) and describes a value in one sentence (the prompt asks for two or
   three), so this comparison checks the calls and the replies' length, not a tokenizer.

    python benchmarks/bench_estimate.py                      # both (about 5 minutes on 2 cores)
    python benchmarks/bench_estimate.py --skip-quickstart --agents 1000 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.10  # |estimate - actual| / actual of all tokens


def hvae_command() -> list[str]:
    executable = Path(sys.executable).with_name("hvae")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "hvae.cli.main"]


def run_summary(scenario: str, out: Path) -> tuple[dict, float]:
    """``hvae run SCENARIO`` into ``out``; its summary and the wall-clock seconds."""
    started = time.perf_counter()
    done = subprocess.run([*hvae_command(), "run", scenario, "--out", str(out), "--no-cache", "--quiet", "--no-report"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"hvae run {scenario} failed: {done.stderr.strip()[-500:]}")
    return json.loads((out / "summary.json").read_text()), time.perf_counter() - started


def reply_lengths(run: Path) -> str:
    """Mean completion tokens per kind of call in the run's transcript, beside what the dry run expects."""
    from hvae.agents.llm.estimate import DESCRIPTION_SENTENCES, GOAL_SENTENCES, TOKENS_PER_SENTENCE

    totals: dict[str, list[int]] = {}
    with (run / "transcripts.jsonl").open() as lines:
        for line in lines:
            call = json.loads(line)
            totals.setdefault(call["phase"], []).append(call["tokens_out"] or 0)
    expected = {"value": DESCRIPTION_SENTENCES * TOKENS_PER_SENTENCE, "goal": GOAL_SENTENCES * TOKENS_PER_SENTENCE}
    return ", ".join(f"{phase} {sum(v) / len(v):.1f}" + (f" (expected {expected[phase]:.1f})" if phase in expected else "")
                     for phase, v in totals.items())


def compare(label: str, summary: dict, seconds: float, run: Path) -> bool:
    estimate = summary["llm_estimate"]
    expected = estimate["prompt_tokens"] + estimate["completion_tokens"]
    at_most = estimate["prompt_tokens_at_most"] + estimate["completion_tokens_at_most"]
    actual = summary["tokens_in"] + summary["tokens_out"]
    error = expected / actual - 1
    ok = abs(error) <= GOAL
    print(f"{label} ({seconds:.0f} s): estimated {estimate['calls']:,} calls, {estimate['prompt_tokens']:,} prompt + "
          f"{estimate['completion_tokens']:,} completion tokens (at most {estimate['prompt_tokens_at_most']:,} + "
          f"{estimate['completion_tokens_at_most']:,}); actual {summary['llm_calls']:,} calls, {summary['tokens_in']:,} + "
          f"{summary['tokens_out']:,}")
    print(f"    all tokens: expected {expected:,} vs actual {actual:,} = {error:+.1%} "
          f"(prompt {estimate['prompt_tokens'] / summary['tokens_in'] - 1:+.1%}, completion "
          f"{estimate['completion_tokens'] / max(summary['tokens_out'], 1) - 1:+.1%}); at most {at_most / actual - 1:+.1%}; "
          f"counted: {estimate['backends'][0]['tokens_counted']}  [goal within {GOAL:.0%}: {'PASS' if ok else 'FAIL'}]")
    print(f"    mean reply tokens: {reply_lengths(run)}")
    return ok


def thousand_agents(base_url: str, agents: int, rounds: int) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / "validity_demo.yaml").read_text())
    for group in data["population"]:
        if group["name"].startswith("llm_"):
            group["count"] = agents // 4
    data.update(name=f"estimate_{agents}", rounds=rounds, network={"kind": "watts_strogatz", "k": 4, "p": 0.2},
                matching="all_edges")
    data["backends"]["oracle_server"]["base_url"] = base_url
    return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-quickstart", action="store_true", help="only the large population")
    parser.add_argument("--agents", type=int, default=1000, help="LLM agents of the large population (default 1,000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the large population (default 6)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_quickstart:
            summary, seconds = run_summary("quickstart", Path(tmp) / "quickstart")
            results.append(compare("1. quickstart", summary, seconds, Path(tmp) / "quickstart"))
        port = free_port()
        server = subprocess.Popen([*hvae_command(), "serve-oracle", "--port", str(port), "--beta", "1"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if "oracle server" not in (server.stdout.readline() if server.stdout else ""):
                raise RuntimeError("hvae serve-oracle did not start")
            path = Path(tmp) / "thousand.yaml"
            path.write_text(yaml.safe_dump(thousand_agents(f"http://127.0.0.1:{port}/v1", args.agents, args.rounds)))
            summary, seconds = run_summary(str(path), Path(tmp) / "thousand")
            results.append(compare(f"2. {args.agents:,} LLM agents, {args.rounds} rounds", summary, seconds, Path(tmp) / "thousand"))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
