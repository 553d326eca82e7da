"""The few sentences a run's summary and report lead with: ceiling, chance, and the LLM rows.

A newcomer reading a table of value-rationality figures needs the comparison spelled out: the
value-rational oracles show the **ceiling** (decision VR 1 by construction), uniform random
choosers show **chance** (their VR equals the chance level on the same menus), and an LLM group
is worth something only where it stands clearly above chance — and only if its choices are not
explained by *where* options were shown (:mod:`hvae.analysis.position`): beside the LLM figure
stands the VR a value-blind chooser that always takes the first option would get on the same
displays (``position_vr``), and a position preference is said to drive the choices only when the
group is significantly drawn to the first position *and* its VR is nearer that reference than the
ceiling. :func:`headline_lines`
turns a group table and the position-bias table into those sentences (plain text, used by both
``hvae run`` and the HTML report)::

    lines = headline_lines(group_summary(run), position_bias(run.decisions(), ["group"]))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Significance level of the position-bias test used in the wording.
ALPHA = 0.01


def _pooled(rows: pd.DataFrame, column: str) -> float:
    """Mean of a per-group column weighted by the groups' agents (NaN-safe)."""
    values = rows[column].to_numpy(dtype=float) if column in rows else np.array([np.nan])
    weights = rows["n_agents"].to_numpy(dtype=float) if "n_agents" in rows else np.ones(len(values))
    keep = ~np.isnan(values)
    return float(np.average(values[keep], weights=weights[keep])) if keep.any() else float("nan")


def _vr_phrase(rows: pd.DataFrame) -> str:
    vr, chance = _pooled(rows, "decision_vr"), _pooled(rows, "chance_vr")
    if np.isnan(vr):
        return "no scored decisions"
    return f"decision VR {vr:.3f} (chance {chance:.3f}, ceiling 1)"


def headline_lines(groups: pd.DataFrame, bias: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences comparing oracle (ceiling), random (chance) and LLM groups."""
    lines: list[str] = []
    if groups.empty:
        return lines
    by_decider = {kind: groups[groups["decider"] == kind] for kind in groups["decider"].unique()}
    if "oracle" in by_decider:
        lines.append(f"Ceiling: value-rational oracles reach {_vr_phrase(by_decider['oracle'])}.")
    if "random" in by_decider:
        lines.append(f"Chance: uniform random choosers score {_vr_phrase(by_decider['random'])}.")
    for kind, who in (("llm", "LLM agents"), ("surrogate", "Surrogate agents (distilled policies)")):
        llm = by_decider.get(kind)
        if llm is not None and not llm.empty:
            lines.append(_displaying_sentence(who, llm, bias))
    return lines


def _displaying_sentence(who: str, members: pd.DataFrame, bias: pd.DataFrame | None) -> str:
    """The headline of groups whose deciders show a counterbalanced order (LLM, surrogate): VR and position."""
    sentence = f"{who}: {_vr_phrase(members)}"
    vr, position = _pooled(members, "decision_vr"), _pooled(members, "position_vr")
    if not np.isnan(position):
        sentence += f"; always taking the option shown first, whatever the value, would score {position:.3f} on the same displays"
    if bias is not None and not bias.empty and "group" in bias:
        rows = bias[bias["group"].isin(members["group"])]
        n = int(rows["n_valid"].sum())
        if n:
            share = float((rows["first_share"] * rows["n_valid"]).sum() / n)
            expected = float((rows["first_expected"] * rows["n_valid"]).sum() / n)
            # a value-rational chooser takes the first option often too (the best option of a slider item
            # sits at an end, shown first half the time): "position drives" only when the VR is
            # nearer the first-option chooser's than the ceiling
            near_position = np.isnan(position) or (vr - position) < (1.0 - vr)
            biased = bool((rows["p_value"] < ALPHA).any() and share > expected and near_position)
            sentence += (
                f"; they chose the option shown first in {share:.0%} of {n} valid decisions "
                f"(the same choices with the order shown not mattering: {expected:.0%}"
            )
            if "first_chance" in rows and rows["first_chance"].notna().any():
                chance = float((rows["first_chance"] * rows["n_valid"]).sum() / n)
                sentence += f"; 1/k, for context: {chance:.0%}"
            sentence += ")"
            if biased:
                sentence += ", so where an option is shown, not what it gives, drives many of their choices"
    return sentence + "."
