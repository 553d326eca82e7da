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

``messages`` — pre-play talk (``communication.turns > 0`` only; see :mod:`hvae.simulation.talk`):
one row per message, in pair and turn order: ``round``, ``pair`` (the pair's row in the round's
matching), ``turn`` (0-based), ``speaker`` and ``listener`` (agent ids), the speaker's ``group``,
``speaker_kind`` (``llm`` or ``rule``: a rule decider's fixed line) and ``value_angle``, ``text``
(null: the speaker's call failed, which ended the conversation), ``tokens`` (generated),
``prompt_tokens``, ``latency_s`` and ``cache_hit`` (null for rule lines).

``value_changes`` — one row per value change made by the dynamics: ``round`` is the round after
which it happened, in the numbering of ``decisions.round`` (the new value holds from ``round + 1``
on), then agent, rule, old and new angle and category, whose value was copied or −1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

#: The numeric figures of a rounds row, in the order :meth:`RoundLog._round_figures` stacks them
#: (names, not positions, map them to ``ROUND_SCHEMA``'s columns).
ROUND_FIGURES: tuple[str, ...] = tuple(name for name in ROUND_SCHEMA.names if name not in ("grouping", "group"))

VALUE_CHANGE_SCHEMA = pa.schema(
    [
        ("round", pa.int32()),
        ("agent_id", pa.int32()),
        ("group", pa.string()),
        ("rule", pa.string()),
        ("old_angle", pa.float64()),
        ("new_angle", pa.float64()),
        ("old_category", pa.string()),
        ("new_category", pa.string()),
        ("source_agent", pa.int32()),
    ]
)

MESSAGE_SCHEMA = pa.schema(
    [
        ("round", pa.int32()),
        ("pair", pa.int32()),
        ("turn", pa.int32()),
        ("speaker", pa.int32()),
        ("listener", pa.int32()),
        ("group", pa.string()),
        ("speaker_kind", pa.string()),
        ("value_angle", pa.float64()),
        ("text", pa.string()),
        ("tokens", pa.int64()),
        ("prompt_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("cache_hit", pa.bool_()),
    ]
)

#: Every table the log produces, with its fixed schema (the run store appends each).
TABLE_SCHEMAS: dict[str, pa.Schema] = {}

#: Tables written only when a run produced rows for them (no empty ``messages.parquet`` without talk).
OPTIONAL_TABLES = frozenset({"messages"})

_LLM_COLUMNS = ("fallback", "raw_reply", "reason", "latency_s", "tokens_in", "tokens_out", "cache_hit", "attempts")


def gini(values: np.ndarray) -> float:
    """Gini coefficient; negative payoffs are shifted so the minimum is 0 (NaN if all zero)."""
    return float(grouped_gini(np.asarray(values, dtype=float), np.zeros(len(values), np.int64), 1)[0])


def grouped_gini(
    values: np.ndarray, key: np.ndarray, n_groups: int, order: np.ndarray | None = None
) -> np.ndarray:
    """Gini coefficient of ``values`` within each group ``key`` (0..n_groups-1), vectorised.

    Uses ``G = Σ (2i − n − 1) x_(i) / (n Σ x)`` over each group's sorted values; a group with a
    negative value is shifted so its minimum is 0 (the weights sum to zero, so only the
    denominator changes). Empty or all-zero groups give NaN. ``order`` (``argsort(values)``)
    may be passed to share one sort between several groupings.
    """
    if order is None:
        order = np.argsort(values, kind="stable")
    order = order[np.argsort(key[order], kind="stable")]  # by group, ascending values within
    sorted_key, sorted_values = key[order], values[order]
    counts = np.bincount(sorted_key, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(values.size) - starts[sorted_key] + 1
    weights = 2 * rank - counts[sorted_key] - 1
    numerator = np.bincount(sorted_key, weights * sorted_values, n_groups)
    minimum = np.where(counts > 0, sorted_values[np.minimum(starts, max(values.size - 1, 0))] if values.size else 0.0, 0.0)
    shift = np.minimum(minimum, 0.0)
    raw_total = np.bincount(sorted_key, sorted_values, n_groups)
    total = raw_total - counts * shift
    scale = np.abs(raw_total) + counts * np.abs(shift) + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        result = numerator / (counts * total)
    result[(counts == 0) | (total <= 1e-12 * scale)] = np.nan
    return result


def _dictionary(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string()))


#: Decision columns buffered as numpy arrays per round: name -> dtype.
_NUMERIC = {
    "round": np.int32, "agent_id": np.int32, "partner_id": np.int32, "n_partners": np.int32,
    "group": np.int32, "decider": np.int32, "value_angle": np.float64, "value_category": np.int32,
    "menu_id": np.int32, "options_shown": np.int32, "choice": np.int16, "chosen_position": np.int16,
    "self_amount": np.float64, "other_amount": np.float64, "received": np.float64,
    "payoff": np.float64, "valid": np.bool_, "pair_skipped": np.bool_,
}
_OPTIONAL = ("shown_order", *_LLM_COLUMNS)


class RoundLog:
    """Buffers one run's rows (as numpy arrays) until the runner drains them to the store."""

    def __init__(self, model: HvaeModel) -> None:
        self.model = model
        self._decisions: list[dict[str, Any]] = []
        self._rounds: list[np.ndarray] = []
        self.totals = {"decisions": 0, "invalid": 0, "idle": 0}
        self._decider_names = sorted(set(model.decider_kinds))
        self._decider_code = np.array(
            [self._decider_names.index(k) for k in model.decider_kinds], dtype=np.int32
        )
        self._menu_ids = [m.menu_id for m in model.schedule.menus]
        self._menu_code = {menu_id: i for i, menu_id in enumerate(self._menu_ids)}
        # options_shown dictionary: canonical descriptions first, display orders added as seen.
        self._shown_texts = [m.describe() for m in model.schedule.menus]
        self._shown_code: dict[str, int] = {text: i for i, text in enumerate(self._shown_texts)}
        self._labels: list[list[tuple[str, str]]] = []
        self._value_changes: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ collect
    def collect_messages(self, rows: list[dict[str, Any]]) -> None:
        """Record a round's talk (rows of :data:`MESSAGE_SCHEMA`; see :mod:`hvae.simulation.talk`)."""
        self._messages.extend(rows)

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
        if len(groups) == 1:
            ids, decisions = per_group[groups[0]][0], [per_group[groups[0]][1]]
            valid = decisions[0].valid
        else:
            ids = np.concatenate([per_group[g][0] for g in groups])
            decisions = [per_group[g][1] for g in groups]
            valid = np.concatenate([d.valid for d in decisions])
        n = ids.size
        chosen = choice[ids]
        state.n_decisions[ids] += 1
        state.n_invalid[ids] += ~valid
        idle = np.ones(model.n_agents, dtype=bool)
        idle[deciding] = False
        state.n_idle[idle] += 1
        self.totals["decisions"] += n
        self.totals["invalid"] += int(n - valid.sum())
        self.totals["idle"] += int(idle.sum())

        optional = {name: _concat_metadata(decisions, name) for name in _OPTIONAL}
        menu_code = self._menu_code[menu.menu_id]
        shown_order = optional["shown_order"]
        if shown_order is None:
            shown_codes = np.full(n, menu_code, np.int32)
            position = chosen
        else:
            shown_codes = np.empty(n, np.int32)
            position = np.empty(n, dtype=np.int64)
            # a round shows few distinct orders (two with reverse_half): each is read once
            seen: dict[str | None, tuple[int, np.ndarray | None]] = {}
            for i, order_text in enumerate(shown_order):
                known = seen.get(order_text)
                if known is None:
                    order = None if order_text is None else np.array(order_text.split(","), dtype=int)
                    code = self._shown_code.setdefault(menu.describe(order), len(self._shown_code))
                    known = seen[order_text] = (code, None if order is None else np.argsort(order))  # option -> position
                shown_codes[i], where = known
                position[i] = chosen[i] if where is None or chosen[i] < 0 else where[chosen[i]]
            self._shown_texts = list(self._shown_code)
        theta = state.theta[ids]
        group_codes = state.group_code[ids]
        row = {
            "n": n,
            "round": np.full(n, model.round, np.int32),
            "agent_id": ids,
            "partner_id": outcome["partner"][ids],
            "n_partners": outcome["n_partners"][ids],
            "group": group_codes,
            "decider": self._decider_code[group_codes],
            "value_angle": theta,
            "value_category": category_codes_of(theta),
            "menu_id": np.full(n, menu_code, np.int32),
            "options_shown": shown_codes,
            "choice": chosen,
            "chosen_position": position,
            "self_amount": outcome["self_amount"][ids],
            "other_amount": outcome["other_amount"][ids],
            "received": outcome["received"][ids],
            "payoff": outcome["payoff"][ids],
            "valid": valid,
            "pair_skipped": outcome["n_played"][ids] < outcome["n_partners"][ids],
        }
        row.update({name: values for name, values in optional.items() if values is not None})
        self._decisions.append(row)
        self._rounds.append(self._round_figures(deciding, ids, valid, outcome))

    def _groupings(self) -> list[tuple[str, np.ndarray, list[str]]]:
        state = self.model.state
        return [
            ("all", np.zeros(self.model.n_agents, dtype=np.int64), ["all"]),
            ("group", state.group_code.astype(np.int64), self.model.group_names),
            ("category", category_codes_of(state.theta), list(CATEGORY_ORDER)),
        ]

    def _round_figures(self, deciding, ids, valid, outcome) -> np.ndarray:
        """One round's figures: an (n_rows, len(ROUND_FIGURES)) float array, columns named by ROUND_FIGURES."""
        model, state = self.model, self.model.state
        n = model.n_agents
        decided = np.zeros(n)
        decided[deciding] = 1
        invalid = np.zeros(n)
        invalid[ids[~valid]] = 1
        blocks, labels = [], []
        payoff_order = np.argsort(state.cumulative_payoff, kind="stable")
        for grouping, key, names in self._groupings():
            k = len(names)
            count = np.bincount(key, minlength=k).astype(float)
            n_decided = np.bincount(key, decided, k)
            welfare = np.bincount(key, outcome["payoff"], k)
            with np.errstate(divide="ignore", invalid="ignore"):
                figures = {
                    "round": np.full(k, model.round),
                    "n_agents": count,
                    "share": count / n,
                    "n_decided": n_decided,
                    "n_idle": count - n_decided,
                    "n_invalid": np.bincount(key, invalid, k),
                    "welfare": welfare,
                    "mean_payoff": welfare / n_decided,
                    "mean_cumulative_payoff": np.bincount(key, state.cumulative_payoff, k) / count,
                    "gini_cumulative_payoff": grouped_gini(state.cumulative_payoff, key, k, payoff_order),
                    "mean_value_angle": np.bincount(key, state.theta, k) / count,
                }
            block = np.stack([figures[name] for name in ROUND_FIGURES], axis=1)
            keep = count > 0 if grouping == "category" else np.ones(k, dtype=bool)
            blocks.append(block[keep])
            labels.extend((grouping, name) for name, kept in zip(names, keep) if kept)
        self._labels.append(labels)
        return np.concatenate(blocks)

    # ------------------------------------------------------------------ drain
    def pending_rounds(self) -> int:
        return len(self._rounds)

    def decision_rows(self) -> pa.Table:
        """All buffered decision rows (without draining)."""
        if not self._decisions:
            return DECISION_SCHEMA.empty_table()
        n = sum(row["n"] for row in self._decisions)
        columns = []
        for field in DECISION_SCHEMA:
            name = field.name
            if name in _NUMERIC:
                values = np.concatenate([row[name] for row in self._decisions]).astype(_NUMERIC[name], copy=False)
                if name in ("group", "decider", "value_category", "menu_id", "options_shown"):
                    names = {
                        "group": self.model.group_names,
                        "decider": self._decider_names,
                        "value_category": list(CATEGORY_ORDER),
                        "menu_id": self._menu_ids,
                        "options_shown": self._shown_texts,
                    }[name]
                    columns.append(_dictionary(values, names))
                elif field.type == pa.float64() and name in ("self_amount", "other_amount"):
                    columns.append(pa.array(values, field.type, from_pandas=True))
                else:
                    columns.append(pa.array(values, field.type))
            elif any(name in row for row in self._decisions):
                merged: list[Any] = []
                for row in self._decisions:
                    merged.extend(row.get(name, [None] * row["n"]))
                columns.append(pa.array(merged, field.type))
            else:
                columns.append(pa.nulls(n, field.type))
        return pa.Table.from_arrays(columns, schema=DECISION_SCHEMA)

    def round_rows(self) -> pa.Table:
        if not self._rounds:
            return ROUND_SCHEMA.empty_table()
        figures = np.concatenate(self._rounds)
        labels = [label for round_labels in self._labels for label in round_labels]
        data: dict[str, Any] = {"grouping": [g for g, _ in labels], "group": [name for _, name in labels]}
        for j, name in enumerate(ROUND_FIGURES):
            column = figures[:, j]
            data[name] = column.astype(np.int32) if ROUND_SCHEMA.field(name).type == pa.int32() else column
        return pa.Table.from_pydict({name: data[name] for name in ROUND_SCHEMA.names}, schema=ROUND_SCHEMA)

    def collect_value_changes(self, changes, rule: str) -> None:
        """Record value changes made by the dynamics (see :mod:`hvae.simulation.dynamics`)."""
        from hvae.agents.svo import category

        codes = self.model.state.group_code
        for change in changes:
            self._value_changes.append(
                {
                    "round": change.round,
                    "agent_id": change.agent_id,
                    "group": self.model.group_names[codes[change.agent_id]],
                    "rule": rule,
                    "old_angle": change.old_angle,
                    "new_angle": change.new_angle,
                    "old_category": category(change.old_angle),
                    "new_category": category(change.new_angle),
                    "source_agent": change.source_agent,
                }
            )

    def drain(self) -> dict[str, pa.Table]:
        """Return and forget the buffered tables, by name (see :data:`TABLE_SCHEMAS`)."""
        tables = {
            "decisions": self.decision_rows(),
            "rounds": self.round_rows(),
            "value_changes": pa.Table.from_pylist(self._value_changes, schema=VALUE_CHANGE_SCHEMA),
            "messages": pa.Table.from_pylist(self._messages, schema=MESSAGE_SCHEMA),
        }
        self._decisions, self._rounds, self._labels, self._value_changes = [], [], [], []
        self._messages = []
        return tables


TABLE_SCHEMAS.update(
    decisions=DECISION_SCHEMA, rounds=ROUND_SCHEMA, value_changes=VALUE_CHANGE_SCHEMA, messages=MESSAGE_SCHEMA
)


def _concat_metadata(decisions: list[Decisions], name: str) -> list | None:
    if not any(name in d.metadata for d in decisions):
        return None
    values: list = []
    for d in decisions:
        values.extend(d.metadata.get(name, [None] * d.choice.shape[0]))
    return values
