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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa

from hvae.agents.deciders import CodedColumn
from hvae.agents.svo import CATEGORY_ORDER, category_codes_of

if TYPE_CHECKING:
    from hvae.agents.deciders import Decisions
    from hvae.simulation.dynamics import ValueChanges
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

CHOICE_COUNT_SCHEMA = pa.schema(
    [
        ("round", pa.int32()),
        ("group", _DICT),
        ("menu_id", _DICT),
        ("choice", pa.int16()),
        ("chosen_position", pa.int16()),
        ("valid", pa.bool_()),
        ("n", pa.int64()),
    ]
)

#: Every table the log produces, with its fixed schema (the run store appends each).
TABLE_SCHEMAS: dict[str, pa.Schema] = {}

#: Tables written only when a run produced rows for them (no empty ``messages.parquet`` without talk).
OPTIONAL_TABLES = frozenset({"messages", "choice_counts"})

_LLM_COLUMNS = ("fallback", "raw_reply", "reason", "latency_s", "tokens_in", "tokens_out", "cache_hit", "attempts")


def gini(values: np.ndarray) -> float:
    """Gini coefficient; negative payoffs are shifted so the minimum is 0 (NaN if all zero)."""
    return float(grouped_gini(np.asarray(values, dtype=float), np.zeros(len(values), np.int64), 1)[0])


def grouped_gini(
    values: np.ndarray, key: np.ndarray | None, n_groups: int, order: np.ndarray | None = None
) -> np.ndarray:
    """Gini coefficient of ``values`` within each group ``key`` (0..n_groups-1), vectorised.

    Uses ``G = Σ (2i − n − 1) x_(i) / (n Σ x)`` over each group's sorted values; a group with a
    negative value is shifted so its minimum is 0 (the weights sum to zero, so only the
    denominator changes). Empty or all-zero groups give NaN. ``order`` (``argsort(values)``)
    may be passed to share one sort between several groupings; it need not be stable: tied values
    are equal, so the sorted values, and every sum over them, are the same whichever tie comes first.
    Without it, a few groups' values are sorted group by group (``key`` may be None for one group).
    """
    values = np.asarray(values, dtype=float)
    if order is None and n_groups <= 16:  # a few groups: sort each group's values (a SIMD sort, no argsort)
        if n_groups == 1:
            return _gini_of_sorted([np.sort(values)])
        return _gini_of_sorted([np.sort(values[key == g]) for g in range(n_groups)])
    if order is None:
        order = np.argsort(values)  # any sort: tied values are equal, so the sorted values are the same
    sorted_values = values[order]
    if n_groups == 1:
        return _gini_of_sorted([sorted_values])
    sorted_key = np.asarray(key)[order]  # selecting a group's entries keeps them sorted
    return _gini_of_sorted([sorted_values[sorted_key == g] for g in range(n_groups)])


def _gini_of_sorted(members: list[np.ndarray]) -> np.ndarray:
    """The Gini coefficient of each group's values, given sorted ascending."""
    result = np.full(len(members), np.nan)
    for g, x in enumerate(members):
        m = x.size
        if m == 0:
            continue
        shift = min(float(x[0]), 0.0)
        raw_total = float(x.sum())
        total = raw_total - m * shift
        if total <= 1e-12 * (abs(raw_total) + m * abs(shift) + 1.0):
            continue
        weights = np.arange(1 - m, m, 2, dtype=float)  # 2i − m − 1 for i = 1..m
        result[g] = float(np.multiply(weights, x).sum()) / (m * total)  # not BLAS: its threads would spin on 2 cores
    return result


