"""Building a population group's decider from its config, and the LLM backends the LLM groups share.

:func:`build_decider` looks the group's ``decider: {kind: …}`` up in
:data:`hvae.agents.plugins.DECIDERS` and calls the registered class's ``from_config(config, context)``
with a :class:`DeciderContext`: what a decider may need beyond its own config (the group, the run
seed, the game's LLM view, the run's LLM backends). Rule deciders ignore the context; the ``llm``
kind (:class:`LLMDeciders`) takes its backend pool from :class:`LLMBackends`, which builds the pool
on first use, sends transcripts to the run folder and closes it at the end — so the model only
holds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from hvae.agents.deciders import Decider
from hvae.agents.llm.config import LLMConfig
from hvae.agents.plugins import DECIDERS
from hvae.scenarios.schema import Group, Scenario

if TYPE_CHECKING:
    from hvae.agents.llm.pool import BackendPool


class LLMBackends:
    """The LLM backend pool of one run (with its response cache unless disabled), built on first use."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.pool: BackendPool | None = None

    def get(self) -> BackendPool:
        """The pool, built now if no LLM group asked for it yet."""
        if self.pool is None:
            from hvae.agents.llm.cache import ResponseCache, default_cache_dir
            from hvae.agents.llm.health import HealthPolicy
            from hvae.agents.llm.pool import BackendPool

            scenario = self.scenario
            cache = ResponseCache(scenario.cache.path or default_cache_dir()) if scenario.cache.enabled else None
            policy = HealthPolicy(**scenario.backend_errors.model_dump())
            self.pool = BackendPool(dict(scenario.backends), cache=cache, policy=policy)
        return self.pool

    def attach_run_folder(self, path: str | Path) -> None:
        """Send LLM transcripts to the run folder (``transcripts.jsonl``)."""
        if self.pool is not None:
            self.pool.attach_transcript(Path(path) / "transcripts.jsonl")

    def health_reports(self) -> dict[str, Any]:
        return self.pool.health_reports() if self.pool is not None else {}

    def restore_health(self, reports: dict[str, Any]) -> None:
        if self.pool is not None:
            self.pool.restore_health(reports)

    async def aclose(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.aclose()


@dataclass(frozen=True)
class DeciderContext:
    """What a decider may need beyond its config (see :meth:`hvae.agents.deciders.Decider.from_config`)."""

    group: Group
    scenario: Scenario
    seed: int
    #: The game's view for LLM prompts (:meth:`hvae.simulation.games.Game.llm_view`), None for plain allocations.
    game_view: Any
    llm: LLMBackends


class LLMDeciders:
    """The ``llm`` decider kind: an :class:`hvae.agents.llm.decider.LLMDecider` on the run's backends."""

    kind: ClassVar[str] = "llm"
    Config: ClassVar[type[LLMConfig]] = LLMConfig

    @classmethod
    def from_config(cls, config: LLMConfig, context: DeciderContext) -> Decider:
        from hvae.agents.llm.decider import LLMDecider

        return LLMDecider(
            config,
            context.llm.get(),
            group=context.group.name,
            value_name=getattr(context.group.value_spec, "name", None),
            run_seed=context.seed,
            game=context.game_view,
            talk_config=context.scenario.communication,
        )


DECIDERS.attach("llm", LLMDeciders)


def build_decider(context: DeciderContext) -> Decider:
    """The decider the context's group asks for."""
    config = context.group.decider
    return DECIDERS.plugin(config.kind).from_config(config, context)
