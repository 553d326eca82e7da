"""Networks: who can meet whom. Builds the networkx graph that the Mesa ``Network`` space wraps.

Families (the scenario's ``network.kind``):

========================  =====================================================================
``complete``              everyone can meet everyone
``ring_lattice``          a ring where each node links to its ``k`` nearest neighbours
``watts_strogatz``        a ring lattice whose edges are rewired with probability ``p``
``barabasi_albert``       preferential attachment, ``m`` edges per new node
``erdos_renyi``           each pair linked with probability ``p``
``grid``                  a ``rows`` × ``cols`` 2-D lattice (``periodic`` for a torus)
``file``                  an edge list (``path``), one ``u v`` pair a line, ``#`` comments
========================  =====================================================================

Nodes are relabelled ``0..n-1`` so that node ``i`` holds agent ``i``; agents are spread over the
nodes in a random order, so groups are mixed unless the scenario asks otherwise.

**Two builders.** By default (``builder: networkx``) the graph is a networkx graph, which Mesa's
``Network`` space wraps. networkx keeps a dict per node and per edge: at a million nodes a
Watts–Strogatz graph takes ~20 s and over a gigabyte before Mesa adds a cell object per node. With
``builder: arrays`` (``ring_lattice`` and ``watts_strogatz``) :func:`build_edges` generates the edges
straight into an ``(E, 2)`` array — the same families, drawn with numpy (so a given seed gives
another graph than networkx's); the model then builds Mesa's space only when something asks for it::

    edges = build_edges({"kind": "watts_strogatz", "k": 4, "p": 0.1}, 1_000_000, seed=1)
    edges.shape   # (2000000, 2), each row (u, v) with u < v, rows sorted
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from hvae.files.untrusted import UnsafeFile, check_regular
from hvae.scenarios.errors import ScenarioError


class NetworkError(ScenarioError):
    """A network that cannot be built as configured."""


def build_graph(config: dict, n_agents: int, seed: int) -> nx.Graph:
    """Build the graph for ``n_agents`` nodes from a scenario's ``network`` section (as a dict)."""
    kind = config["kind"]
    if kind == "complete":
        graph = nx.complete_graph(n_agents)
    elif kind == "ring_lattice":
        graph = nx.watts_strogatz_graph(n_agents, _even_k(config, n_agents), 0.0, seed=seed)
    elif kind == "watts_strogatz":
        graph = nx.watts_strogatz_graph(n_agents, _even_k(config, n_agents), config["p"], seed=seed)
    elif kind == "barabasi_albert":
        m = config["m"]
        if not 1 <= m < n_agents:
            raise NetworkError(f"network.m must be between 1 and {n_agents - 1}, got {m}")
        graph = nx.barabasi_albert_graph(n_agents, m, seed=seed)
    elif kind == "erdos_renyi":
        graph = nx.gnp_random_graph(n_agents, config["p"], seed=seed)
    elif kind == "grid":
        rows, cols = config["rows"], config["cols"]
        if rows * cols != n_agents:
            raise NetworkError(
                f"network grid {rows}x{cols} has {rows * cols} nodes but the population has "
                f"{n_agents} agents"
            )
        graph = nx.grid_2d_graph(rows, cols, periodic=config.get("periodic", False))
    elif kind == "file":
        graph = read_edge_list(Path(config["path"]))
        if graph.number_of_nodes() != n_agents:
            raise NetworkError(
                f"network file {config['path']} has {graph.number_of_nodes()} nodes but the "
                f"population has {n_agents} agents"
            )
    else:
        raise NetworkError(f"unknown network kind {kind!r}")
    return nx.convert_node_labels_to_integers(graph, ordering="sorted")


#: Times a rewired edge whose new end made a self-loop or a duplicate is drawn again before it
#: is dropped (each draw fails with probability about k / n: at n = 1,000 and k = 6 one edge in
#: 10^38 is dropped).
MAX_REDRAWS = 16


