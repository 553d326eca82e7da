"""Matching: the parallel random matching equals sequential greedy and is a maximal matching."""

from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae.simulation.matching import greedy_matching, random_maximal_matching, random_permutation_pairs
from hvae.simulation.network import edge_array


@given(st.integers(2, 40), st.floats(0.05, 0.9), st.integers(0, 10_000))
@settings(max_examples=80, deadline=None)
def test_parallel_matching_equals_greedy_and_is_maximal(n: int, p: float, seed: int) -> None:
    graph = nx.gnp_random_graph(n, p, seed=seed)
    edges = edge_array(graph)
    rng = np.random.default_rng(seed)
    priorities = rng.permutation(len(edges)) if len(edges) else np.array([], dtype=np.int64)
    matched = random_maximal_matching(edges, n, rng, priorities=priorities)
    expected = greedy_matching(edges, priorities) if len(edges) else edges
    assert sorted(map(tuple, matched.tolist())) == sorted(map(tuple, expected.tolist()))
    nodes = matched.ravel()
    assert len(nodes) == len(set(nodes.tolist()))  # each agent at most one partner
    matched_nodes = set(nodes.tolist())
    for u, v in edges.tolist():  # maximal: no edge with both ends free
        assert u in matched_nodes or v in matched_nodes


def test_permutation_pairs_cover_everyone_once() -> None:
    pairs = random_permutation_pairs(11, np.random.default_rng(0))
    assert pairs.shape == (5, 2)
    assert len(set(pairs.ravel().tolist())) == 10
