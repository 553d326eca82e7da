"""The end-of-run summary: one row per population group, value rationality beside chance and ceiling.

``hvae run`` prints this table when a run ends, writes it to the run folder as ``groups.parquet``
and ``groups.csv``, and ``hvae summary RUN_DIR [--json]`` prints it again; it is computed from the
run folder alone::

    from hvae.analysis.rundata import RunData
from hvae.analysis.runfolder import RunFolder
    table = group_summary(RunFolder("runs/quickstart"))

Every behavioural figure uses only **behaviour** — valid replies with a choice; fallback choices
for unusable LLM replies are never measured — and is scored against the value each agent held
**when it decided** (see :mod:`hvae.analysis.rationality`). Beside each figure stand the number of
decisions (or profiles) it rests on and the chance (and ceiling) level of the same estimator.

Columns (one row per group, in scenario order):

=========================  ========================================================================
``group``, ``decider``     the group and its decider kind
``n_agents``, ``value``    agents in the group; its value spec as written in the scenario
``target_angle``           mean over the group's valid decisions of the value in force when decided
``n_decisions``            decision rows (valid or not); ``n_valid`` those that are behaviour
``invalid_rate``           ``1 − n_valid / n_decisions`` (unusable replies; their fallback choices
                           are excluded from every figure below)
``mean_payoff``            mean payoff per decision row (payoffs are outcomes: all rows count)
``decision_vr``            mean over agents of their mean decision VR (valid decisions only), beside
                           ``chance_vr`` (uniform random chooser, same decisions, exact) and
                           ``ceiling_vr`` (the oracle: 1); NaN with no valid decision
``position_vr``            the decision VR a value-blind chooser that always takes the option shown
                           first would get on the same decisions and displays (LLM groups; NaN for
                           rule deciders, which are shown no display order)
``revealed_theta``         the group's pooled revealed angle (valid decisions, one logit fit), NaN
                           unless point-identified; ``revealed_ci_low``/``high`` its 95% interval
                           (or the identified set), ``revealed_identification`` ``point``/``set``/
                           ``none``, ``revealed_beta``, ``revealed_n`` (decisions fitted)
``n_profiles``             scored slider profiles (0 off slider menus) and, over them, the mean
                           ``slider_angle``, ``attainable_angle``, ``slider_vr`` (mean over agents of
                           their mean per-profile VR) beside ``chance_slider_vr`` and
                           ``ceiling_slider_vr`` (exact expectations of the same per-profile score)
                           and ``position_slider_vr`` (the first-option chooser's profiles on the
                           same displays; LLM groups)
=========================  ========================================================================

:func:`group_records` gives the same table as JSON-ready dicts (NaN → ``None``), the form of
``hvae summary --json``; :func:`write_group_table` writes the two files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hvae.analysis.rationality import behavioural, decision_scores, position_slider_scores, slider_profiles, slider_scores
from hvae.analysis.rundata import RunData
from hvae.analysis.runfolder import RunFolder
from hvae.files.atomic import replaced_atomically

#: Files :func:`write_group_table` writes into a run folder.
GROUP_TABLE_FILES = ("groups.parquet", "groups.csv")

_SLIDER_MEASURES = ("slider_vr", "chance_slider_vr", "ceiling_slider_vr", "position_slider_vr")


def agent_summary(run: RunData) -> pd.DataFrame:
    """Per agent: decisions, valid decisions, decision VR with chance and ceiling, slider figures.

    Columns: ``agent_id``, ``group``, ``decider``, ``value_spec``, ``value_angle`` (final),
    ``target_angle`` (mean value in force over its valid decisions; its final value when it has
    none), ``n_decisions``, ``n_valid``, ``mean_payoff``, ``decision_vr``, ``chance_vr``,
    ``ceiling_vr``, ``position_vr``, ``n_profiles`` (scored slider profiles; 0 off slider menus) and ``slider_angle``,
    ``attainable_angle``, ``slider_vr``, ``chance_slider_vr``, ``ceiling_slider_vr`` (means over its
    scored profiles; NaN without one).
    """
    return _agent_summary(run, run.decisions())


def _agent_summary(run: RunData, decisions: pd.DataFrame) -> pd.DataFrame:
    """:func:`agent_summary` from the run's ``decisions`` table, already read."""
    agents = run.agents()
    scores = decision_scores(decisions, run.menus())
    ok = behavioural(decisions)
    scored = pd.concat([decisions[["agent_id", "payoff"]], scores], axis=1).assign(
        valid=ok, target=np.where(ok, decisions["value_angle"].to_numpy(dtype=float), np.nan)
    )
    per_agent = scored.groupby("agent_id").agg(
        n_decisions=("valid", "size"),
        n_valid=("valid", "sum"),
        target_angle=("target", "mean"),
        mean_payoff=("payoff", "mean"),
        decision_vr=("decision_vr", "mean"),
        chance_vr=("chance_vr", "mean"),
        ceiling_vr=("ceiling_vr", "mean"),
        position_vr=("position_vr", "mean"),
    )
    out = agents.set_index("agent_id")[["group", "decider", "value_spec", "value_angle"]].join(per_agent)
    out[["n_decisions", "n_valid"]] = out[["n_decisions", "n_valid"]].fillna(0).astype(int)
    out["target_angle"] = out["target_angle"].fillna(out["value_angle"])
    profiles = slider_profiles(decisions)
    profiles = pd.concat([profiles, slider_scores(profiles)], axis=1)
    if not profiles.empty:
        profiles = profiles.merge(position_slider_scores(decisions), on=["agent_id", "profile"], how="left")
    else:
        profiles["position_slider_vr"] = pd.Series(dtype=float)
    profiles = profiles[profiles["scored"].astype(bool)]
    per_profile = profiles.groupby("agent_id").agg(
        n_profiles=("angle", "size"), slider_angle=("angle", "mean"),
        attainable_angle=("attainable_angle", "mean"), **{m: (m, "mean") for m in _SLIDER_MEASURES},
    )
    out = out.join(per_profile.astype(float))
    out["n_profiles"] = out["n_profiles"].fillna(0).astype(int)
    return out.reset_index()


