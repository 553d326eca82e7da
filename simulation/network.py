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
