"""What the SVO Slider's answers say beyond the angle: transitivity and the prosocial subtype.

Murphy et al. (2011) check a respondent's six primary answers for **transitivity**: each item
pits two of four ideal allocations (altruistic, prosocial, individualistic, competitive) against
each other, the answer reveals which endpoint is preferred, and a consistent respondent's
preferences form no cycle (:func:`is_transitive`, vectorised :func:`transitivity`). The nine
**secondary items** separate two kinds of prosocial: :func:`secondary_distances` to each ideal
type and :func:`prosocial_subtype` (inequality averse or joint-gain maximiser). The angle itself
and the items are in :mod:`hvae.agents.svo`::

    >>> is_transitive(parse_choices("AIAAII"))
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hvae.agents.svo import ENDPOINTS, PRIMARY_ITEMS, PRIMARY_ITEM_ENDPOINTS, SECONDARY_IDEALS, parse_choices, primary_allocations


def preference_edges(choices: Sequence[int]) -> list[tuple[str, str]]:
    """Directed preferences (preferred, other) revealed by the six primary answers.

    For each item the endpoint nearer (Euclidean) to the chosen allocation is preferred over the
    item's other endpoint; equal distances reveal no preference.
    """
    edges = []
    for (first, second), (s, o) in zip(PRIMARY_ITEM_ENDPOINTS, primary_allocations(choices)):
        d_first = math.dist((s, o), ENDPOINTS[first])
        d_second = math.dist((s, o), ENDPOINTS[second])
        if d_first < d_second:
            edges.append((first, second))
        elif d_second < d_first:
            edges.append((second, first))
    return edges


def is_transitive(choices: Sequence[int]) -> bool:
    """True iff the preference graph of the six primary answers has no directed cycle."""
    graph: dict[str, list[str]] = {name: [] for name in ENDPOINTS}
    for preferred, other in preference_edges(choices):
        graph[preferred].append(other)
    return not _has_cycle(graph)


def _preference_codes() -> np.ndarray:
    """Per primary item and option: 0 = the item's first endpoint preferred, 1 = the second, 2 = none."""
    codes = np.full((6, 9), 2, dtype=np.int64)
    for i, (first, second) in enumerate(PRIMARY_ITEM_ENDPOINTS):
        for j, (s, o) in enumerate(PRIMARY_ITEMS[i]):
            d_first, d_second = math.dist((s, o), ENDPOINTS[first]), math.dist((s, o), ENDPOINTS[second])
            codes[i, j] = 0 if d_first < d_second else 1 if d_second < d_first else 2
    return codes


def _transitive_by_pattern() -> np.ndarray:
    """Transitivity of each of the 3⁶ preference patterns (one code per item, base 3)."""
    names = list(ENDPOINTS)
    table = np.zeros(3**6, dtype=bool)
    for pattern in range(3**6):
        graph: dict[str, list[str]] = {name: [] for name in names}
        for i, (first, second) in enumerate(PRIMARY_ITEM_ENDPOINTS):
            code = pattern // 3**i % 3
            if code == 0:
                graph[first].append(second)
            elif code == 1:
                graph[second].append(first)
        table[pattern] = not _has_cycle(graph)
    return table


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = finished

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1 or (nxt not in state and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(node not in state and visit(node) for node in graph)


_TRANSITIVITY: tuple[np.ndarray, np.ndarray] | None = None


def transitivity(choice_matrix: np.ndarray) -> np.ndarray:
    """Vectorised :func:`is_transitive` for an ``(n, 6)`` matrix of primary answers (0..8)."""
    global _TRANSITIVITY
    if _TRANSITIVITY is None:
        _TRANSITIVITY = (_preference_codes(), _transitive_by_pattern())
    codes, table = _TRANSITIVITY
    choice_matrix = np.asarray(choice_matrix, dtype=np.int64).reshape(-1, 6)
    patterns = (codes[np.arange(6)[None, :], choice_matrix] * 3 ** np.arange(6)[None, :]).sum(axis=1)
    return table[patterns]


def secondary_distances(choices: Sequence[int]) -> dict[str, float]:
    """Mean normalised distance of nine secondary answers (indices 0..8) to each ideal type."""
    answers = parse_choices(choices, n_items=9) if isinstance(choices, str) else list(choices)
    if len(answers) != 9:
        raise ValueError(f"expected 9 secondary answers, got {len(answers)}")
    distances = {}
    for type_name, ideals in SECONDARY_IDEALS.items():
        terms = [abs((a + 1) - ideal) / 8.0 for a, ideal in zip(answers, ideals) if ideal is not None]
        distances[type_name] = float(np.mean(terms))
    return distances


def prosocial_subtype(choices: Sequence[int]) -> str | None:
    """``"inequality_averse"`` or ``"joint_gain_max"`` when those are the two nearest types, else None.

    Ties for the nearest type also give None (the answers do not separate the two).
    """
    distances = secondary_distances(choices)
    ranked = sorted(distances, key=distances.get)
    if set(ranked[:2]) != {"inequality_averse", "joint_gain_max"}:
        return None
    if distances["inequality_averse"] == distances["joint_gain_max"]:
        return None
    return ranked[0]


def prosocial_subtypes(choice_matrix: np.ndarray) -> np.ndarray:
    """Vectorised :func:`prosocial_subtype` for an ``(n, 9)`` matrix of secondary answers (0..8)."""
    answers = np.asarray(choice_matrix, dtype=float).reshape(-1, 9) + 1
    types = list(SECONDARY_IDEALS)
    distances = np.empty((answers.shape[0], len(types)))
    for k, ideals in enumerate(SECONDARY_IDEALS.values()):
        items = [i for i, ideal in enumerate(ideals) if ideal is not None]
        target = np.array([ideals[i] for i in items], dtype=float)
        distances[:, k] = (np.abs(answers[:, items] - target[None, :]) / 8.0).mean(axis=1)
    ranked = np.argsort(distances, axis=1, kind="stable")  # ties keep the types' order, as sorted() does
    first_two = np.sort(ranked[:, :2], axis=1)
    averse, joint = types.index("inequality_averse"), types.index("joint_gain_max")
    separates = (first_two[:, 0] == min(averse, joint)) & (first_two[:, 1] == max(averse, joint))
    separates &= distances[:, averse] != distances[:, joint]
    nearer = np.where(distances[:, averse] < distances[:, joint], "inequality_averse", "joint_gain_max")
    return np.where(separates, nearer, None).astype(object)
