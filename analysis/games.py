"""Who played whom: the value-pair payoff matrix and the reciprocity index of a run.

Computed from a run folder alone, grouped by population group or value category like
:mod:`hvae.analysis.population`::

    run = RunFolder("runs/demo")
    pair_payoffs(run, "value_category")   # mean payoff of X when it plays Y
    reciprocity(run, "group")             # does what an agent received predict what it gives next?

**Reciprocity index** (:func:`reciprocity`): does what an agent received predict what it gives
back? The **generosity** of a choice is where its "other" amount sits in the range of "other"
amounts on that menu (0 = stingiest option, 1 = most generous; undefined when all options give
the same, and for fallback choices of invalid replies). Because some menus invite generosity more
than others, both sides are centred per menu. For every agent and every two consecutive games it
played (rounds ``t`` and the next round ``t'`` it played), we pair

* ``received`` — the mean generosity of its partners towards it in round ``t``, centred on the
  run-wide mean generosity of that menu ("more or less generous than this menu usually gets"),
  with
* ``given``    — its own generosity in round ``t'``, centred on **its own** mean generosity on that
  menu ("more or less generous than it usually is there").

Centring ``given`` on the agent's own habit per menu is what makes the index about responses: a
history-blind agent (an oracle) acts the same on a menu every time, so its ``given`` is always 0
and its index is undefined, however its menu-to-menu pattern happens to line up with its partners'
(centring on the menu's population mean instead gave history-blind oracles r ≈ 0.35 from the
menu cycle alone); an oracle that breaks ties at random varies only by chance, so its index is
near 0.

The index of a group is the **pooled within-agent** Pearson correlation of ``received`` and
``given``: each agent's pairs are taken as deviations from that agent's own means, then pooled
over the group's agents. +1: agents give back exactly in proportion to what they got (relative to
their usual); 0: what they get does not predict what they give. Centring on each agent matters:
a plain pooled correlation would mix in differences *between* agents (a stingy agent with generous
neighbours and a generous one with stingy neighbours give r = −1 with no reciprocity at all).
With ``T`` pairs per agent the centring biases r by about −1/T, so short runs read slightly low.
Pairs from one agent are not independent, so the 95% interval is a **cluster bootstrap over
agents** (agents resampled with replacement, r recomputed), not the Fisher-z interval, which would
assume independent pairs and be too narrow. An agent whose generosity never varies (a fixed
decider, an oracle without ties) adds nothing; if no agent varies the index is undefined
(NaN): they neither reciprocate nor fail to.

**Value-pair payoff matrix** (:func:`pair_payoffs`): the mean payoff per game of an agent of row
group X when its partner belongs to column group Y. A game's payoff to X is what X kept plus what
its partner gave it. Under ``random`` matching the games are the decision rows with a partner
(``partner_id >= 0``); under ``all_edges`` matching one decision covers all of an agent's games,
so the games are rebuilt from the network's edges and each side's chosen (self, other) amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.analysis.population import Grouping, as_run, group_order
from hvae.analysis.rundata import RunData

#: Fewer agents than this: no bootstrap interval for the reciprocity index (too few clusters).
MIN_BOOTSTRAP_AGENTS = 5


# ---------------------------------------------------------------------------------- games
def menu_generosity(menus: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """``menu_id`` → (min, span) of the menu's "other" amounts (span 0: generosity undefined)."""
    stats_by_menu = menus.groupby("menu_id")["other"].agg(["min", "max"])
    return {str(m): (float(r["min"]), float(r["max"] - r["min"])) for m, r in stats_by_menu.iterrows()}


