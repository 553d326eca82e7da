"""Population metrics: what a mix of values does to a population over time (DESIGN.md §1.6).

Everything here is computed from a run folder alone (:class:`~hvae.analysis.runfolder.RunFolder`),
so a finished, interrupted or killed run can be analysed later. Each metric is grouped either by
the scenario's population **group** (``by="group"``) or by the agents' **value category**
(``by="value_category"``: altruistic, prosocial, individualistic, competitive)::

    run = RunFolder("runs/demo")
    per_round(run, "group")            # payoffs, welfare, Gini, shares per round and group
    revealed_drift(run, "group")       # revealed angle per group over a rolling window of rounds

Who played whom — the value-pair payoff matrix and the reciprocity index — is in
:mod:`hvae.analysis.games`.

The metrics
-----------
**Mean payoff** (``mean_payoff``): coins an agent of the group earned in a round, averaged over
the agents that played that round (under ``all_edges`` matching a round's payoff sums over all
of the agent's games). **Welfare** (``welfare``): the sum of all payoffs in a round.
**Gini** (``gini``): inequality of *cumulative* payoff among the group's agents after the round
(0 = everyone has the same, 1 = one agent has everything). **Value share** (``share``; by group:
the group's fraction of the population) — by value category, the one definition used by the
terminal, the report and the ``value_shares`` figure alike: the fraction of the agents that **act
on their value** whose value, *as held while deciding in that round*, lies in the category
(random and fixed deciders only carry a value as a label and are not counted; :func:`value_shares`).
An update after the last round changes values no round played: those are not a round's share
(``rounds.parquet``'s own ``share`` column by category counts every agent by its label; the
analysis replaces it). It moves only under an update rule. Payoffs, welfare and Gini come straight from ``rounds.parquet``,
which the run writes as it goes.

**Value drift** (:func:`revealed_drift`): the revealed angle θ̂ (maximum-likelihood angle of a
logit chooser, :mod:`hvae.analysis.revealed`) of each group's pooled decisions in a rolling
window of rounds, beside the group's mean *assigned* angle (``target``). The default window is
one menu cycle (6 rounds on slider menus, 24 on the default ring): every window then contains
each menu once, so windows differ only by behaviour, not by which menus were asked. Windows
start every half window by default (each fit costs time; see :func:`revealed_drift`). If behaviour
(for instance an LLM's) drifts away from its assigned value, θ̂ moves away from the target.


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
from hvae.analysis import rundata
from hvae.analysis.rundata import RunData
from hvae.analysis.runfolder import NotARunFolder

Grouping = Literal["group", "value_category"]

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


def as_run(run: RunData | str | Path) -> RunData:
    """Accept run data (:mod:`hvae.analysis.rundata`: a folder or a run in memory) or a folder's path."""
    return rundata.as_run(run)


# ---------------------------------------------------------------------------------- per round
def per_round(run: RunData | str | Path, by: Grouping | Literal["all"] = "group") -> pd.DataFrame:
    """Per round and group: ``mean_payoff``, ``welfare``, ``gini``, ``share`` and more.

    Columns: ``round``, ``group`` (the group or category name, or ``all``), then the values of
    :data:`ROUND_METRICS`. Rows come from ``rounds.parquet``; categories without agents in a
    round have no row.
    """
    run = as_run(run)
    rounds = run.rounds()
    rows = rounds[rounds["grouping"] == _ROUNDS_GROUPING[by]]
    out = rows[["round", "group", *ROUND_METRICS]].rename(columns=ROUND_METRICS)
    if by == "value_category":  # one definition of a value share: among the agents that act on their value
        shares = value_shares(run).stack()
        keys = pd.MultiIndex.from_arrays([out["round"], out["group"].astype(str)])
        out = out.assign(share=shares.reindex(keys).fillna(0.0).to_numpy() if len(shares) else 0.0)
    return out.sort_values(["round", "group"], kind="stable").reset_index(drop=True)


def value_shares(run: RunData | str | Path, by: Grouping = "value_category") -> pd.DataFrame:
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


def category_counts(run: RunData) -> pd.DataFrame:
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


def group_order(run: RunData, by: Grouping, present: Sequence[str] | None = None) -> list[str]:
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
def menu_cycle_length(run: RunData) -> int:
    """Rounds in one menu cycle (the number of distinct menus in the schedule)."""
    return int(run.menus()["menu_id"].nunique())


def revealed_drift(
    run: RunData | str | Path,
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


def revealed_by(run: RunData | str | Path, by: str | list[str]) -> pd.DataFrame:
    """Revealed angle of all of a run's decisions per ``by`` (e.g. ``"agent_id"``, ``"group"``).

    Adds ``target`` (mean assigned angle) beside the fit's ``theta``, ``beta``, ``ci_low``,
    ``ci_high``, ``n`` and ``identification``.
    """
    from hvae.analysis.rationality import behavioural

    run = as_run(run)
    decisions = run.decisions()
    return revealed_of(decisions[behavioural(decisions)], run.menus(), by)


def revealed_of(decisions: pd.DataFrame, menus: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """:func:`revealed_by` of these (behavioural) decision rows."""
    from hvae.analysis.revealed import revealed_angles

    keys = [by] if isinstance(by, str) else list(by)
    columns = [*keys, "theta", "beta", "ci_low", "ci_high", "n", "identification", "target"]
    if decisions.empty:
        return pd.DataFrame(columns=columns)
    for key in keys:
        if isinstance(decisions[key].dtype, pd.CategoricalDtype):
            decisions = decisions.assign(**{key: decisions[key].astype(str)})
    fits = revealed_angles(decisions, menus, keys)
    targets = decisions.groupby(keys)["value_angle"].mean().rename("target")
    fits = fits.drop(columns=[c for c in fits.columns if c not in columns])
    return fits.join(targets, on=keys)[columns].reset_index(drop=True)


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
    runs: Sequence[RunData | str | Path], by: Grouping | Literal["all"] = "group",
    metrics: Sequence[str] = ("mean_payoff", "welfare", "gini", "share"),
) -> pd.DataFrame:
    """:func:`per_round` of several runs: mean and 95% t-interval over seeds per (round, group)."""
    return across_seeds([per_round(r, by) for r in runs], ["round", "group"], metrics)


def revealed_drift_across_seeds(
    runs: Sequence[RunData | str | Path], by: Grouping = "group", window: int | None = None, step: int | None = None
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
