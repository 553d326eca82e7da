"""``hvae run SCENARIO --dry-run``: validate, build the first round's prompts, and say what the run will cost.

Nothing is sent to a model and no run folder is written. The counting rules (calls, prompt and
completion tokens, cache, how tokens are counted) live in :mod:`hvae.agents.llm.estimate`.
"""

from __future__ import annotations

from typing import Any

from hvae.agents.llm.estimate import BackendEstimate, RunEstimate, estimate_decider, token_counter
from hvae.scenarios.schema import Scenario


def estimate_run(
    scenario: Scenario, price_in: float | None = None, price_out: float | None = None, model: Any = None
) -> RunEstimate:
    """Count the LLM calls and tokens of ``scenario`` (building its population unless ``model`` is given)."""
    from hvae.agents.llm.decider import LLMDecider
    from hvae.simulation.model import HvaeModel

    own = model is None
    model = model or HvaeModel(scenario)
    try:
        estimate = RunEstimate(scenario.rounds, price_in=price_in, price_out=price_out)
        options = [tuple(option) for option in model.schedule.menus[0].options.astype(float).tolist()]
        by_backend: dict[str, BackendEstimate] = {}
        counters = {}
        for decider in model.deciders.values():
            if not isinstance(decider, LLMDecider):
                continue
            name = decider.config.backend
            if name not in by_backend:
                counters[name] = token_counter(decider.backend_config)
                by_backend[name] = BackendEstimate(name, counters[name].describe(), counters[name].error)
            cache = model.llm_pool.cache if model.llm_pool is not None else None
            estimate_decider(decider, by_backend[name], counters[name], options, scenario.rounds,
                             scenario.history.length, cache)
        estimate.backends = [by_backend[name] for name in sorted(by_backend)]
        return estimate
    finally:
        if own:
            model.close()


def estimate_vs_actual(summary: dict[str, Any]) -> str | None:
    """Two lines after a run: the dry run's estimate beside what the run used (at most 100 columns)."""
    estimate = summary.get("llm_estimate")
    if not estimate or summary.get("status") != "complete":
        return None
    calls = summary.get("llm_calls", 0)
    hits = summary.get("llm_cache_hits", 0)
    return (
        f"LLM use: estimated {estimate['calls']:,} calls, {estimate['prompt_tokens']:,} prompt + "
        f"{estimate['completion_tokens']:,} completion tokens (at most)\n"
        f"         actual {calls:,} calls + {hits:,} from the cache, {summary.get('tokens_in', 0):,} prompt + "
        f"{summary.get('tokens_out', 0):,} completion"
    )
