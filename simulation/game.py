"""The decomposed game: what each agent receives in a round, given everyone's choice.

In a decomposed allocation game each option is a pair (self, other): the chooser keeps ``self``
and its partner receives ``other``. A matched pair plays only if both chose (an invalid LLM reply
with the ``skip`` fallback leaves its pair unpaid); an agent with several partners (``all_edges``)
keeps its own amount once per game and receives each partner's ``other``::

    outcome = decomposed_payoffs(menu, pairs, choice, n_agents)
    outcome["payoff"]   # per agent: received + games played × own amount
"""

from __future__ import annotations

import numpy as np

from hvae.simulation.menus import Menu


def chosen_amounts(menu: Menu, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per agent: the chosen option's "self" and "other" amounts and its generosity — where the
    "other" amount sits in the menu's range, 0 = least generous — (NaN for agents without a choice)."""
    others = menu.options[:, 1]
    spread = others.max() - others.min()
    # per option; undefined (NaN) on a menu whose options all give the other the same, as in the analysis
    option_generosity = (others - others.min()) / spread if spread > 0 else np.full(others.shape[0], np.nan)
    columns = (menu.options[:, 0], others, option_generosity)
    if choice.size and choice.min() >= 0:  # everyone chose: one lookup per agent and column
        return columns[0][choice], columns[1][choice], columns[2][choice]
    index = np.where(choice >= 0, choice, len(others))  # the row past the options: NaN
    self_amount, other_amount, generosity = (np.append(column, np.nan)[index] for column in columns)
    return self_amount, other_amount, generosity


def played_pairs(pairs: np.ndarray, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two columns of the pairs that played (both members chose); the columns of ``pairs``
    themselves, not copies, when every pair played."""
    u, v = pairs[:, 0], pairs[:, 1]
    if choice.size and choice.min() >= 0:
        return u, v
    played = (choice[u] >= 0) & (choice[v] >= 0)
    return (u, v) if played.all() else (u[played], v[played])


def decomposed_payoffs(menu: Menu, pairs: np.ndarray, choice: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-agent amounts, payoff, partners and generosity of one round (zeros/NaN for idle agents)."""
    u, v = pairs[:, 0], pairs[:, 1]
    pu, pv = played_pairs(pairs, choice)
    self_amount, other_amount, generosity = chosen_amounts(menu, choice)
    received = np.bincount(pu, other_amount[pv], n) + np.bincount(pv, other_amount[pu], n)
    n_partners = np.bincount(pairs.ravel(order="K"), minlength=n)
    n_played = n_partners if pu is u else np.bincount(pu, minlength=n) + np.bincount(pv, minlength=n)
    payoff = received + n_played * (self_amount if pu is u and not np.isnan(self_amount).any() else np.nan_to_num(self_amount))
    partner = np.full(n, -1, dtype=np.int64)
    if (n_partners == 1).any():  # (all_edges on a graph of minimum degree 2: nobody has a single partner)
        single = n_partners[u] == 1
        partner[u[single]] = v[single]
        single = n_partners[v] == 1
        partner[v[single]] = u[single]
    # Σ over partners of their generosity: generosity is (other − min) / spread per option, so the
    # sum follows from what they gave without another pass over the pairs (NaN where undefined)
    others = menu.options[:, 1]
    spread = float(others.max() - others.min())
    generosity_received = (received - n_played * others.min()) / spread if spread > 0 else np.full(n, np.nan)
    return {
        "self_amount": self_amount,
        "other_amount": other_amount,
        "received": received,
        "payoff": payoff,
        "n_partners": n_partners,
        "n_played": n_played,
        "partner": partner,
        "generosity": generosity,
        "generosity_received": generosity_received,
    }
