"""The dry run: calls and tokens counted before a run, checked against a real run on the stub server."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import assert_user_error, make_scenario
from llm_stub_server import StubServer

from hvae.agents.llm.estimate import TOKENS_PER_MESSAGE, BackendEstimate, TokenCounter, estimate_decider
from hvae.simulation.runner import play_scenario

pytestmark = pytest.mark.llm

AGENTS, ROUNDS = 5, 3


def _data(base_url: str) -> dict:
    return {
        "name": "dry", "seed": 3, "rounds": ROUNDS,
        "population": [{"name": "llm", "count": AGENTS, "value": "prosocial",
                        "decider": {"kind": "llm", "backend": "srv", "order": "fixed", "reasks": 0}}],
        "network": {"kind": "complete"}, "matching": "all_edges", "menus": {"kind": "slider"},
        "backends": {"srv": {"kind": "openai", "base_url": base_url, "model": "stub", "retries": 0}},
        "cache": {"enabled": False},
    }


def test_character_estimate_counts_as_stated() -> None:
    messages = [("user", "x" * 40), ("assistant", "y" * 7)]
    assert TokenCounter().count(messages) == 40 // 4 + 7 // 4 + 2 * TOKENS_PER_MESSAGE


def test_dry_run_counts_the_calls_a_run_makes_and_its_tokens_within_the_stated_error(tmp_path) -> None:
    from hvae.cli.dry_run import estimate_run, estimate_vs_actual

    with StubServer() as server:
        scenario = make_scenario(**_data(server.base_url))
        estimate = estimate_run(scenario, price_in=2.0, price_out=8.0)
        result = play_scenario(scenario, tmp_path / "run", estimate=estimate.to_json())
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary["llm_estimate"]["calls"] == estimate.calls
    assert f"actual {summary['llm_calls']} calls + 0 from the cache" in estimate_vs_actual(summary)
    traffic = summary["llm_traffic"]["srv"]  # backpressure figures kept for the user
    assert traffic["calls"] == summary["llm_calls"] and traffic["in_flight"] == 0
    assert 0 < traffic["latency_p50_s"] <= traffic["latency_p95_s"]
    assert 1 <= traffic["peak_in_flight"] <= traffic["max_concurrency"]
    assert estimate.calls == AGENTS * (2 + ROUNDS) == summary["llm_calls"]
    backend = estimate.backends[0]
    assert (backend.setup_calls, backend.decision_calls, backend.agents) == (2 * AGENTS, ROUNDS * AGENTS, AGENTS)
    # the stub counts 1 token per 4 characters of content and answers setup calls with a short
    # text: the estimate (caps for the unknown replies, 4 tokens a message) is an upper bound
    assert estimate.prompt_tokens >= summary["tokens_in"]
    assert estimate.completion_tokens >= summary["tokens_out"]
    # a decision's prompt is the one the run sent, apart from the two replies counted at their caps
    transcript = [json.loads(line) for line in (result.path / "transcripts.jsonl").read_text().splitlines()]
    first = next(t for t in transcript if t["phase"] == "decision" and t["round"] == 0)
    sent = TokenCounter().count([(m["role"], m["content"]) for m in first["messages"]])
    replies = [m["content"] for m in first["messages"] if m["role"] == "assistant"]
    per_agent = backend.first_round_prompt_tokens / AGENTS
    caps = scenario.population[0].decider.setup_max_tokens + 2 * scenario.population[0].decider.goal_max_tokens
    description, goal = replies
    without_replies = sent - len(description) // 4 - 2 * (len(goal) // 4)  # the goal reappears in the prompt
    assert abs((per_agent - caps) - without_replies) <= 3
    assert estimate.cost() == pytest.approx((estimate.prompt_tokens * 2.0 + estimate.completion_tokens * 8.0) / 1e6)


def test_cli_dry_run_prints_the_figures_and_writes_nothing(tmp_path, cli) -> None:
    path = tmp_path / "dry.yaml"
    path.write_text(yaml.safe_dump(_data("http://127.0.0.1:9/v1")))  # never contacted
    out = tmp_path / "run"
    result = cli("run", str(path), "--dry-run", "--price-in", "1", "--price-out", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"{AGENTS * (2 + ROUNDS)} calls" in result.stdout and "cost at 1 / 2 per million" in result.stdout
    assert "estimated: 1 token per 4 characters" in result.stdout
    assert not out.exists()
    assert_user_error(cli("run", str(path), "--dry-run", "--price-in", "-1"), "--price-in")


def _evaluation_plan(base_url: str, cache_path: str | None = None):
    from hvae.agents.llm.backends import OpenAIBackend
    from hvae.experiments.questionnaire import EvaluationPlan

    backend = OpenAIBackend(kind="openai", base_url=base_url, model="stub", retries=0)
    return EvaluationPlan(agents=["llm", "oracle"], values=["prosocial", "competitive"], repeats=2, backend="srv",
                          backends={"srv": backend}, llm_backends=["srv"], seed=1, cache_enabled=cache_path is not None,
                          cache_path=cache_path)


def test_evaluate_dry_run_counts_the_calls_an_evaluation_makes_and_bounds_its_tokens(tmp_path) -> None:
    from hvae.cli.dry_run import estimate_evaluation, estimate_vs_actual
    from hvae.experiments.questionnaire import Evaluation
    from hvae.simulation.menus import slider_schedule

    items = len(slider_schedule(secondary=False).menus)
    with StubServer() as server:
        evaluation = Evaluation(_evaluation_plan(server.base_url))
        estimate = estimate_evaluation(evaluation, price_in=3.0, price_out=0.0)
        path = evaluation.run(tmp_path / "eval", figures=False, estimate=estimate.to_json())
    summary = json.loads((path / "summary.json").read_text())
    # 2 values x 2 repeats with goal prompting (value + goal call) and 2 x 2 without (value call only)
    agents = 2 * 2 * 2
    expected_calls = 4 * (2 + items) + 4 * (1 + items)
    assert estimate.calls == expected_calls == summary["llm_calls"] and summary["llm_estimate"]["calls"] == expected_calls
    backend = estimate.backends[0]  # the oracle cells make no LLM calls and are not counted
    assert (backend.agents, backend.setup_calls, backend.decision_calls) == (agents, 4 * 2 + 4, agents * items)
    assert estimate.prompt_tokens >= summary["tokens_in"] and estimate.completion_tokens >= summary["tokens_out"]
    assert estimate.unit == "questionnaire items" and estimate.rounds == items
    assert f"actual {summary['llm_calls']} calls + 0 from the cache" in estimate_vs_actual(summary)
    assert estimate.cost() == pytest.approx(estimate.prompt_tokens * 3.0 / 1e6)
    # without goal prompting the decision prompt is known apart from the value description's reply:
    # the first item's estimate is the prompt the evaluation sent, that reply counted at its cap
    transcript = [json.loads(line) for line in (path / "transcripts.jsonl").read_text().splitlines()]
    fixed = [t for t in transcript if t["phase"] == "decision" and t["round"] == 0
             and sum(m["role"] == "assistant" for m in t["messages"]) == 1]
    assert len(fixed) == 4
    sent = [TokenCounter().count([(m["role"], m["content"]) for m in t["messages"]]) for t in fixed]
    reply = [len(next(m["content"] for m in t["messages"] if m["role"] == "assistant")) // 4 for t in fixed]
    fixed_cells = [cell for cell in evaluation.cells if cell.goal_prompting is False]
    one = BackendEstimate("srv", "", None)
    for cell in fixed_cells:
        options = [tuple(o) for o in cell.schedule.menus[0].options.astype(float).tolist()]
        estimate_decider(cell.decider, one, TokenCounter(), [(0, options, 0, 1)])
    cap = fixed_cells[0].decider.config.setup_max_tokens
    assert abs((one.first_round_prompt_tokens - 4 * cap) - (sum(sent) - sum(reply))) <= 4 * 3


def test_cli_evaluate_dry_run_prints_the_figures_and_writes_nothing(tmp_path, cli) -> None:
    from hvae.simulation.menus import slider_schedule

    path = tmp_path / "backends.yaml"
    path.write_text(yaml.safe_dump({"backends": {"srv": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                                          "model": "stub"}}, "cache": {"enabled": False}}))
    out = tmp_path / "eval"
    args = ("evaluate", "--scenario", str(path), "--backend", "srv", "--values", "prosocial", "--repeats", "3",
            "--goal-prompting", "on", "--out", str(out), "--dry-run")
    result = cli(*args, "--price-in", "1", "--price-out", "2")
    assert result.returncode == 0, result.stderr
    items = len(slider_schedule(secondary=False).menus)
    assert f"dry run: {items} questionnaire items" in result.stdout
    assert f"{3 * (2 + items)} calls" in result.stdout and "cost at 1 / 2 per million" in result.stdout
    assert "estimated: 1 token per 4 characters" in result.stdout
    assert not out.exists()
    assert_user_error(cli(*args, "--price-out", "-2"), "--price-out")


def test_evaluate_dry_run_counts_the_value_calls_the_cache_will_answer_apart(tmp_path) -> None:
    from hvae.cli.dry_run import estimate_evaluation
    from hvae.experiments.questionnaire import Evaluation

    cache = str(tmp_path / "cache")
    with StubServer() as server:
        first = Evaluation(_evaluation_plan(server.base_url, cache))
        before = estimate_evaluation(first)
        first.close()
        Evaluation(_evaluation_plan(server.base_url, cache)).run(tmp_path / "eval", figures=False)
        again = Evaluation(_evaluation_plan(server.base_url, cache))
        after = estimate_evaluation(again)
        again.close()
    agents = before.backends[0].agents
    assert before.backends[0].setup_calls_cached == 0
    assert after.backends[0].setup_calls_cached == agents  # every agent's value call is in the cache now
    assert after.calls == before.calls - agents
