"""``hvae run SCENARIO --dry-run`` and ``hvae evaluate … --dry-run``: validate, build the prompts, say what it will cost.

``run`` builds the first round's prompts; ``evaluate`` builds each model/value cell's questionnaire
prompts (one decision per item, no history). Where a response cache holds anything, the run (or
evaluation) is then replayed against the cache alone, in a model of its own, to count the calls
the cache will answer apart (by kind: value, goal, decision, re-ask, talk).

Nothing is sent to a model and no run folder is written. The counting rules (calls, prompt and
completion tokens, expected and at most, the cache replay, how tokens are counted) live in
:mod:`hvae.agents.llm.estimate`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvae.agents.llm.estimate import (
    BackendEstimate, CacheTally, Decision, RunEstimate, TokenCounter, estimate_decider, run_decisions, token_counter,
)
from hvae.scenarios.schema import Scenario


def estimate_run(
    scenario: Scenario, price_in: float | None = None, price_out: float | None = None, model: Any = None
) -> RunEstimate:
    """Count the LLM calls and tokens of ``scenario`` (building its population unless ``model`` is given)."""
    from hvae.simulation.model import HvaeModel

    own = model is None
    model = model or HvaeModel(scenario)
    try:
        options = [tuple(option) for option in model.schedule.menus[0].options.astype(float).tolist()]
        decisions = run_decisions(options, scenario.rounds, scenario.history.length)
        cache = model.llm_pool.cache if model.llm_pool is not None else None
        estimate = RunEstimate(scenario.rounds, price_in=price_in, price_out=price_out)
        estimate.backends = _count(((decider, decisions) for decider in model.deciders.values()), cache)
    finally:
        if own:
            model.close()
    if cache is not None and estimate.backends:
        estimate.cache_replayed = "the cache is empty"
    if _holds_anything(cache) and estimate.backends:
        tally, rounds = replay_run(scenario)
        exact = "every round" if rounds == scenario.rounds and not tally.misses else f"{rounds} of {scenario.rounds} rounds"
        estimate.apply_cache(tally, f"replayed {exact}")
    return estimate


def replay_run(scenario: Scenario) -> tuple[CacheTally, int]:
    """Play ``scenario`` against the response cache alone until the first round with a call it lacks.

    Returns what the replay met and the rounds played (the last of them may hold misses; its
    hits are still exact, since they depend only on the rounds before it).
    """
    from hvae.simulation.model import HvaeModel

    tally = CacheTally()
    model = HvaeModel(scenario)
    played = 0
    try:
        if model.llm_pool is None:
            return tally, 0
        model.llm_pool.answer_from_cache_only(tally)
        for _ in range(scenario.rounds):
            model.step()
            played += 1
            if tally.misses:  # later rounds depend on replies the cache does not hold
                break
    finally:
        model.close()
    return tally, played


def _holds_anything(cache: Any) -> bool:
    return cache is not None and len(cache) > 0


def estimate_evaluation(evaluation: Any, price_in: float | None = None, price_out: float | None = None) -> RunEstimate:
    """Count the LLM calls and tokens of an :class:`~hvae.experiments.questionnaire.Evaluation`.

    Each model/value cell's agents answer its questionnaire items (the slider items, or a validity
    probe's own), one decision per item with no history.
    """
    cells = [
        (cell.decider, [(k, [tuple(o) for o in menu.options.astype(float).tolist()], 0, 1) for k, menu in enumerate(cell.schedule.menus)])
        for cell in evaluation.cells
    ]
    cache = evaluation.pool.cache if evaluation.pool is not None else None
    estimate = RunEstimate(len(evaluation.schedule.menus), price_in=price_in, price_out=price_out, unit="questionnaire items")
    estimate.backends = _count(cells, cache)
    if cache is not None and estimate.backends:
        estimate.cache_replayed = "the cache is empty"
    if _holds_anything(cache) and estimate.backends:
        replay = type(evaluation)(evaluation.plan)  # its own deciders: the evaluation itself stays unplayed
        tally = CacheTally()
        try:
            replay.replay_from_cache(tally)
        finally:
            replay.close()
        estimate.apply_cache(tally, "replayed every item")
    return estimate


def _count(deciders: Iterable[tuple[Any, list[Decision]]], cache: Any) -> list[BackendEstimate]:
    """One :class:`BackendEstimate` per backend, over the LLM deciders among ``deciders``."""
    from hvae.agents.llm.decider import LLMDecider

    by_backend: dict[str, BackendEstimate] = {}
    counters: dict[str, TokenCounter] = {}
    for decider, decisions in deciders:
        if not isinstance(decider, LLMDecider):
            continue
        name = decider.config.backend
        if name not in by_backend:
            counters[name] = token_counter(decider.backend_config)
            by_backend[name] = BackendEstimate(name, counters[name].describe(), counters[name].error)
        estimate_decider(decider, by_backend[name], counters[name], decisions)
    return [by_backend[name] for name in sorted(by_backend)]


def estimate_vs_actual(summary: dict[str, Any]) -> str | None:
    """Three lines after a run: the dry run's estimate beside what the run used (at most 100 columns)."""
    estimate = summary.get("llm_estimate")
    if not estimate or summary.get("status") != "complete":
        return None
    calls = summary.get("llm_calls", 0)
    hits = summary.get("llm_cache_hits", 0)
    cached = sum((estimate.get("cached_calls") or {}).values())
    at_most = f"{estimate.get('prompt_tokens_at_most', 0):,} + {estimate.get('completion_tokens_at_most', 0):,}"
    return (
        f"LLM use: estimated {estimate['calls']:,} calls + {cached:,} from the cache, {estimate['prompt_tokens']:,} prompt + "
        f"{estimate['completion_tokens']:,} completion tokens\n         (at most {at_most} with every reply at its cap)\n"
        f"         actual {calls:,} calls + {hits:,} from the cache, {summary.get('tokens_in', 0):,} prompt + "
        f"{summary.get('tokens_out', 0):,} completion"
    )
