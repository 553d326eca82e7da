"""The n-player public goods game on the network: who plays with whom, and what each receives.

After Santos, Santos & Pacheco (*Nature* 454, 213–216, 2008): **every agent hosts one game among
itself and its neighbours**, so an agent with ``k`` neighbours plays ``k + 1`` games a round — its
own and each neighbour's — with one contribution level that applies to all of them (every agent
that has a neighbour decides every round; ``matching`` is not used). In each game every member has
the endowment ``E`` and contributes ``c``; the pot is multiplied by ``r`` and shared equally among
the ``G`` members. The game is decomposed (:class:`~hvae.agents.games.PublicGoodsGame`): choosing
``c`` keeps ``self = E − c + r·c/G`` and gives ``other = r·c/G`` to each other member, so an
agent's payoff in a round is ``games played × self + received``, where ``received`` sums the
``other`` amounts of its co-members over the games it played — the same bookkeeping as the
pairwise game, and what a direct computation of every game gives (a test checks both).

All groups must have the same size ``G`` (the menu, and with it every agent's utility, depends on
``G``): the network must be regular (``complete``, ``ring_lattice``, a periodic ``grid``, or a
regular ``file`` graph); :func:`group_size` says why when it is not. A game in which a member did
not decide (an invalid LLM reply with the ``skip`` fallback) is void for all its members, as a
pair with an undecided member is in the pairwise game.

    outcome = public_goods_payoffs(menu, edges, choice, n)   # same keys as decomposed_payoffs
"""

from __future__ import annotations

import numpy as np

from hvae.scenarios.errors import ScenarioError
from hvae.simulation.game import chosen_amounts
from hvae.simulation.menus import Menu


def group_size(degree: np.ndarray, network_kind: str) -> int:
    """Members per game (degree + 1) of a regular network; a :class:`ScenarioError` otherwise."""
    low, high = int(degree.min()), int(degree.max())
    if low != high:
        raise ScenarioError(
            f"menus: public_goods needs a regular network (every agent the same number of neighbours, so that "
            f"every game has the same size), but this {network_kind} network has degrees {low} to {high}; "
            "use complete, ring_lattice or a periodic grid"
        )
    return low + 1


def _with_neighbours(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``M @ values`` for ``M`` = adjacency + identity: each agent's value plus its neighbours'."""
    n = values.shape[0]
    u, v = edges[:, 0], edges[:, 1]
    return values + np.bincount(u, values[v], n) + np.bincount(v, values[u], n)


def public_goods_payoffs(menu: Menu, edges: np.ndarray, choice: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-agent amounts and payoffs of one round of hosted public goods games.

    Returns the keys of :func:`~hvae.simulation.game.decomposed_payoffs`: ``n_partners`` is the
    number of games the agent's choice applied to (degree + 1), ``n_played`` those that were not
    void, ``partner`` is −1 (several co-members), ``generosity`` is the contribution as a share of
    the endowment.
    """
    decided = choice >= 0
    self_amount, other_amount, generosity = chosen_amounts(menu, choice)
    undecided_members = _with_neighbours(edges, (~decided).astype(float))
    played = undecided_members == 0  # game hosted by h is played: every member decided
    given = np.nan_to_num(other_amount)
    pot_share = _with_neighbours(edges, given) * played  # Σ of members' "other" in each played game
    n_played = _with_neighbours(edges, played.astype(float))
    received = _with_neighbours(edges, pot_share) - given * n_played
    payoff = received + n_played * np.nan_to_num(self_amount)
    degree = np.bincount(edges.ravel(), minlength=n)
    return {
        "self_amount": self_amount,
        "other_amount": other_amount,
        "received": received,
        "payoff": payoff,
        "n_partners": degree + 1,
        "n_played": n_played.astype(np.int64),
        "partner": np.full(n, -1, dtype=np.int64),
        "generosity": generosity,
    }
