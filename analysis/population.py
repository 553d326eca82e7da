"""Population metrics: what a mix of values does to a population over time (DESIGN.md §1.6).

Everything here is computed from a run folder alone (:class:`~hvae.analysis.runfolder.RunFolder`),
so a finished, interrupted or killed run can be analysed later. Each metric is grouped either by
the scenario's population **group** (``by="group"``) or by the agents' **value category**
(``by="value_category"``: altruistic, prosocial, individualistic, competitive)::

    run = RunFolder("runs/demo")
    per_round(run, "group")            # payoffs, welfare, Gini, shares per round and group
    revealed_drift(run, "group")       # revealed angle per group over a rolling window of rounds
    reciprocity(run, "group")          # does what an agent received predict what it gives next?
    pair_payoffs(run, "value_category")  # mean payoff of X when it plays Y

The metrics
-----------
**Mean payoff** (``mean_payoff``): coins an agent of the group earned in a round, averaged over
the agents that played that round (under ``all_edges`` matching a round's payoff sums over all
of the agent's games). **Welfare** (``welfare``): the sum of all payoffs in a round.
**Gini** (``gini``): inequality of *cumulative* payoff among the group's agents after the round
(0 = everyone has the same, 1 = one agent has everything). **Value share** (``share``): the
fraction of the population in the group or, by value category, among the agents that act on
their value (random and fixed deciders only carry a value as a label; :func:`value_shares`). It
moves only under an update rule. Payoffs, welfare and Gini come straight from ``rounds.parquet``,
which the run writes as it goes.

**Value drift** (:func:`revealed_drift`): the revealed angle θ̂ (maximum-likelihood angle of a
logit chooser, :mod:`hvae.analysis.revealed`) of each group's pooled decisions in a rolling
window of rounds, beside the group's mean *assigned* angle (``target``). The default window is
one menu cycle (6 rounds on slider menus, 24 on the default ring): every window then contains
each menu once, so windows differ only by behaviour, not by which menus were asked. Windows
start every half window by default (each fit costs time; see :func:`revealed_drift`). If behaviour
(for instance an LLM's) drifts away from its assigned value, θ̂ moves away from the target.

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

Across seeds
------------
:func:`across_seeds` turns one frame per run (same scenario, different seeds) into the mean and
a 95% **t-interval over seeds** per key: ``mean ± t(0.975, n−1) · sd / √n`` with ``n`` the number
of seeds that have the key (NaN interval for a single seed). :func:`per_round_across_seeds` and
:func:`revealed_drift_across_seeds` apply it to the per-round figures and the value drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from hvae.analysis.intervals import t_interval
from hvae.analysis.runfolder import NotARunFolder, RunFolder

Grouping = Literal["group", "value_category"]

#: Fewer agents than this: no bootstrap interval for the reciprocity index (too few clusters).
MIN_BOOTSTRAP_AGENTS = 5

#: Per-round metrics taken from ``rounds.parquet`` (its column → our name).
ROUND_METRICS: dict[str, str] = {
    "mean_payoff": "mean_payoff",
    "welfare": "welfare",
    "gini_cumulative_payoff": "gini",
    "share": "share",
    "mean_cumulative_payoff": "mean_cumulative_payoff",
    "mean_value_angle": "mean_value_angle",
    "n_agents": "n_agents",
    "n_decided": "n_decided",
}

_ROUNDS_GROUPING = {"group": "group", "value_category": "category", "all": "all"}


def as_run(run: RunFolder | str | Path) -> RunFolder:
    """Accept a :class:`RunFolder` or a path to one."""
    return run if isinstance(run, RunFolder) else RunFolder(run)


# ---------------------------------------------------------------------------------- per round
def per_round(run: RunFolder | str | Path, by: Grouping | Literal["all"] = "group") -> pd.DataFrame:
    """Per round and group: ``mean_payoff``, ``welfare``, ``gini``, ``share`` and more.

    Columns: ``round``, ``group`` (the group or category name, or ``all``), then the values of
    :data:`ROUND_METRICS`. Rows come from ``rounds.parquet``; categories without agents in a
    round have no row.
    """
    run = as_run(run)
    rounds = run.rounds()
    rows = rounds[rounds["grouping"] == _ROUNDS_GROUPING[by]]
    out = rows[["round", "group", *ROUND_METRICS]].rename(columns=ROUND_METRICS)
    return out.sort_values(["round", "group"], kind="stable").reset_index(drop=True)


def value_shares(run: RunFolder | str | Path, by: Grouping = "value_category") -> pd.DataFrame:
    """Wide table: one row per round, one column per group/category, the population share.

    By ``value_category``: the share of each category among the agents that **act on their value**
    in the round — the value each held while it decided in that round (initial values, then every
    row of ``value_changes.parquet``). Agents of deciders that ignore their value (``random``,
    ``fixed``: :data:`~hvae.agents.deciders.VALUE_BLIND_DECIDERS`) hold a value only as a label and
    are not counted, so four random agents labelled prosocial do not make prosocial 50%.
    Empty when no agent acts on its value. By ``group``: the groups' shares of the population.
    """
    run = as_run(run)
    if by != "value_category":
        table = per_round(run, by).pivot(index="round", columns="group", values="share").fillna(0.0)
        return table.reindex(columns=group_order(run, by, table.columns))
    return category_counts(run).pipe(lambda counts: counts.div(counts.sum(axis=1), axis=0).fillna(0.0))


def category_counts(run: RunFolder) -> pd.DataFrame:
    """Agents that act on their value, per round (rows) and value category (columns, ring order).

    The value each agent held while it decided in that round; categories nobody held are left out.
    """
    from hvae.agents.deciders import VALUE_BLIND_DECIDERS
    from hvae.agents.svo import CATEGORY_ORDER, category_codes_of

    agents = run.agents()
    acting = ~agents["decider"].astype(str).isin(VALUE_BLIND_DECIDERS).to_numpy()
    played = np.sort(run.rounds()["round"].unique())
    if not acting.any() or played.size == 0:
        return pd.DataFrame(index=pd.Index(played, name="round"), columns=[], dtype=float)
    initial = agents["initial_value_angle"] if "initial_value_angle" in agents else agents["value_angle"]
    k = len(CATEGORY_ORDER)
    start = np.bincount(category_codes_of(initial.to_numpy(float)[acting]), minlength=k).astype(float)
    delta = np.zeros((played.size, k))
    try:
        changes = run.frame("value_changes")
    except NotARunFolder:
        changes = pd.DataFrame(columns=["round", "agent_id", "old_angle", "new_angle"])
    ids = set(agents.loc[acting, "agent_id"].tolist())
    changes = changes[changes["agent_id"].isin(ids)]
    if len(changes):
        effective = np.searchsorted(played, changes["round"].to_numpy() + 1)  # holds from the next round
        keep = effective < played.size
        rows = effective[keep]
        np.add.at(delta, (rows, category_codes_of(changes["old_angle"].to_numpy(float)[keep])), -1.0)
        np.add.at(delta, (rows, category_codes_of(changes["new_angle"].to_numpy(float)[keep])), 1.0)
    counts = start[None, :] + np.cumsum(delta, axis=0)
    table = pd.DataFrame(counts, index=pd.Index(played, name="round"), columns=list(CATEGORY_ORDER))
    return table.loc[:, (table > 0).any(axis=0)]


def group_order(run: RunFolder, by: Grouping, present: Sequence[str] | None = None) -> list[str]:
    """Display order: scenario order for groups, ring order for categories (only ``present`` ones)."""
    from hvae.agents.svo import CATEGORY_ORDER

    if by == "value_category":
        order = list(CATEGORY_ORDER)
    else:
        order = [g["name"] for g in run.scenario.get("population", [])]
    if present is None:
        return order
    present = [str(p) for p in present]
    return [g for g in order if g in present] + sorted(g for g in present if g not in order)


# ---------------------------------------------------------------------------------- value drift
def menu_cycle_length(run: RunFolder) -> int:
    """Rounds in one menu cycle (the number of distinct menus in the schedule)."""
    return int(run.menus()["menu_id"].nunique())


def revealed_drift(
    run: RunFolder | str | Path,
    by: Grouping = "group",
    window: int | None = None,
    step: int | None = None,
    max_windows: int = 30,
) -> pd.DataFrame:
    """Revealed angle of each group's pooled decisions over a rolling window of rounds.

    Args:
        run: the run folder.
        by: ``"group"`` or ``"value_category"``.
        window: rounds per window (default: one menu cycle, capped at the rounds played).
        step: rounds between window starts (default: half a window, so consecutive windows share
            half their rounds; coarsened so that at most ``max_windows`` windows are fitted — each
            window costs one maximum-likelihood fit per group). The last window always ends at the
            last round played.
        max_windows: cap used when ``step`` is not given.

    Returns:
        One row per (group, window): ``group``, ``round_start``, ``round_end`` (inclusive),
        ``theta``, ``beta``, ``ci_low``, ``ci_high``, ``n``, ``identification`` (``point``, ``set``
        or ``none``: see :mod:`hvae.analysis.revealed`) and ``target`` (mean assigned angle of the
        decisions in the window). Empty if no round was played.
    """
    from hvae.analysis.rationality import behavioural
    from hvae.analysis.revealed import revealed_angles

    run = as_run(run)
    decisions = run.decisions()
    columns = ["group", "round_start", "round_end", "theta", "beta", "ci_low", "ci_high", "n", "identification", "target"]
    decisions = decisions[behavioural(decisions)]
    if decisions.empty:
        return pd.DataFrame(columns=columns)
    first, last = int(decisions["round"].min()), int(decisions["round"].max())
    played = last - first + 1
    window = min(window or menu_cycle_length(run), played)
    if step is None:
        step = max(1, window // 2, math.ceil((played - window + 1) / max_windows))
    starts = list(range(first, last - window + 2, step))
    if starts[-1] != last - window + 1:  # always end with the latest window
        starts.append(last - window + 1)
    slim = decisions[["round", "agent_id", by, "menu_id", "choice", "value_angle"]].rename(columns={by: "group"})
    slim = slim.assign(group=slim["group"].astype(str))
    pieces = []
    for start in starts:
        inside = slim[(slim["round"] >= start) & (slim["round"] < start + window)]
        pieces.append(inside.assign(round_start=start))
    stacked = pd.concat(pieces, ignore_index=True)
    fits = revealed_angles(stacked, run.menus(), ["group", "round_start"])
    targets = stacked.groupby(["group", "round_start"])["value_angle"].mean().rename("target")
    out = fits.drop(columns=[c for c in fits.columns if c not in columns]).join(targets, on=["group", "round_start"])
    out["round_end"] = out["round_start"] + window - 1
    return out[columns].sort_values(["group", "round_start"]).reset_index(drop=True)


def revealed_by(run: RunFolder | str | Path, by: str | list[str]) -> pd.DataFrame:
    """Revealed angle of all of a run's decisions per ``by`` (e.g. ``"agent_id"``, ``"group"``).

    Adds ``target`` (mean assigned angle) beside the fit's ``theta``, ``beta``, ``ci_low``,
    ``ci_high``, ``n`` and ``identification``.
    """
    from hvae.analysis.rationality import behavioural
    from hvae.analysis.revealed import revealed_angles

    run = as_run(run)
    keys = [by] if isinstance(by, str) else list(by)
    decisions = run.decisions()
    decisions = decisions[behavioural(decisions)]
    columns = [*keys, "theta", "beta", "ci_low", "ci_high", "n", "identification", "target"]
    if decisions.empty:
        return pd.DataFrame(columns=columns)
    for key in keys:
        if isinstance(decisions[key].dtype, pd.CategoricalDtype):
            decisions = decisions.assign(**{key: decisions[key].astype(str)})
    fits = revealed_angles(decisions, run.menus(), keys)
    targets = decisions.groupby(keys)["value_angle"].mean().rename("target")
    fits = fits.drop(columns=[c for c in fits.columns if c not in columns])
    return fits.join(targets, on=keys)[columns].reset_index(drop=True)


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


def games(run: RunFolder | str | Path) -> pd.DataFrame:
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
    matching = run.scenario.get("matching", "random")
    if matching == "all_edges":
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


def pair_payoffs(run: RunFolder | str | Path, by: Grouping = "group") -> pd.DataFrame:
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
def reciprocity_pairs(run: RunFolder | str | Path) -> pd.DataFrame:
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
    run: RunFolder | str | Path,
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


# ---------------------------------------------------------------------------------- across seeds
def across_seeds(frames: Sequence[pd.DataFrame], keys: Sequence[str], values: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval over seeds of each ``values`` column per ``keys``.

    ``frames`` holds one frame per run. Returns, per key, ``<value>``, ``<value>_low``,
    ``<value>_high`` and ``n_seeds`` (how many runs had a non-missing first value).
    """
    keys, values = list(keys), list(values)
    stacked = pd.concat([f[[*keys, *values]].assign(_seed=i) for i, f in enumerate(frames)], ignore_index=True)
    rows = []
    for key, part in stacked.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        for value in values:
            mean, low, high = t_interval(part[value].to_numpy(), level)
            row.update({value: mean, f"{value}_low": low, f"{value}_high": high})
        row["n_seeds"] = int(part[values[0]].notna().sum())
        rows.append(row)
    columns = [*keys, *[c for v in values for c in (v, f"{v}_low", f"{v}_high")], "n_seeds"]
    return pd.DataFrame(rows, columns=columns)


def per_round_across_seeds(
    runs: Sequence[RunFolder | str | Path], by: Grouping | Literal["all"] = "group",
    metrics: Sequence[str] = ("mean_payoff", "welfare", "gini", "share"),
) -> pd.DataFrame:
    """:func:`per_round` of several runs: mean and 95% t-interval over seeds per (round, group)."""
    return across_seeds([per_round(r, by) for r in runs], ["round", "group"], metrics)


def revealed_drift_across_seeds(
    runs: Sequence[RunFolder | str | Path], by: Grouping = "group", window: int | None = None, step: int | None = None
) -> pd.DataFrame:
    """:func:`revealed_drift` of several runs: mean θ̂ and target with t-intervals over seeds.

    Only point-identified windows enter the mean θ̂ (``n_seeds`` counts the seeds that have one).
    """
    frames = [revealed_drift(r, by, window=window, step=step) for r in runs]
    # only point-identified angles are averaged (a set's middle or an unidentified fit is no estimate)
    frames = [f.assign(theta=f["theta"].where(f["identification"] == "point")) for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    return across_seeds(frames, ["group", "round_start", "round_end"], ["theta", "target"])
