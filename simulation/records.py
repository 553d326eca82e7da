"""Records: the model's data collector — decision rows and per-round population figures.

After every round :meth:`RoundLog.collect` turns the round's arrays into columns; the runner
drains them with :meth:`RoundLog.drain` and hands them to the run store. The schemas are fixed
here, so every part file of a run has the same columns and the tables concatenate cleanly.

``decisions`` — one row per decision:

=================  ==========================================================================
round              0-based round index
agent_id           the deciding agent (= its network node)
partner_id         the partner (−1 when the agent played several partners at once)
n_partners         games this choice applied to (1 under random matching)
group, decider     the agent's population group and decider kind
value_angle        the agent's SVO angle (degrees) when it decided; ``value_category`` its name
menu_id            which menu (see ``menus.parquet``)
options_shown      the options in the order shown, ``"s,o|s,o|…"``
shown_order        canonical option indices in display order (``"8,7,…"``; null = canonical)
choice             chosen option, canonical index (−1 = no decision)
chosen_position    where the chosen option stood in the display (0 = first, i.e. "A")
self_amount        what the agent chose to keep; ``other_amount`` what it chose to give
received           what its partners gave it this round; ``payoff`` = kept × games + received
valid              False when the reply could not be used (the fallback then applied)
pair_skipped       True when a game of this agent was void because someone did not decide
fallback           which fallback replaced an invalid reply (``random`` / ``skip``), else null
raw_reply …        LLM metadata: raw reply, reason, latency_s, tokens_in, tokens_out,
                   cache_hit, attempts (null for rule deciders)
=================  ==========================================================================

``rounds`` — tidy per-round figures: one row per (round, grouping, group) where ``grouping`` is
``all`` (the population), ``group`` (scenario group) or ``category`` (value category).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from hvae.agents.svo import CATEGORY_ORDER, category_codes_of

if TYPE_CHECKING:
    from hvae.agents.deciders import Decisions
    from hvae.simulation.menus import Menu
    from hvae.simulation.model import HvaeModel

_DICT = pa.dictionary(pa.int32(), pa.string())

DECISION_SCHEMA = pa.schema(
    [
        ("round", pa.int32()),
        ("agent_id", pa.int32()),
        ("partner_id", pa.int32()),
        ("n_partners", pa.int32()),
        ("group", _DICT),
        ("decider", _DICT),
        ("value_angle", pa.float64()),
        ("value_category", _DICT),
        ("menu_id", _DICT),
        ("options_shown", _DICT),
        ("shown_order", pa.string()),
        ("choice", pa.int16()),
        ("chosen_position", pa.int16()),
        ("self_amount", pa.float64()),
        ("other_amount", pa.float64()),
        ("received", pa.float64()),
        ("payoff", pa.float64()),
        ("valid", pa.bool_()),
        ("pair_skipped", pa.bool_()),
        ("fallback", pa.string()),
        ("raw_reply", pa.string()),
        ("reason", pa.string()),
        ("latency_s", pa.float64()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("cache_hit", pa.bool_()),
        ("attempts", pa.int32()),
    ]
)

ROUND_SCHEMA = pa.schema(
    [
        ("round", pa.int32()),
        ("grouping", pa.string()),
        ("group", pa.string()),
        ("n_agents", pa.int32()),
        ("share", pa.float64()),
        ("n_decided", pa.int32()),
        ("n_idle", pa.int32()),
        ("n_invalid", pa.int32()),
        ("welfare", pa.float64()),
        ("mean_payoff", pa.float64()),
        ("mean_cumulative_payoff", pa.float64()),
        ("gini_cumulative_payoff", pa.float64()),
        ("mean_value_angle", pa.float64()),
    ]
)

_LLM_COLUMNS = ("fallback", "raw_reply", "reason", "latency_s", "tokens_in", "tokens_out", "cache_hit", "attempts")


def gini(values: np.ndarray) -> float:
    """Gini coefficient; negative payoffs are shifted so the minimum is 0 (NaN if all zero)."""
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return float("nan")
    if x[0] < 0:
        x = x - x[0]
    total = x.sum()
    if total <= 0:
        return float("nan")
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * total))


def _dictionary(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string()))


class RoundLog:
    """Buffers one run's rows until the runner drains them to the store."""

    def __init__(self, model: HvaeModel) -> None:
        self.model = model
        self._decisions: list[pa.RecordBatch] = []
        self._rounds: list[dict[str, list]] = []
        self.totals = {"decisions": 0, "invalid": 0, "idle": 0}
        self._decider_names = sorted(set(model.decider_kinds))
        self._decider_code = np.array([self._decider_names.index(k) for k in model.decider_kinds], dtype=np.int32)

    # ------------------------------------------------------------------ collect
    def collect(
        self,
        menu: Menu,
        deciding: np.ndarray,
        choice: np.ndarray,
        per_group: dict[str, tuple[np.ndarray, Decisions]],
        outcome: dict[str, np.ndarray],
    ) -> None:
        model = self.model
        state = model.state
        groups = [g for g in model.group_names if g in per_group]
        ids = np.concatenate([per_group[g][0] for g in groups])
        decisions = [per_group[g][1] for g in groups]
        n = ids.size
        valid = np.concatenate([d.valid for d in decisions])
        chosen = choice[ids]
        state.n_decisions[ids] += 1
        state.n_invalid[ids] += ~valid
        idle = np.ones(model.n_agents, dtype=bool)
        idle[deciding] = False
        state.n_idle[idle] += 1
        self.totals["decisions"] += n
        self.totals["invalid"] += int((~valid).sum())
        self.totals["idle"] += int(idle.sum())

        metadata = {name: _concat_metadata(decisions, name) for name in ("shown_order", *_LLM_COLUMNS)}
        shown_order = metadata["shown_order"]
        if shown_order is None:
            options_shown = _dictionary(np.zeros(n, np.int32), [menu.describe()])
            position = chosen
        else:
            texts, position = [], np.empty(n, dtype=np.int64)
            for i, order_text in enumerate(shown_order):
                order = None if order_text is None else np.array(order_text.split(","), dtype=int)
                texts.append(menu.describe(order))
                position[i] = chosen[i] if order is None else (
                    int(np.flatnonzero(order == chosen[i])[0]) if chosen[i] >= 0 else -1
                )
            options_shown = pa.array(texts, pa.string()).dictionary_encode()
        theta = state.theta[ids]
        category_codes = category_codes_of(theta).astype(np.int32)
        columns = {
            "round": pa.array(np.full(n, model.round, np.int32)),
            "agent_id": pa.array(ids.astype(np.int32)),
            "partner_id": pa.array(outcome["partner"][ids].astype(np.int32)),
            "n_partners": pa.array(outcome["n_partners"][ids].astype(np.int32)),
            "group": _dictionary(state.group_code[ids], model.group_names),
            "decider": _dictionary(self._decider_code[state.group_code[ids]], self._decider_names),
            "value_angle": pa.array(theta),
            "value_category": _dictionary(category_codes, list(CATEGORY_ORDER)),
            "menu_id": _dictionary(np.zeros(n, np.int32), [menu.menu_id]),
            "options_shown": options_shown,
            "shown_order": pa.array(shown_order, pa.string()) if shown_order else pa.nulls(n, pa.string()),
            "choice": pa.array(chosen.astype(np.int16)),
            "chosen_position": pa.array(np.asarray(position).astype(np.int16)),
            "self_amount": pa.array(outcome["self_amount"][ids], from_pandas=True),
            "other_amount": pa.array(outcome["other_amount"][ids], from_pandas=True),
            "received": pa.array(outcome["received"][ids]),
            "payoff": pa.array(outcome["payoff"][ids]),
            "valid": pa.array(valid),
            "pair_skipped": pa.array(outcome["n_played"][ids] < outcome["n_partners"][ids]),
        }
        for name in _LLM_COLUMNS:
            field = DECISION_SCHEMA.field(name)
            values = metadata[name]
            columns[name] = pa.nulls(n, field.type) if values is None else pa.array(values, field.type)
        self._decisions.append(pa.RecordBatch.from_arrays(list(columns.values()), schema=DECISION_SCHEMA))
        self._collect_round(deciding, ids, valid, outcome)

    def _collect_round(self, deciding, ids, valid, outcome) -> None:
        model, state = self.model, self.model.state
        n = model.n_agents
        decided = np.zeros(n, dtype=bool)
        decided[deciding] = True
        invalid = np.zeros(n, dtype=bool)
        invalid[ids[~valid]] = True
        payoff = outcome["payoff"]
        groupings = [
            ("all", np.zeros(n, dtype=np.int64), ["all"]),
            ("group", state.group_code.astype(np.int64), model.group_names),
            ("category", category_codes_of(state.theta), list(CATEGORY_ORDER)),
        ]
        row: dict[str, list] = {name: [] for name in ROUND_SCHEMA.names}
        for grouping, key, names in groupings:
            k = len(names)
            count = np.bincount(key, minlength=k)
            n_decided = np.bincount(key, decided, k)
            welfare = np.bincount(key, payoff, k)
            cumulative = np.bincount(key, state.cumulative_payoff, k)
            angle = np.bincount(key, state.theta, k)
            n_invalid = np.bincount(key, invalid, k)
            for j, name in enumerate(names):
                if count[j] == 0 and grouping == "category":
                    continue
                members = state.cumulative_payoff[key == j] if grouping != "all" else state.cumulative_payoff
                row["round"].append(model.round)
                row["grouping"].append(grouping)
                row["group"].append(name)
                row["n_agents"].append(int(count[j]))
                row["share"].append(count[j] / n)
                row["n_decided"].append(int(n_decided[j]))
                row["n_idle"].append(int(count[j] - n_decided[j]))
                row["n_invalid"].append(int(n_invalid[j]))
                row["welfare"].append(float(welfare[j]))
                row["mean_payoff"].append(float(welfare[j] / n_decided[j]) if n_decided[j] else float("nan"))
                row["mean_cumulative_payoff"].append(float(cumulative[j] / count[j]) if count[j] else float("nan"))
                row["gini_cumulative_payoff"].append(gini(members))
                row["mean_value_angle"].append(float(angle[j] / count[j]) if count[j] else float("nan"))
        self._rounds.append(row)

    # ------------------------------------------------------------------ drain
    def pending_rounds(self) -> int:
        return len(self._rounds)

    def drain(self) -> tuple[pa.Table, pa.Table]:
        """Return and forget the buffered (decisions, rounds) tables."""
        decisions = pa.Table.from_batches(self._decisions, schema=DECISION_SCHEMA)
        merged: dict[str, list] = {name: [] for name in ROUND_SCHEMA.names}
        for row in self._rounds:
            for name, values in row.items():
                merged[name].extend(values)
        rounds = pa.Table.from_pydict(merged, schema=ROUND_SCHEMA)
        self._decisions, self._rounds = [], []
        return decisions, rounds

    def decision_rows(self) -> pa.Table:
        """All buffered decision rows (without draining)."""
        return pa.Table.from_batches(self._decisions, schema=DECISION_SCHEMA)


def _concat_metadata(decisions: list[Decisions], name: str) -> list | None:
    if not any(name in d.metadata for d in decisions):
        return None
    values: list = []
    for d in decisions:
        values.extend(d.metadata.get(name, [None] * d.choice.shape[0]))
    return values