class _Partition:
    """The agents ordered by a grouping's key, kept while the key stays the same (groups never
    change; categories change only when values do), with each group's bounds in that order."""

    def __init__(self) -> None:
        self.key: np.ndarray | None = None
        self.order = self.bounds = np.zeros(0, dtype=np.int64)

    def of(self, key: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        if self.key is None or not np.array_equal(self.key, key):
            self.key = key.copy()
            self.order = np.argsort(key, kind="stable")
            self.bounds = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=n_groups))])
        return self.order, self.bounds


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
        self._value_changes: list[pa.Table] = []
        self._messages: list[dict[str, Any]] = []
        self._max_options = max(len(m.options) for m in model.schedule.menus)
        self._partitions: dict[str, _Partition] = {}  # agents ordered by group, by category (round figures)
        # records: {decisions: sample} keeps the rows of a fixed random set of agents (drawn from
        # the seed's stream after the model's own, so no other draw moves) and counts every decision
        self._counts: list[pa.Table] = []
        self.sampled: np.ndarray | None = None
        records = model.scenario.records
        if records.decisions == "sample":
            rng = np.random.default_rng(np.random.SeedSequence(model.seed).spawn(len(model.streams) + 1)[-1])
            chosen = rng.choice(model.n_agents, size=min(records.sample_agents, model.n_agents), replace=False)
            self.sampled = np.zeros(model.n_agents, dtype=bool)
            self.sampled[chosen] = True

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
        n_invalid = int(n - valid.sum())
        if deciding.size == n == model.n_agents:  # everyone decided once (deciding: sorted, unique)
            state.n_decisions += 1
            state.n_invalid[ids[~valid]] += 1
        else:
            state.n_decisions[ids] += 1
            state.n_invalid[ids] += ~valid
            idle = np.ones(model.n_agents, dtype=bool)
            idle[deciding] = False
            state.n_idle[idle] += 1
        self.totals["decisions"] += n
        self.totals["invalid"] += n_invalid
        self.totals["idle"] += model.n_agents - deciding.size

        optional = {name: _concat_metadata(decisions, name) for name in _OPTIONAL}
        menu_code = self._menu_code[menu.menu_id]
        shown_codes, position = self._shown(menu, chosen, optional["shown_order"])
        group_codes = state.group_code[ids]
        self._rounds.append(self._round_figures(deciding, ids, valid, outcome))
        if self.sampled is not None:  # records: {decisions: sample}: count every decision, keep the sample's rows
            self._counts.append(self._choice_counts(menu_code, group_codes, chosen, position, valid))
            keep = np.flatnonzero(self.sampled[ids])
            ids, chosen, valid, position, shown_codes, group_codes = (
                a[keep] for a in (ids, chosen, valid, position, shown_codes, group_codes)
            )
            optional = {name: None if v is None else v.take(keep) if isinstance(v, CodedColumn) else [v[i] for i in keep.tolist()]
                        for name, v in optional.items()}
            n = ids.size
        theta = state.theta[ids]
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

    def _shown(self, menu: Menu, chosen: np.ndarray, shown_order: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """Each decision's ``options_shown`` code and the display position of its choice.

        Display orders repeat (a counterbalanced decider shows a few orders), so each distinct
        ``shown_order`` text is parsed once and positions are looked up in its inverse permutation.
        """
        n = chosen.size
        menu_code = self._menu_code[menu.menu_id]
        if shown_order is None:
            return np.full(n, menu_code, np.int32), chosen
        if isinstance(shown_order, CodedColumn):  # already coded by the decider
            numbered = [(text, index) for index, text in enumerate(shown_order.values)]
            which = shown_order.codes
        else:  # each distinct text (None included), in order of first appearance, numbered without a Python loop
            distinct = dict.fromkeys(shown_order)
            for index, text in enumerate(distinct):
                distinct[text] = index
            which = np.fromiter(map(distinct.__getitem__, shown_order), np.int64, n)
            numbered = list(distinct.items())
        k = len(menu.options)
        inverse = np.tile(np.arange(k), (len(numbered), 1))
        codes = np.empty(len(numbered), np.int32)
        for text, index in numbered:
            order = None if text is None else np.array(text.split(","), dtype=int)
            described = menu.describe(order)
            codes[index] = self._shown_code.setdefault(described, len(self._shown_code))
            if order is not None:
                inverse[index, order] = np.arange(order.size)
        self._shown_texts = list(self._shown_code)
        position = np.where(chosen >= 0, inverse[which, np.maximum(chosen, 0)], chosen)
        return codes[which], position

    def _choice_counts(self, menu_code: int, group_codes, chosen, position, valid) -> pa.Table:
        """Decisions of the round per group, option, display position and validity (every decision)."""
        model = self.model
        k = self._max_options
        key = ((group_codes.astype(np.int64) * (k + 1) + (chosen + 1)) * (k + 1) + (position + 1)) * 2 + valid
        size = len(model.group_names) * (k + 1) * (k + 1) * 2
        if size <= 4 * max(key.size, 1):  # few possible keys (the slider: 800): count them directly
            every = np.bincount(key, minlength=size)
            values = np.flatnonzero(every)
            counts = every[values]
        else:
            values, counts = np.unique(key, return_counts=True)
        rest, is_valid = np.divmod(values, 2)
        rest, shown = np.divmod(rest, k + 1)
        group, option = np.divmod(rest, k + 1)
        m = values.size
        return pa.table(
            {
                "round": np.full(m, model.round, np.int32),
                "group": _dictionary(group, model.group_names),
                "menu_id": _dictionary(np.full(m, menu_code), self._menu_ids),
                "choice": (option - 1).astype(np.int16),
                "chosen_position": (shown - 1).astype(np.int16),
                "valid": is_valid.astype(bool),
                "n": counts.astype(np.int64),
            },
            schema=CHOICE_COUNT_SCHEMA,
        )

    def _groupings(self) -> list[tuple[str, np.ndarray | None, list[str]]]:
        """The round table's groupings: name, each agent's key (None: one group), names."""
        state = self.model.state
        return [
            ("all", None, ["all"]),
            ("group", state.group_code.astype(np.intp), self.model.group_names),
            ("category", category_codes_of(state.theta), list(CATEGORY_ORDER)),
        ]

    def _round_figures(self, deciding, ids, valid, outcome) -> np.ndarray:
        """One round's figures: an (n_rows, len(ROUND_FIGURES)) float array, columns named by ROUND_FIGURES."""
        model, state = self.model, self.model.state
        n = model.n_agents
        invalid_ids = ids[~valid]
        blocks, labels = [], []
        for grouping, key, names in self._groupings():
            k = len(names)

            def sums(weights: np.ndarray | None, key=key, k=k) -> np.ndarray:
                if key is None:
                    return np.array([float(n) if weights is None else float(weights.sum())])
                return np.bincount(key, weights, k).astype(float)

            def counts(agents: np.ndarray, key=key, k=k) -> np.ndarray:  # agents per group among these
                if key is None:
                    return np.array([float(agents.size)])
                return np.bincount(key[agents], minlength=k).astype(float)

            if key is None:
                count, gini = sums(None), grouped_gini(state.cumulative_payoff, None, 1)
            else:  # each group's payoffs are a slice of the agents ordered by group: sort the slices
                order, bounds = self._partitions.setdefault(grouping, _Partition()).of(key, k)
                payoffs = state.cumulative_payoff[order]
                count = np.diff(bounds).astype(float)
                gini = _gini_of_sorted([np.sort(payoffs[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
            n_decided = count if deciding.size == n else counts(deciding)
            welfare = sums(outcome["payoff"])
            with np.errstate(divide="ignore", invalid="ignore"):
                figures = {
                    "round": np.full(k, model.round),
                    "n_agents": count,
                    "share": count / n,
                    "n_decided": n_decided,
                    "n_idle": count - n_decided,
                    "n_invalid": counts(invalid_ids),
                    "welfare": welfare,
                    "mean_payoff": welfare / n_decided,
                    "mean_cumulative_payoff": sums(state.cumulative_payoff) / count,
                    "gini_cumulative_payoff": gini,
                    "mean_value_angle": sums(state.theta) / count,
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

    def collect_value_changes(self, changes: ValueChanges, rule: str) -> None:
        """Record value changes made by the dynamics (see :mod:`hvae.simulation.dynamics`), as columns."""
        if not len(changes):
            return
        n = len(changes)

        def strings(codes: np.ndarray, names: list[str]) -> pa.Array:  # no Python string per row
            return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=codes < 0), names).cast(pa.string())

        self._value_changes.append(
            pa.table(
                {
                    "round": np.full(n, changes.round, np.int32),
                    "agent_id": changes.agent_id.astype(np.int32),
                    "group": strings(self.model.state.group_code[changes.agent_id], self.model.group_names),
                    "rule": strings(np.zeros(n, np.int32), [rule]),
                    "old_angle": changes.old_angle,
                    "new_angle": changes.new_angle,
                    "old_category": strings(category_codes_of(changes.old_angle), list(CATEGORY_ORDER)),
                    "new_category": strings(category_codes_of(changes.new_angle), list(CATEGORY_ORDER)),
                    "source_agent": changes.source_agent.astype(np.int32),
                },
                schema=VALUE_CHANGE_SCHEMA,
            )
        )

    def drain(self) -> dict[str, pa.Table]:
        """Return and forget the buffered tables, by name (see :data:`TABLE_SCHEMAS`)."""
        tables = {
            "decisions": self.decision_rows(),
            "rounds": self.round_rows(),
            "value_changes": pa.concat_tables([VALUE_CHANGE_SCHEMA.empty_table(), *self._value_changes]),
            "messages": pa.Table.from_pylist(self._messages, schema=MESSAGE_SCHEMA),
            "choice_counts": pa.concat_tables([CHOICE_COUNT_SCHEMA.empty_table(), *self._counts]),
        }
        self._decisions, self._rounds, self._labels, self._value_changes = [], [], [], []
        self._messages, self._counts = [], []
        return tables


TABLE_SCHEMAS.update(
    decisions=DECISION_SCHEMA, rounds=ROUND_SCHEMA, value_changes=VALUE_CHANGE_SCHEMA, messages=MESSAGE_SCHEMA,
    choice_counts=CHOICE_COUNT_SCHEMA,
)


def _concat_metadata(decisions: list[Decisions], name: str) -> Sequence[Any] | None:
    if not any(name in d.metadata for d in decisions):
        return None
    given = [d.metadata.get(name) for d in decisions]
    if all(g is None or isinstance(g, CodedColumn) for g in given):  # codes stay codes (vectorised deciders)
        return CodedColumn.concat(cast(list[CodedColumn | None], given), [d.choice.shape[0] for d in decisions])
    values: list = []
    for d in decisions:
        given = d.metadata.get(name)
        values.extend([None] * d.choice.shape[0] if given is None else given)
    return values