def build_edges(config: dict, n_agents: int, seed: int) -> np.ndarray:
    """The edges of a ``builder: arrays`` network as an ``(E, 2)`` int64 array (module docstring).

    ``ring_lattice``: node ``i`` links to ``i + 1 … i + k/2`` (mod n). ``watts_strogatz``: that
    lattice, then each edge (u, v) is rewired with probability ``p`` to (u, w), w uniform among the
    other nodes, as networkx does; a w that makes a self-loop or an edge already present is drawn
    again (:data:`MAX_REDRAWS` times, then the edge is dropped). Rows are ``(min, max)``, sorted.
    """
    kind = config["kind"]
    k = _even_k(config, n_agents)
    nodes = np.arange(n_agents, dtype=np.int64)
    edges = np.concatenate([np.stack([nodes, (nodes + j) % n_agents], axis=1) for j in range(1, k // 2 + 1)])
    if kind == "watts_strogatz" and config["p"] > 0:
        edges = _rewire(edges, n_agents, config["p"], np.random.default_rng(seed))
    elif kind not in ("ring_lattice", "watts_strogatz"):
        raise NetworkError(f"network kind {kind!r} has no arrays builder (use builder: networkx)")
    return _canonical(edges, n_agents)


def _rewire(edges: np.ndarray, n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Watts–Strogatz rewiring of a lattice's edges, vectorised (see :func:`build_edges`)."""
    pending = np.flatnonzero(rng.random(len(edges)) < p)
    keep = np.ones(len(edges), dtype=bool)
    for _ in range(MAX_REDRAWS):
        if pending.size == 0:
            break
        u = edges[pending, 0]
        w = rng.integers(0, n - 1, pending.size)
        edges[pending, 1] = w + (w >= u)  # uniform over the nodes other than u: never a self-loop
        pending = _duplicates(edges, n, pending)
    keep[pending] = False
    return edges[keep]


def _duplicates(edges: np.ndarray, n: int, new: np.ndarray) -> np.ndarray:
    """Which of the ``new`` edges duplicate another edge (an old one wins, then the lower row)."""
    low, high = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    key = low * n + high
    is_new = np.zeros(len(edges), dtype=np.int8)
    is_new[new] = 1
    order = np.lexsort((np.arange(len(edges)), is_new, key))
    repeated = np.zeros(len(edges), dtype=bool)
    repeated[order[1:]] = key[order[1:]] == key[order[:-1]]
    return np.flatnonzero(repeated)


def _canonical(edges: np.ndarray, n: int) -> np.ndarray:
    low, high = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
    order = np.argsort(low * n + high, kind="stable")
    return np.stack([low[order], high[order]], axis=1)


def graph_of_edges(edges: np.ndarray, n_agents: int) -> nx.Graph:
    """A networkx graph of nodes ``0..n-1`` and the given edges (Mesa's space of an arrays network)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(n_agents))
    graph.add_edges_from(edges.tolist())
    return graph


def _even_k(config: dict, n_agents: int) -> int:
    k = config["k"]
    if k < 2 or k >= n_agents or k % 2:
        raise NetworkError(
            f"network.k must be an even number between 2 and {n_agents - 1}, got {k}"
        )
    return k


#: Longest line an edge list may have, and the most of a bad line an error message quotes.
MAX_LINE_CHARS = 1024
EXCERPT_CHARS = 40
#: Largest network file read (bytes).
MAX_FILE_BYTES = 512 << 20


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, quoted excerpt of ``text`` for an error message (never the whole of a long line)."""
    text = text.strip()
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"


def read_edge_list(path: Path) -> nx.Graph:
    """Read an undirected edge list (``u v`` per line); raise :class:`NetworkError` if unusable.

    A scenario can point this at any file, so errors quote at most a short excerpt of the line
    at fault, and a line longer than :data:`MAX_LINE_CHARS` is an error of its own.
    """
    try:
        check_regular(path, "network file", MAX_FILE_BYTES)
    except FileNotFoundError:
        raise NetworkError(f"network file {path} does not exist") from None
    except UnsafeFile as error:  # a FIFO would block the read, a device never end it
        raise NetworkError(str(error)) from None
    except OSError as error:
        raise NetworkError(f"network file {path} cannot be read ({error.strerror})") from None
    graph = nx.Graph()
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except OSError as error:
        raise NetworkError(f"network file {path} cannot be read ({error.strerror})") from None
    with handle:
        line_no = 0
        while True:
            try:
                line = handle.readline(MAX_LINE_CHARS + 1)
            except OSError as error:
                raise NetworkError(f"network file {path} cannot be read ({error.strerror})") from None
            if not line:
                break
            line_no += 1
            if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
                raise NetworkError(
                    f"{path}:{line_no}: line longer than {MAX_LINE_CHARS} characters, not an edge list: "
                    f"{excerpt(line)}"
                )
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = text.replace(",", " ").split()
            if len(parts) < 2:
                raise NetworkError(f"{path}:{line_no}: expected two node ids, got {excerpt(line)}")
            graph.add_edge(parts[0], parts[1])
    if graph.number_of_edges() == 0:
        raise NetworkError(f"network file {path} has no edges")
    keys = {node: _node_key(node) for node in graph.nodes}
    if not all(isinstance(key, int) for key in keys.values()):
        return graph  # some ids are not numbers: all stay text, so they sort one way (no int-vs-str compare)
    return nx.relabel_nodes(graph, keys)


def _node_key(node: str) -> int | str:
    try:
        return int(node)
    except ValueError:
        return node


def edge_array(graph: nx.Graph) -> np.ndarray:
    """The graph's edges as an ``(E, 2)`` int array (self-loops dropped)."""
    edges = np.array([(u, v) for u, v in graph.edges if u != v], dtype=np.int64)
    return edges.reshape(-1, 2)


def is_complete(graph: nx.Graph) -> bool:
    """Whether every pair of distinct nodes is linked (self-loops do not count: they link no pair)."""
    n = graph.number_of_nodes()
    return graph.number_of_edges() - nx.number_of_selfloops(graph) == n * (n - 1) // 2
