"""The end-of-run summary: one row per population group, value rationality beside chance and ceiling.

``hvae run`` prints this table when a run ends; it is computed from the run folder alone::

    from hvae.analysis.runfolder import RunFolder
    table = group_summary(RunFolder("runs/quickstart"))

Columns: ``group``, ``decider``, ``agents``, ``value`` (the group's value spec), ``mean_angle``,
``revealed_theta`` with its 95% interval (the group's pooled revealed angle),
``decisions``, ``invalid_rate``, ``mean_payoff`` (per decision), ``decision_vr`` with ``chance_vr``
and ``ceiling_vr`` on the same decisions, and — when slider menus were played — ``profiles``,
``slider_angle`` (mean), ``attainable_angle`` (mean target), ``slider_vr`` and ``chance_slider_vr``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hvae.analysis.rationality import (
    attainable_angles,
    chance_slider_vrs,
    decision_scores,
    slider_profiles,
)
from hvae.analysis.runfolder import RunFolder
from hvae.agents.svo import SLIDER_RANGE


def agent_summary(run: RunFolder) -> pd.DataFrame:
    """Per agent: decision VR (with chance and ceiling) and slider figures over all profiles."""
    agents = run.agents()
    decisions = run.decisions()
    scores = decision_scores(decisions, run.menus())
    scored = pd.concat([decisions[["agent_id", "payoff", "valid"]], scores], axis=1)
    per_agent = scored.groupby("agent_id").agg(
        decisions=("valid", "size"),
        invalid=("valid", lambda v: int((~v.astype(bool)).sum())),
        mean_payoff=("payoff", "mean"),
        decision_vr=("decision_vr", "mean"),
        chance_vr=("chance_vr", "mean"),
        ceiling_vr=("ceiling_vr", "mean"),
    )
    out = agents.set_index("agent_id")[["group", "decider", "value_spec", "value_angle", "value_category"]].join(per_agent)
    profiles = slider_profiles(decisions)
    if not profiles.empty:
        angles = profiles.groupby("agent_id")["angle"].agg(["mean", "size"])
        out["profiles"] = angles["size"].reindex(out.index).fillna(0).astype(int)
        out["slider_angle"] = angles["mean"].reindex(out.index)
        out["attainable_angle"] = attainable_angles(out["value_angle"].to_numpy())
        out["slider_vr"] = 1 - (out["slider_angle"] - out["attainable_angle"]).abs() / SLIDER_RANGE
        out["chance_slider_vr"] = chance_slider_vrs(out["value_angle"].to_numpy())
    return out.reset_index()


def group_summary(run: RunFolder) -> pd.DataFrame:
    """Per group means of :func:`agent_summary` (slider VR only over agents with a profile), plus
    the group's pooled revealed angle (one logit fit over all its decisions; ``revealed_theta``,
    ``revealed_ci_low``/``high``, ``revealed_beta``)."""
    from hvae.analysis.revealed import revealed_angles

    agents = agent_summary(run)
    revealed = revealed_angles(run.decisions(), run.menus(), ["group"]).set_index("group")
    order = [g["name"] for g in run.scenario.get("population", [])]
    order += [g for g in agents["group"].unique() if g not in order]
    rows = []
    for group in order:
        members = agents[agents["group"] == group]
        if members.empty:
            continue
        decisions = members["decisions"].fillna(0).sum()
        row = {
            "group": group,
            "decider": members["decider"].iloc[0],
            "agents": len(members),
            "value": members["value_spec"].iloc[0],
            "mean_angle": members["value_angle"].mean(),
            "decisions": int(decisions),
            "invalid_rate": members["invalid"].sum() / decisions if decisions else np.nan,
            "mean_payoff": members["mean_payoff"].mean(),
            "decision_vr": members["decision_vr"].mean(),
            "chance_vr": members["chance_vr"].mean(),
            "ceiling_vr": members["ceiling_vr"].mean(),
        }
        if group in revealed.index:
            fit = revealed.loc[group]
            row.update(
                revealed_theta=float(fit["theta"]) if fit["identification"] == "point" else np.nan,
                revealed_ci_low=float(fit["ci_low"]), revealed_ci_high=float(fit["ci_high"]),
                revealed_identification=fit["identification"], revealed_beta=float(fit["beta"]),
            )
        if "slider_vr" in members:
            has = members["profiles"] > 0
            row.update(
                profiles=int(members["profiles"].sum()),
                slider_angle=members.loc[has, "slider_angle"].mean(),
                attainable_angle=members.loc[has, "attainable_angle"].mean(),
                slider_vr=members.loc[has, "slider_vr"].mean(),
                chance_slider_vr=members.loc[has, "chance_slider_vr"].mean(),
            )
        rows.append(row)
    return pd.DataFrame(rows)