def group_summary(run: RunData) -> pd.DataFrame:
    """One row per group (see the module docstring for the columns)."""
    from hvae.analysis.revealed import revealed_angles

    decisions = run.decisions()  # read once: at scale (a million rows) reading and converting it is costly
    agents = _agent_summary(run, decisions)
    ok = behavioural(decisions)
    revealed = revealed_angles(decisions, run.menus(), ["group"]).set_index("group") if ok.any() else pd.DataFrame()
    usable = decisions.loc[ok, ["group", "value_angle"]]
    targets = usable.groupby(usable["group"].astype(str))["value_angle"].mean()
    order = [g["name"] for g in run.scenario.get("population", [])]
    order += [g for g in agents["group"].unique() if g not in order]
    rows = []
    for group in order:
        members = agents[agents["group"] == group]
        if members.empty:
            continue
        n_decisions, n_valid = int(members["n_decisions"].sum()), int(members["n_valid"].sum())
        row: dict[str, Any] = {
            "group": group,
            "decider": members["decider"].iloc[0],
            "n_agents": len(members),
            "value": members["value_spec"].iloc[0],
            "target_angle": float(targets.get(group, members["target_angle"].mean())),
            "n_decisions": n_decisions,
            "n_valid": n_valid,
            "invalid_rate": 1 - n_valid / n_decisions if n_decisions else np.nan,
            "mean_payoff": members["mean_payoff"].mean(),
            "decision_vr": members["decision_vr"].mean(),
            "chance_vr": members["chance_vr"].mean(),
            "ceiling_vr": members["ceiling_vr"].mean(),
            "position_vr": members["position_vr"].mean(),
        }
        fit = revealed.loc[group] if group in revealed.index else None
        row.update(
            revealed_theta=float(fit["theta"]) if fit is not None and fit["identification"] == "point" else np.nan,
            revealed_ci_low=float(fit["ci_low"]) if fit is not None else np.nan,
            revealed_ci_high=float(fit["ci_high"]) if fit is not None else np.nan,
            revealed_identification=fit["identification"] if fit is not None else "none",
            revealed_beta=float(fit["beta"]) if fit is not None else np.nan,
            revealed_n=int(fit["n"]) if fit is not None else 0,
        )
        has = members["n_profiles"] > 0
        row.update(
            n_profiles=int(members["n_profiles"].sum()),
            slider_angle=members.loc[has, "slider_angle"].mean(),
            attainable_angle=members.loc[has, "attainable_angle"].mean(),
            **{m: members.loc[has, m].mean() for m in _SLIDER_MEASURES},
        )
        rows.append(row)
    return pd.DataFrame(rows)


