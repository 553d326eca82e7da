"""Matching: which pairs play in a round.

* ``random`` — a random maximal matching along the network's edges: each agent has at most one
  partner; agents left without one are idle that round. It is exactly the greedy matching over a
  uniformly random order of the edges, computed in parallel rounds (an edge joins when it has
  the smallest random priority among all still-open edges touching either end); the result equals
  the sequential greedy algorithm for the same priorities, which a test checks.
  On a complete graph it pairs a random permutation of the agents.
* ``all_edges`` — every edge plays; each agent makes one choice per round that applies to all of
  its games, and its payoff is summed over them.
"""

from __future__ import annotations

import numpy as np


def random_maximal_matching(
    edges: np.ndarray, n_nodes: int, rng: np.random.Generator, priorities: np.ndarray | None = None
) -> np.ndarray:
    """Greedy maximal matching over a random edge order; returns the matched ``(m, 2)`` edges."""
    if len(edges) == 0:
        return edges.reshape(0, 2)
    if priorities is None:
        priorities = rng.permutation(len(edges)).astype(np.int64)
    open_edges = np.arange(len(edges))
    matched = []
    free = np.ones(n_nodes, dtype=bool)
    while open_edges.size:
        u, v = edges[open_edges, 0], edges[open_edges, 1]
        p = priorities[open_edges]
        best = np.full(n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, u, p)
        np.minimum.at(best, v, p)
        chosen = (best[u] == p) & (best[v] == p)
        matched.append(open_edges[chosen])
        free[u[chosen]] = False
        free[v[chosen]] = False
        keep = free[u] & free[v] & ~chosen
        open_edges = open_edges[keep]
    return edges[np.concatenate(matched)]


def greedy_matching(edges: np.ndarray, priorities: np.ndarray) -> np.ndarray:
    """Reference sequential greedy matching (edges taken in increasing priority)."""
    taken: set[int] = set()
    matched = []
    for index in np.argsort(priorities, kind="stable"):
        u, v = int(edges[index, 0]), int(edges[index, 1])
        if u not in taken and v not in taken:
            taken.update((u, v))
            matched.append(index)
    return edges[np.array(matched, dtype=np.int64)].reshape(-1, 2)


def random_permutation_pairs(n_nodes: int, rng: np.random.Generator) -> np.ndarray:
    """Pairs of a random permutation (the random matching of a complete graph)."""
    order = rng.permutation(n_nodes)
    half = n_nodes // 2
    return np.stack([order[:half], order[half : 2 * half]], axis=1)
