"""The limits of a scenario: how large anything it asks for may be, checked before anything is allocated.

A scenario file is data from anyone (a co-author, a paper's supplement), and a single number in it
decides how much memory a run takes: ``count: 1e12`` agents, a dictator game with an endowment of
``1e12`` in steps of 1 (10^12 options), a public goods ``step: 1e-300``, a complete network of a
million agents. The schema (:mod:`hvae.scenarios.schema`) checks every size against these limits
while validating, so such a file gets one line (``hvae: error: ...``, exit 2) instead of a
``MemoryError`` minutes later. The limits are generous for research use; raise them here if a real
experiment needs more.

=========================  ==============  ==================================================
limit                      value           what it bounds
=========================  ==============  ==================================================
``MAX_AGENTS``             100,000         agents in a population (``count``, ``size``)
``MAX_ROUNDS``             1,000,000       ``rounds``
``MAX_SEED``               2^63 − 1        ``seed`` (and ≥ 0: numpy takes no negative seed)
``MAX_AMOUNT``             10^9            any payoff amount (menus, endowments, game payoffs)
``MAX_OPTIONS``            1,000           options in one menu item (endowment / step + 1, ...)
``MAX_ITEMS``              10,000          items of a ring menu (custom menus: at most 1,000
                                           items of at most 100 options, ``game_menus``)
``MAX_MENU_OPTIONS``       100,000         options over all items of a ring or custom menu
``MAX_EDGES``              5,000,000       edges of the network (a complete network: ~3,160 agents)
``MAX_YAML_DEPTH``         64              nesting of a scenario file's YAML
=========================  ==============  ==================================================
"""

from __future__ import annotations

MAX_AGENTS = 1_000_000
MAX_ROUNDS = 1_000_000
MAX_SEED = 2**63 - 1
MAX_AMOUNT = 1e9
MAX_OPTIONS = 1_000
MAX_ITEMS = 10_000
MAX_MENU_OPTIONS = 100_000
MAX_EDGES = 5_000_000
MAX_YAML_DEPTH = 64


def options_between(endowment: float, step: float, what: str) -> int:
    """Options of a menu from 0 to ``endowment`` in ``step``s; ``ValueError`` beyond :data:`MAX_OPTIONS`."""
    count = endowment / step + 1
    if count > MAX_OPTIONS:
        raise ValueError(f"{what}: endowment / step gives {count:.3g} options, more than the limit of {MAX_OPTIONS}")
    return int(count)


def network_edges(config: object, n_agents: int) -> float:
    """An upper estimate of the edges of a network section for ``n_agents`` (before building it)."""
    kind = getattr(config, "kind", None)
    pairs = n_agents * (n_agents - 1) / 2
    if kind == "complete":
        return pairs
    if kind in ("ring_lattice", "watts_strogatz"):
        return n_agents * getattr(config, "k", 0) / 2
    if kind == "barabasi_albert":
        return n_agents * getattr(config, "m", 0)
    if kind == "erdos_renyi":
        return pairs * getattr(config, "p", 1.0)
    return 2.0 * n_agents  # grid (4 neighbours a node); a file is bounded by its size