def dynamics_summary(run: RunData) -> dict[str, Any] | None:
    """What the value dynamics did in a run, or None when the scenario has none.

    Keys: ``rule``, ``every``, ``changes`` (rows of ``value_changes.parquet``), ``agents_changed``,
    ``first_round`` and ``last_round`` (played rounds, 0-based), ``initial_shares`` and
    ``final_shares`` — the **value shares** of the first and the last played round (category →
    share among the agents that act on their value, by the value each held while it decided:
    :func:`hvae.analysis.population.value_shares`, the one definition, the same quantity as the
    ``value_shares`` figure's first and last round) — and ``after_update_shares``: the same agents'
    values after the update that followed the last round, which no round has played (shown
    separately and labelled so; equal to ``final_shares`` when no update followed).
    """
    from hvae.agents.deciders import VALUE_BLIND_DECIDERS
    from hvae.agents.svo import CATEGORY_ORDER, categories
    from hvae.analysis.population import value_shares
    from hvae.analysis.runfolder import NotARunFolder

    dynamics = run.scenario.get("dynamics") or {}
    if dynamics.get("rule", "none") == "none":
        return None
    try:
        changes = run.frame("value_changes")
    except NotARunFolder:
        changes = pd.DataFrame(columns=["agent_id"])
    agents = run.agents()
    agents = agents[~agents["decider"].astype(str).isin(VALUE_BLIND_DECIDERS)]
    table = value_shares(run)

    def row(i: int) -> dict[str, float]:
        return {name: float(table.iloc[i].get(name, 0.0)) for name in CATEGORY_ORDER} if len(table) else {}

    after = pd.Series(categories(agents["value_angle"].to_numpy(float))).value_counts(normalize=True)
    return {
        "rule": dynamics["rule"],
        "every": dynamics.get("every"),
        "changes": len(changes),
        "agents_changed": int(changes["agent_id"].nunique()),
        "first_round": int(table.index[0]) if len(table) else None,
        "last_round": int(table.index[-1]) if len(table) else None,
        "initial_shares": row(0),
        "final_shares": row(-1),
        "after_update_shares": {name: float(after.get(name, 0.0)) for name in CATEGORY_ORDER} if len(agents) else {},
    }


def share_changes(before: dict[str, float], after: dict[str, float]) -> str:
    """``prosocial 60% → 40%, individualistic 40% → 60%`` (categories present at either end)."""
    return ", ".join(f"{name} {before.get(name, 0.0):.0%} → {after.get(name, 0.0):.0%}" for name in before
                     if before.get(name, 0.0) or after.get(name, 0.0)) or "none"


#: Below this many agents a t-interval over agents is not given (with 2 agents it covers most of
#: [0, 1]; with 1 it does not exist): :func:`small_group_interval` is used instead.
MIN_AGENTS_FOR_T = 3
SMALL_GROUP_METHOD = "cluster bootstrap over agents × decisions (assumes an agent's decisions independent)"


def small_group_interval(values_by_agent: list[np.ndarray], level: float = 0.95, resamples: int = 2000,
                         seed: int = 0) -> tuple[float, float, str]:
    """A decision-level 95% interval of a group mean of agent means, for groups of fewer than 3 agents.

    Cluster bootstrap: resample the agents with replacement, then each drawn agent's decisions (or
    profiles) with replacement, and take the mean of the agent means; percentile interval. Its
    assumption, stated with it: an agent's decisions are independent draws (repeated play can make
    them dependent, and then the interval is too narrow). Returns ``(low, high, method)``; NaN and
    the reason when there are fewer than 2 values.
    """
    values_by_agent = [np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for v in values_by_agent]
    values_by_agent = [v for v in values_by_agent if v.size]
    if sum(v.size for v in values_by_agent) < 2:
        return float("nan"), float("nan"), "no interval: fewer than 2 scored decisions"
    rng = np.random.default_rng(seed)
    means = np.stack([v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1) for v in values_by_agent], 1)
    drawn = rng.integers(0, len(values_by_agent), size=(resamples, len(values_by_agent)))
    statistic = np.take_along_axis(means, drawn, axis=1).mean(axis=1)
    low, high = np.percentile(statistic, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high), SMALL_GROUP_METHOD


def played_slider(run: RunData) -> bool:
    """Whether the run's menus were the SVO Slider (so slider figures apply)."""
    menus = run.scenario.get("menus") or {"kind": "slider"}
    return menus.get("kind", "slider") == "slider"


def group_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The group table as JSON-ready dicts: numpy scalars become Python ones, NaN becomes None."""
    records = []
    for record in table.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, (np.floating, np.integer, np.bool_)):
                value = value.item()
            if isinstance(value, float) and math.isnan(value):
                value = None
            clean[key] = value
        records.append(clean)
    return records


def write_group_table(run_dir: str | Path, table: pd.DataFrame | None = None) -> list[Path]:
    """Write :func:`group_summary` of ``run_dir`` into it as ``groups.parquet`` and ``groups.csv``.

    Each file is written to a temporary name and renamed into place, so a reader never sees half
    a table. Returns the two paths.
    """
    run_dir = Path(run_dir)
    table = group_summary(RunFolder(run_dir)) if table is None else table
    paths = []
    for name in GROUP_TABLE_FILES:
        target = run_dir / name
        with replaced_atomically(target) as tmp:
            if name.endswith(".parquet"):
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)
        paths.append(target)
    return paths
