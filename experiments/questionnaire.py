"""HVAE evaluation mode: the paper's questionnaire protocol, for any decider.

Each **repeat** is one fresh agent that is given a value and answers the six primary SVO Slider
items (and, with ``secondary=True``, the nine secondary ones), one item per decision, with no
partner and no history. LLM agents go through the paper's pipeline first (value prompting, role
instruction, goal — or the fixed goal when goal prompting is off; see
:mod:`hvae.agents.llm.decider`); each item then starts from that setup conversation, so answers
do not depend on the order of earlier items. Rule deciders (``oracle``, ``random``,
``reciprocal``) answer the same items and serve as ceiling and chance: ``baselines=True`` adds the
oracle and random rows to any evaluation.

The cells of an evaluation are (agent, value, goal prompting) for LLM agents and (agent, value)
for rule deciders, which have no prompt: their ``goal_prompting`` is empty (None).

Every cell's repeats answer an item in one vectorised decider call, and the answer and repeat
tables are built column-wise per cell (angles, transitivity, subtypes and decision VR as array
operations), so rule-decider baselines of 20,000 repeats per value take seconds, files and
figures included (``benchmarks/bench_evaluate.py``). Repeats of LLM agents run concurrently
within their backend's ``max_concurrency``.

Outputs (one folder): ``evaluation.parquet`` (one row per repeat: answers, angle, category,
transitivity, decision VR, slider VR, the value-blind first-option chooser's decision and slider VR
on the same displays, invalid answers), ``answers.parquet`` (one row per item
answer with the option order shown and the raw reply), ``evaluation_summary.parquet`` / ``.csv``
(one row per cell, see :mod:`hvae.analysis.evaluation`), ``summary.json``, ``transcripts.jsonl``
and ``llm_agents.parquet`` for LLM agents, and figures.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hvae.agents.tasks import gather_all
from hvae.agents import slider_checks, svo
from hvae.agents.deciders import Decider, DecisionRequest, Decisions, History, build_rule_decider
from hvae.agents.deciders import OracleConfig, RandomConfig, ReciprocalConfig
from hvae.agents.llm.backends import BackendConfig, model_label
from hvae.agents.llm.config import LLMConfig
from hvae.agents.llm.secrets import redact_text
from hvae.agents.values import FixedAngle, parse_value
from hvae.scenarios.errors import ScenarioError
from hvae.simulation.menus import MenuSchedule, slider_schedule
from hvae.simulation.store import RunStore

AGENT_KINDS = ("llm", "oracle", "random", "reciprocal")
PROBES = ("paraphrases", "placement", "disguised", "dictator")  #: the validity probes (LLM agents only)


@dataclass
class EvaluationPlan:
    """What to evaluate: agents × values × goal-prompting settings, ``repeats`` agents per cell."""

    agents: list[str]
    values: list[str]
    goal_prompting: list[bool] = field(default_factory=lambda: [True, False])
    repeats: int = 10
    secondary: bool = False
    order: str = "reverse_half"
    backend: str = "embedded"
    backends: dict[str, BackendConfig] = field(default_factory=dict)
    llm_backends: list[str] = field(default_factory=list)  #: several models in one evaluation (default: [backend])
    probes: list[str] = field(default_factory=list)  #: validity probes (:data:`PROBES`; see :mod:`hvae.experiments.probes`)
    seed: int = 0
    cache_enabled: bool = True
    cache_path: str | None = None

    def __post_init__(self) -> None:
        unknown = [a for a in self.agents if a not in AGENT_KINDS]
        if unknown:
            raise ScenarioError(f"--agent: unknown agent {unknown[0]!r}; use one of {', '.join(AGENT_KINDS)}")
        if self.repeats < 1:
            raise ScenarioError(f"--repeats must be at least 1, got {self.repeats}")
        if not self.values:
            raise ScenarioError("--values: give at least one value")
        for value in self.values:
            try:
                spec = parse_value(value)
            except ValueError as error:
                raise ScenarioError(f"--values: {error}") from None
            if not isinstance(spec, FixedAngle):
                raise ScenarioError("--values takes category names or angles")
        unknown_probes = [p for p in self.probes if p not in PROBES]
        if unknown_probes:
            raise ScenarioError(f"unknown probe {unknown_probes[0]!r}; use {', '.join(PROBES)}")
        if self.order not in ("fixed", "reverse_half", "shuffle"):
            raise ScenarioError(f"--order must be fixed, reversed or shuffled, got {self.order!r}")


@dataclass
class Cell:
    agent: str
    value: str
    theta: float
    value_name: str | None
    goal_prompting: bool | None  # None for rule deciders (no prompt)
    agent_ids: np.ndarray
    decider: Decider
    model: str
    probe: str = "standard"  #: "standard" or a validity probe's variant (hvae.experiments.probes)
    schedule: MenuSchedule | None = None  #: the items this cell answers (None: the evaluation's slider items)


def _value_label(value: str) -> tuple[str, float, str | None]:
    spec = parse_value(value)
    assert isinstance(spec, FixedAngle)
    label = spec.name or f"{spec.angle:g}"
    return label, spec.angle, spec.name


def _empty_history(n: int) -> History:
    empty = np.empty((n, 0))
    return History(empty, empty, empty, np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=np.int64))


class Evaluation:
    """Runs an :class:`EvaluationPlan` (see the module docstring)."""

    def __init__(self, plan: EvaluationPlan) -> None:
        self.plan = plan
        self.schedule = slider_schedule(secondary=plan.secondary)
        self.pool = None
        if "llm" in plan.agents:
            from hvae.agents.llm.cache import ResponseCache, default_cache_dir
            from hvae.agents.llm.pool import BackendPool

            cache = ResponseCache(plan.cache_path or default_cache_dir()) if plan.cache_enabled else None
            self.pool = BackendPool(dict(plan.backends), cache=cache)
            for name in self.models:
                self.pool.check(name)
        self.rng = np.random.default_rng(plan.seed)
        self.cells = self._build_cells()

    @property
    def models(self) -> list[str]:
        """The LLM backends evaluated (one leaderboard row each)."""
        return list(self.plan.llm_backends) or [self.plan.backend]

    def _build_cells(self) -> list[Cell]:
        cells, next_id = [], 0
        plan = self.plan
        for agent in plan.agents:
            for backend in self.models if agent == "llm" else [None]:
                for value in plan.values:
                    label, theta, name = _value_label(value)
                    for goal in plan.goal_prompting if agent == "llm" else [None]:
                        ids = np.arange(next_id, next_id + plan.repeats)
                        next_id += plan.repeats
                        decider, model = self._decider(agent, label, name, goal, backend)
                        decider.setup(ids, np.full(plan.repeats, theta))
                        cells.append(Cell(agent, label, theta, name, goal, ids, decider, model, schedule=self.schedule))
                    if agent == "llm" and plan.probes:
                        from hvae.experiments.probes import probe_variants

                        goal = True if True in plan.goal_prompting else False
                        for variant in probe_variants(plan.probes, name, plan.secondary):
                            ids = np.arange(next_id, next_id + plan.repeats)
                            next_id += plan.repeats
                            decider, model = self._decider(agent, label, name, goal, backend, variant.wording(name),
                                                           variant.placement, variant.name)
                            decider.setup(ids, np.full(plan.repeats, theta))
                            cells.append(Cell(agent, label, theta, name, goal, ids, decider, model, variant.name, variant.schedule))
        return cells

    def _decider(
        self, agent: str, label: str, name: str | None, goal: bool | None, backend: str | None,
        wording: str | None = None, placement: str = "user", probe: str = "standard",
    ) -> tuple[Decider, str]:
        if agent == "llm":
            from hvae.agents.llm.decider import LLMDecider

            config = LLMConfig(kind="llm", backend=backend, goal_prompting=goal, order=self.plan.order)
            group = f"{label}-{'goal' if goal else 'fixed_goal'}" + ("" if probe == "standard" else f"-{probe}")
            decider = LLMDecider(
                config, self.pool, group=group, value_name=name, run_seed=self.plan.seed, wording=wording, placement=placement
            )
            return decider, f"{backend}:{model_label(self.pool.config(backend))}"
        configs = {"oracle": OracleConfig(kind="oracle"), "random": RandomConfig(kind="random"), "reciprocal": ReciprocalConfig(kind="reciprocal")}
        return build_rule_decider(configs[agent]), agent

    async def _answer_all(self, on_item) -> list[tuple[Cell, int, Decisions]]:
        results = []
        rngs = {id(cell): np.random.default_rng(self.rng.integers(2**63)) for cell in self.cells}
        n_items = max(len(cell.schedule.menus) for cell in self.cells)
        for item_index in range(n_items):
            requests = [
                (cell, DecisionRequest(item_index, menu.menu_id, menu.options, cell.agent_ids,
                                       np.full(len(cell.agent_ids), cell.theta), _empty_history(len(cell.agent_ids))))
                for cell in self.cells if item_index < len(cell.schedule.menus)
                for menu in [cell.schedule.menus[item_index]]
            ]
            # gather_all: a dead backend cancels the sibling cells before the error leaves the loop
            # (asyncio.gather left them pending: "Event loop is closed" tracebacks after the error line)
            outcomes = await gather_all(cell.decider.adecide(request, rngs[id(cell)]) for cell, request in requests)
            results.extend((cell, item_index, decisions) for (cell, _), decisions in zip(requests, outcomes))
            if on_item is not None:
                on_item(item_index + 1, n_items)
        return results

    def run(self, out_dir: str | Path, on_item=None, figures: bool = True, estimate: dict[str, Any] | None = None) -> Path:
        """Answer every item for every cell and write the evaluation folder.

        With ``figures`` (the default, as ``hvae evaluate`` does) the radar charts of slider and
        decision VR and the SVO-ring plot are drawn into ``figures/`` before the folder is marked
        complete. ``estimate`` (what ``hvae evaluate --dry-run`` prints, as JSON) is kept in
        ``summary.json`` as ``llm_estimate``, beside the actual counts.
        """
        from hvae.analysis.evaluation import radar_chart, ring_plot, summarise_evaluation
        from hvae.analysis.leaderboard import menus_of, write_leaderboard

        store = RunStore.create(out_dir, "evaluate")  # locked until the evaluation ends
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        summary: dict[str, Any] = {"kind": "evaluation", "status": "running", "started_at": started, "plan": _plan_dict(self.plan)}
        if estimate is not None:
            summary["llm_estimate"] = estimate
        store.write_json("summary.json", summary)
        if self.pool is not None:
            self.pool.attach_transcript(store.path / "transcripts.jsonl")
        loop = asyncio.new_event_loop()
        try:
            answered = loop.run_until_complete(self._answer_all(on_item))
            answers = self._answers_table(answered)
            repeats = self._repeats_table(answered)
            store.write_frame("answers", answers)
            store.write_frame("evaluation", repeats)
            everything = summarise_evaluation(repeats)
            store.write_frame("evaluation_summary", everything)
            everything.to_csv(store.path / "evaluation_summary.csv", index=False)
            table = everything[everything["probe"] == "standard"].reset_index(drop=True)
            if self.plan.probes:
                from hvae.experiments.probes import write_validity

                write_validity(store.path, everything, answers, figures=figures)
            answers = answers[answers["probe"] == "standard"]
            repeats = repeats[repeats["probe"] == "standard"]
            records = [r for cell in self.cells if hasattr(cell.decider, "setup_records") for r in cell.decider.setup_records()]
            if records:
                store.write_frame("llm_agents", pd.DataFrame(records))
            write_leaderboard(store.path, table, answers, menus_of(self.schedule), figures=figures)
            if figures:
                radar_chart(table, store.path / "figures", "slider_vr")
                radar_chart(table, store.path / "figures", "decision_vr")
                ring_plot(repeats, store.path / "figures")
            summary["status"] = "complete"
        except BaseException as error:
            summary["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            summary["error"] = redact_text(f"{type(error).__name__}: {error}")
            raise
        finally:
            summary["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            summary.update(self.accounting())
            if self.pool is not None:
                loop.run_until_complete(self.pool.aclose())
            loop.close()
            store.write_json("summary.json", summary)
            store.close()  # releases the folder's lock
        return store.path

    def replay_from_cache(self, tally: Any) -> None:
        """Answer every item from the response cache alone, each call reported to ``tally``.

        What ``hvae evaluate --dry-run`` counts as answered by the cache
        (:class:`~hvae.agents.llm.estimate.CacheTally`); close the evaluation afterwards.
        """
        if self.pool is None:
            return
        self.pool.answer_from_cache_only(tally)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._answer_all(None))
        finally:
            loop.close()

    def close(self) -> None:
        """Close the LLM clients of an evaluation that will not :meth:`run` (``hvae evaluate --dry-run``)."""
        if self.pool is not None:
            asyncio.run(self.pool.aclose())

    def accounting(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for cell in self.cells:
            accounting = getattr(cell.decider, "accounting", None)
            if callable(accounting):
                for key, value in accounting().items():
                    totals[key] = totals.get(key, 0) + value
        return totals

    def _answers_table(self, answered) -> pd.DataFrame:
        """One row per item answer, built column-wise per (cell, item): no per-answer Python loop."""
        pieces = []
        for cell, item_index, decisions in answered:
            menu = cell.schedule.menus[item_index]
            n = len(cell.agent_ids)
            choice = np.asarray(decisions.choice, dtype=np.int64)
            has = choice >= 0
            safe = np.where(has, choice, 0)
            meta = {name: decisions.metadata.get(name, [None] * n) for name in _ANSWER_METADATA}
            pieces.append(pd.DataFrame({
                "agent": cell.agent, "model": cell.model, "probe": cell.probe, "value": cell.value, "value_angle": cell.theta,
                "goal_prompting": cell.goal_prompting, "agent_id": cell.agent_ids, "repeat": np.arange(n),
                "item": menu.slider_item, "menu_id": menu.menu_id, "choice": choice,
                "valid": np.asarray(decisions.valid, dtype=bool),
                "self_amount": np.where(has, menu.options[safe, 0], np.nan),
                "other_amount": np.where(has, menu.options[safe, 1], np.nan),
                **meta,
            }))
        return pd.concat(pieces, ignore_index=True)

    def _repeats_table(self, answered) -> pd.DataFrame:
        """One row per repeat (a fresh agent's whole questionnaire), vectorised per cell.

        Only behaviour is measured: an answer counts when its reply was valid and has a choice. A
        repeat has an angle (and category, transitivity, slider VR) only when all six primary answers
        count; decision VR is the mean over its counted answers, beside the chance level of the same
        answers.
        """
        from hvae.analysis.rationality import normalised_utilities

        by_cell: dict[int, dict[int, Decisions]] = {}
        for cell, item_index, decisions in answered:
            by_cell.setdefault(id(cell), {})[item_index] = decisions
        frames = []
        for cell in self.cells:
            menus = cell.schedule.menus
            if menus[0].slider_item is None:  # the dictator probe: no slider profile (hvae.experiments.probes)
                continue
            n_items = len(menus)
            answers = by_cell[id(cell)]
            n = len(cell.agent_ids)
            choices = np.stack([np.asarray(answers[k].choice, dtype=np.int64) for k in range(n_items)], axis=1)
            valid = np.stack([np.asarray(answers[k].valid, dtype=bool) for k in range(n_items)], axis=1)
            usable = valid & (choices >= 0)
            # columns in slider-item order (the disguised probe asks the items in another order)
            by_item = sorted(range(n_items), key=lambda k: menus[k].slider_item)
            choices, valid, usable = choices[:, by_item], valid[:, by_item], usable[:, by_item]
            menus = [menus[k] for k in by_item]
            answers = {i: answers[k] for i, k in enumerate(by_item)}
            primary = choices[:, :6]
            scored = usable[:, :6].all(axis=1)
            angles = np.full(n, np.nan)
            angles[scored] = svo.slider_angles(primary[scored])
            transitive = np.full(n, None, dtype=object)
            transitive[scored] = slider_checks.transitivity(primary[scored])
            scores = np.full((n, n_items), np.nan)
            chance = np.full((n, n_items), np.nan)
            position = np.full((n, n_items), np.nan)  # the value-blind first-option chooser, same displays
            first = np.stack([_first_shown(answers[k], n) for k in range(n_items)], axis=1)
            for k, menu in enumerate(menus):
                normalised = normalised_utilities(cell.theta, menu.options)[0]
                if np.isnan(normalised).any():  # every option equal for this value: not scored
                    continue
                counted = usable[:, k]
                scores[counted, k] = normalised[choices[counted, k]]
                chance[counted, k] = normalised.mean()
                shown = counted & (first[:, k] >= 0)
                position[shown, k] = normalised[first[shown, k]]
            blind_scored = scored & (first[:, :6] >= 0).all(axis=1)
            blind_angles = np.full(n, np.nan)
            blind_angles[blind_scored] = svo.slider_angles(first[blind_scored, :6])
            frame = pd.DataFrame({
                "agent": cell.agent, "model": cell.model, "probe": cell.probe, "value": cell.value, "value_angle": cell.theta,
                "goal_prompting": cell.goal_prompting, "agent_id": cell.agent_ids, "repeat": np.arange(n),
                **{f"item{i}": primary[:, i - 1] for i in range(1, 7)},
                "invalid": (~valid).sum(axis=1), "n_valid": usable.sum(axis=1),
                "angle": angles, "category": svo.categories(angles), "transitive": transitive,
                "attainable_angle": svo.attainable_angle(cell.theta),
                "slider_vr": svo.slider_vr(angles, np.full(n, cell.theta)),
                "decision_vr": _row_means(scores), "chance_vr": _row_means(chance),
                "position_vr": _row_means(position),
                "position_slider_vr": svo.slider_vr(blind_angles, np.full(n, cell.theta)),
            })
            if self.plan.secondary:
                secondary = choices[:, 6:15]
                for i in range(7, 16):
                    frame[f"item{i}"] = secondary[:, i - 7]
                subtype = np.full(n, None, dtype=object)
                complete = usable[:, 6:15].all(axis=1)
                subtype[complete] = slider_checks.prosocial_subtypes(secondary[complete])
                frame["prosocial_subtype"] = subtype
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


#: Per-answer LLM metadata kept in ``answers.parquet`` (None for rule deciders).
_ANSWER_METADATA = ("shown_order", "raw_reply", "reason", "fallback", "attempts", "cache_hit", "latency_s", "tokens_in", "tokens_out")


def _first_shown(decisions: Decisions, n: int) -> np.ndarray:
    """The option shown first to each repeat (from ``shown_order``); −1 where no display was recorded."""
    orders = decisions.metadata.get("shown_order") or [None] * n
    return np.array([int(o.split(",", 1)[0]) if isinstance(o, str) and o else -1 for o in orders], dtype=np.int64)


def _row_means(values: np.ndarray) -> np.ndarray:
    """Mean of each row's finite entries; NaN for a row without one (no warning)."""
    counted = np.isfinite(values)
    totals = np.where(counted, values, 0.0).sum(axis=1)
    counts = counted.sum(axis=1)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _plan_dict(plan: EvaluationPlan) -> dict[str, Any]:
    data = {k: v for k, v in plan.__dict__.items() if k != "backends"}
    data["backends"] = {name: json.loads(config.model_dump_json()) for name, config in plan.backends.items()}
    return data