def _decision_generosity(decisions: pd.DataFrame, menus: pd.DataFrame) -> np.ndarray:
    """Generosity of each decision; NaN where undefined (zero spread) or not behaviour (a fallback)."""
    from hvae.analysis.rationality import behavioural

    bounds = menu_generosity(menus)
    menu_ids = decisions["menu_id"].astype(str)
    low = menu_ids.map(lambda m: bounds[m][0]).to_numpy(dtype=float)
    span = menu_ids.map(lambda m: bounds[m][1]).to_numpy(dtype=float)
    given = decisions["other_amount"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((span > 0) & behavioural(decisions), (given - low) / span, np.nan)


def plays_every_edge(scenario: dict) -> bool:
    """Whether every neighbour is a partner in every round: ``matching: all_edges``, or a game played
    with every neighbour at once (``plays_every_neighbour``, e.g. the public goods game, where each
    agent plays in its own and each neighbour's group; ``matching`` unused; :func:`games` then reads
    each neighbour pair as one decomposed game per round: what the agent kept per game plus what the
    neighbour gave each member per game)."""
    from hvae.agents.games import plays_every_neighbour

    kind = str((scenario.get("menus") or {}).get("kind", "slider"))
    return scenario.get("matching", "random") == "all_edges" or plays_every_neighbour(kind)


def games(run: RunData | str | Path) -> pd.DataFrame:
    """Every game played, once from each side: one row per (round, agent, partner).

    Columns: ``round``, ``agent_id``, ``partner_id``, ``group``, ``partner_group``,
    ``value_category``, ``partner_category``, ``menu_id``, ``kept`` (what the agent kept),
    ``gave`` (what it gave), ``got`` (what the partner gave it), ``game_payoff`` (= kept + got),
    ``generosity`` and ``partner_generosity`` (raw, in [0, 1]; NaN for a fallback choice of an
    invalid reply, which is no behaviour), ``residual`` / ``partner_residual`` (centred on the
    menu's run-wide mean generosity: more or less generous than this menu usually gets) and
    ``own_residual`` (the agent's generosity centred on **its own** mean generosity on that menu:
    more or less generous than it usually is there; always 0 for an agent that acts the same on a
    menu every time). Only games where both sides chose are included.
    """
    run = as_run(run)
    decisions = run.decisions()
    decisions = decisions[decisions["choice"] >= 0].copy()
    decisions["generosity"] = _decision_generosity(decisions, run.menus())
    for column in ("group", "value_category", "menu_id"):
        decisions[column] = decisions[column].astype(str)
    menu_mean = decisions.groupby("menu_id")["generosity"].transform("mean")
    decisions["residual"] = decisions["generosity"] - menu_mean.to_numpy()
    own_mean = decisions.groupby(["agent_id", "menu_id"])["generosity"].transform("mean")
    decisions["own_residual"] = decisions["generosity"] - own_mean.to_numpy()
    side = decisions[
        ["round", "agent_id", "group", "value_category", "menu_id", "self_amount", "other_amount", "generosity", "residual",
         "own_residual"]
    ]
    if plays_every_edge(run.scenario):
        edges = run.frame("network")[["u", "v"]].to_numpy()
        directed = pd.DataFrame(np.concatenate([edges, edges[:, ::-1]]), columns=["agent_id", "partner_id"])
        pairs = side[["round", "agent_id"]].merge(directed, on="agent_id")
    else:
        pairs = decisions.loc[decisions["partner_id"] >= 0, ["round", "agent_id", "partner_id"]]
    partner = side.rename(
        columns={
            "agent_id": "partner_id", "group": "partner_group", "value_category": "partner_category",
            "self_amount": "partner_kept", "other_amount": "got", "generosity": "partner_generosity",
            "residual": "partner_residual",
        }
    ).drop(columns=["menu_id", "own_residual"])
    out = pairs.merge(side, on=["round", "agent_id"]).merge(partner, on=["round", "partner_id"])
    out = out.rename(columns={"self_amount": "kept", "other_amount": "gave"})
    out["game_payoff"] = out["kept"] + out["got"]
    columns = [
        "round", "agent_id", "partner_id", "group", "partner_group", "value_category", "partner_category",
        "menu_id", "kept", "gave", "got", "game_payoff", "generosity", "partner_generosity", "residual",
        "partner_residual", "own_residual",
    ]
    return out[columns].sort_values(["round", "agent_id", "partner_id"]).reset_index(drop=True)


def pair_payoffs(run: RunData | str | Path, by: Grouping = "group") -> pd.DataFrame:
    """Value-pair payoff matrix: mean payoff per game of row group X against column group Y.

    Returns a long frame ``group``, ``partner_group``, ``mean_payoff``, ``games``; pivot it with
    :func:`pair_matrix`. Under ``by="value_category"`` both sides are value categories.
    """
    run = as_run(run)
    played = games(run)
    focal, other = ("group", "partner_group") if by == "group" else ("value_category", "partner_category")
    if played.empty:
        return pd.DataFrame(columns=["group", "partner_group", "mean_payoff", "games"])
    table = (
        played.groupby([focal, other])["game_payoff"].agg(mean_payoff="mean", games="size").reset_index()
    )
    return table.rename(columns={focal: "group", other: "partner_group"})


def pair_matrix(long: pd.DataFrame, order: Sequence[str] | None = None, value: str = "mean_payoff") -> pd.DataFrame:
    """Pivot :func:`pair_payoffs` into a matrix (rows: focal group, columns: partner group)."""
    matrix = long.pivot(index="group", columns="partner_group", values=value)
    if order is not None:
        names = [g for g in order if g in set(matrix.index) | set(matrix.columns)]
        matrix = matrix.reindex(index=names, columns=names)
    return matrix


# ---------------------------------------------------------------------------------- reciprocity
def reciprocity_pairs(run: RunData | str | Path) -> pd.DataFrame:
    """The (received, given) pairs behind :func:`reciprocity`, one row per consecutive game pair.

    Columns: ``agent_id``, ``group``, ``value_category`` (at the later game), ``round`` (the
    earlier game), ``next_round``, ``received`` (mean residual generosity of its partners in
    ``round``, each centred on its menu's mean), ``given`` (its own generosity in ``next_round``,
    centred on its own mean on that menu). Rows with an undefined generosity on either side are
    dropped.
    """
    played = games(as_run(run))
    columns = ["agent_id", "group", "value_category", "round", "next_round", "received", "given"]
    if played.empty:
        return pd.DataFrame(columns=columns)
    per_round = (
        played.groupby(["agent_id", "round"], sort=True)
        .agg(
            received=("partner_residual", "mean"),
            given=("own_residual", "first"),
            group=("group", "first"),
            value_category=("value_category", "first"),
        )
        .reset_index()
    )
    following = per_round.groupby("agent_id").shift(-1)
    out = per_round.assign(
        next_round=following["round"], given=following["given"],
        group=following["group"], value_category=following["value_category"],
    )
    out = out.dropna(subset=["next_round", "received", "given"])
    out["next_round"] = out["next_round"].astype(int)
    return out[columns].reset_index(drop=True)


def _within_r(sums: np.ndarray) -> np.ndarray:
    """Pooled within-agent Pearson r from summed (pairs, agents, Sxx, Syy, Sxy) rows (last axis).

    ``Sxx`` etc. are sums of products of deviations from each agent's own means.
    """
    n, agents, sxx, syy, sxy = np.moveaxis(sums, -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.maximum(np.abs(sxx) + np.abs(syy), 1e-300)
        ok = (sxx > 1e-12 * scale) & (syy > 1e-12 * scale) & (n - agents >= 2)
        return np.where(ok, sxy / np.sqrt(np.abs(sxx * syy)), np.nan)


def reciprocity(
    run: RunData | str | Path,
    by: Grouping = "group",
    n_boot: int = 1000,
    seed: int = 0,
    pairs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Reciprocity index per group and for the whole population (``group == "all"``).

    Columns: ``group``, ``agents`` (with at least one pair), ``pairs``, ``r`` (pooled within-agent
    Pearson correlation of received and next given residual generosity), ``ci_low``, ``ci_high``
    (95% percentile cluster bootstrap over agents, ``n_boot`` resamples, seeded; NaN with fewer
    than :data:`MIN_BOOTSTRAP_AGENTS` agents). ``r`` is NaN when fewer than 2 pairs remain beyond
    one per agent, or one side never varies.
    """
    pairs = reciprocity_pairs(run) if pairs is None else pairs
    rng = np.random.default_rng(seed)
    rows = []
    names: list[str] = []
    if not pairs.empty:
        names = group_order(as_run(run), by, pairs[by].unique())
    for name in [*names, "all"]:
        part = pairs if name == "all" else pairs[pairs[by] == name]
        if part.empty:
            continue
        x = part["received"].to_numpy(float)
        y = part["given"].to_numpy(float)
        agent = part["agent_id"].to_numpy()
        x = x - pd.Series(x).groupby(agent).transform("mean").to_numpy()  # deviations from the agent's own mean
        y = y - pd.Series(y).groupby(agent).transform("mean").to_numpy()
        frame = pd.DataFrame({"agent": agent, "n": 1.0, "agents": 0.0, "xx": x * x, "yy": y * y, "xy": x * y})
        per_agent = frame.groupby("agent").sum()
        per_agent["agents"] = 1.0
        per_agent = per_agent.to_numpy()  # (agents, 5)
        r = float(_within_r(per_agent.sum(axis=0)))
        low = high = np.nan
        if not np.isnan(r) and n_boot > 0 and per_agent.shape[0] >= MIN_BOOTSTRAP_AGENTS:
            k = per_agent.shape[0]
            weights = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)  # agents resampled
            boot = _within_r(weights @ per_agent)
            boot = boot[~np.isnan(boot)]
            if boot.size:
                low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
        rows.append({"group": name, "agents": per_agent.shape[0], "pairs": len(part), "r": r, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["group", "agents", "pairs", "r", "ci_low", "ci_high"])
