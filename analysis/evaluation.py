"""Evaluation results: one row per (agent, value, goal prompting) and the paper's figures.

:func:`summarise_evaluation` turns the per-repeat table of ``hvae evaluate`` into one row per
cell with: ``repeats``; ``n_valid`` (valid item answers: fallback choices of unusable LLM replies
are never measured) and ``n_scored`` (repeats whose six primary answers are all valid: only those
have an angle); ``angle_mean`` and its 95% t-interval over scored repeats (``angle_ci_low``,
``angle_ci_high``; NaN with fewer than two, and clipped to the angles the slider can show,
[−16.26°, 61.39°], which the mean of slider angles can never leave); ``category_shares`` (category
→ share of scored repeats); ``transitive_rate``; ``decision_vr`` beside ``chance_vr`` (a uniform
chooser on the same items, exact) and ``ceiling_vr`` (1.0, the oracle); ``slider_vr`` — the mean
over scored repeats of the per-profile score of :func:`hvae.agents.svo.slider_vr` against the
attainable target (``attainable_angle``) — beside ``chance_slider_vr`` and ``ceiling_slider_vr``,
the exact expectations of the same per-profile score for a uniform random answerer and for the
oracle (below 1 where items tie); ``position_vr`` and ``position_slider_vr`` — the decision and
slider VR that a value-blind chooser always taking the option shown first would get on the same
displays (LLM cells only: what position alone is worth); ``invalid_rate``; and, when the secondary items were asked,
``subtype_shares``.

Rule deciders (oracle, random, reciprocal) ignore goal prompting, so they have one cell per value
with ``goal_prompting`` empty (None) rather than two identical-but-for-sampling rows.

Figures: :func:`radar_chart` — the paper's radar of VR per value, with and without goal
prompting, one panel per agent/model; :func:`ring_plot` — every repeat's slider angle against its
target on the SVO ring, category boundaries drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.agents import svo
from hvae.analysis.intervals import t_interval
from hvae.analysis.palette import category_color, series_colors

CELL_KEYS = ["agent", "model", "probe", "value", "value_angle", "goal_prompting"]
RING_REPEAT_LIMIT = 400  #: the SVO-ring figure draws at most this many repeats per panel and target


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean slider angle, clipped to the angles the slider can show.

    The mean of slider angles lies in [SLIDER_MIN_ANGLE, SLIDER_MAX_ANGLE], so clipping never
    loses coverage; with few repeats the unclipped interval would run far outside [−90°, 90°].
    """
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan"), float("nan")
    _, low, high = t_interval(values)
    possible = svo.random_slider_angles()  # every profile's angle, sorted: the exact extremes
    return max(low, float(possible[0])), min(high, float(possible[-1]))


def _shares(values: pd.Series, names: list[str]) -> dict[str, float]:
    counts = values.value_counts()
    total = len(values)
    return {name: float(counts.get(name, 0) / total) if total else 0.0 for name in names}


def summarise_evaluation(repeats: pd.DataFrame) -> pd.DataFrame:
    """One row per (agent, model, value, goal prompting); see the module docstring."""
    rows = []
    if "probe" not in repeats:  # tables written before the validity probes
        repeats = repeats.assign(probe="standard")
    for key, part in repeats.groupby(CELL_KEYS, sort=False, dropna=False):
        angles = part["angle"].to_numpy(dtype=float)
        scored = np.isfinite(angles)
        low, high = _t_interval(angles)
        theta = float(key[CELL_KEYS.index("value_angle")])
        row = dict(zip(CELL_KEYS, key))
        row.update(
            repeats=len(part),
            n_valid=int(part["n_valid"].sum()),
            n_scored=int(scored.sum()),
            angle_mean=float(angles[scored].mean()) if scored.any() else float("nan"),
            angle_ci_low=low,
            angle_ci_high=high,
            category_shares=_shares(part["category"].dropna(), list(svo.CATEGORY_ORDER)),
            transitive_rate=float(part["transitive"].dropna().astype(bool).mean()) if part["transitive"].notna().any() else float("nan"),
            decision_vr=float(part["decision_vr"].mean()),
            chance_vr=float(part["chance_vr"].mean()),
            ceiling_vr=1.0,
            attainable_angle=svo.attainable_angle(theta),
            slider_vr=float(part["slider_vr"].mean()) if scored.any() else float("nan"),
            chance_slider_vr=svo.chance_slider_vr(theta),
            ceiling_slider_vr=svo.ceiling_slider_vr(theta),
            invalid_rate=float(part["invalid"].sum() / (len(part) * _items(part))),
            position_vr=_mean(part, "position_vr"),
            position_slider_vr=_mean(part, "position_slider_vr"),
        )
        if "prosocial_subtype" in part:
            row["subtype_shares"] = _shares(
                part["prosocial_subtype"].fillna("undefined"), ["inequality_averse", "joint_gain_max", "undefined"]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(part: pd.DataFrame, column: str) -> float:
    """Mean of a per-repeat column's finite values; NaN when it has none (rule deciders, old tables)."""
    values = part[column].to_numpy(dtype=float) if column in part else np.array([])
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _items(part: pd.DataFrame) -> int:
    return 15 if "item15" in part else 6


def json_rows(table: pd.DataFrame) -> list[dict]:
    """The summary as JSON-ready dicts (NaN → None)."""
    out = []
    for record in table.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif isinstance(value, (np.floating, np.integer)):
                value = value.item()
            elif isinstance(value, np.bool_):
                value = bool(value)
            clean[key] = value
        out.append(clean)
    return out


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def radar_chart(table: pd.DataFrame, out_dir: Path, measure: str = "slider_vr") -> list[Path]:
    """The paper's radar chart: VR per value, with and without goal prompting, a panel per agent."""
    from matplotlib.figure import Figure

    panels = list(dict.fromkeys(zip(table["agent"], table["model"])))
    values = list(dict.fromkeys(table["value"]))
    fig = Figure(figsize=(5.6 * len(panels), 5.4))
    axes = fig.subplots(1, len(panels), subplot_kw={"projection": "polar"}, squeeze=False)
    fig.subplots_adjust(wspace=0.55, top=0.8)
    angles = np.linspace(0, 2 * np.pi, len(values), endpoint=False)
    closed = np.append(angles, angles[0])
    styles = {True: ("tab:blue", "with goal prompting"), False: ("tab:orange", "without goal prompting"),
              None: ("tab:purple", "rule decider (no prompt)")}
    for ax, (agent, model) in zip(axes[0], panels):
        part = table[(table["agent"] == agent) & (table["model"] == model)]
        goal_column = part["goal_prompting"].astype(object).where(part["goal_prompting"].notna(), None)
        for goal, (colour, label) in styles.items():
            rows = part[goal_column.map(lambda g, goal=goal: g is goal or (g is not None and goal is not None and bool(g) == goal))]
            rows = rows.set_index("value")
            if rows.empty:
                continue
            vr = [float(rows.loc[v, measure]) if v in rows.index else np.nan for v in values]
            ax.plot(closed, [*vr, vr[0]], color=colour, marker="o", label=label)
            ax.fill(closed, [*vr, vr[0]], color=colour, alpha=0.12)
        chance_col = "chance_slider_vr" if measure == "slider_vr" else "chance_vr"
        chance = part.groupby("value")[chance_col].mean().reindex(values).to_numpy()
        ax.plot(closed, [*chance, chance[0]], color="grey", linestyle="--", linewidth=1, label="chance (random chooser)")
        ax.set_xticks(angles, values, fontsize=9)
        ax.tick_params(axis="x", pad=12)
        ax.set_ylim(0, 1)
        ax.set_title(f"{agent}" + (f"\n{model}" if model != agent else ""), fontsize=10, pad=24)
    axes[0][0].legend(loc="lower left", bbox_to_anchor=(-0.15, -0.3), fontsize=8)
    label = "slider-angle VR (1 = the oracle's angle)" if measure == "slider_vr" else "decision VR (1 = always best option)"
    fig.suptitle(f"{label} per target value, with and without goal prompting", fontsize=11)
    paths = _save(fig, out_dir, f"radar_{measure}")
    return paths


def ring_plot(repeats: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Every repeat's slider angle (dot) against its target value (spoke) on the SVO ring."""
    from matplotlib.figure import Figure

    panels = list(dict.fromkeys(zip(repeats["agent"], repeats["model"])))
    fig = Figure(figsize=(4.6 * len(panels), 5.6))
    axes = fig.subplots(1, len(panels), subplot_kw={"projection": "polar"}, squeeze=False)
    fig.subplots_adjust(top=0.78, wspace=0.3)
    targets = sorted(set(repeats["value_angle"]))
    # each target in its category's colour, as in every figure; targets sharing a category: a palette
    distinct = len({svo.category(t) for t in targets}) == len(targets)
    colours = [category_color(t) for t in targets] if distinct else list(series_colors([f"{t}" for t in targets]).values())
    sampled = False
    for ax, (agent, model) in zip(axes[0], panels):
        part = repeats[(repeats["agent"] == agent) & (repeats["model"] == model)]
        for _, bound in svo.CATEGORY_LOWER_BOUNDS:
            ax.plot([np.radians(bound)] * 2, [0, 1.05], color="black", linewidth=0.8, linestyle=":")
        ax.fill_between(np.radians(np.linspace(svo.SLIDER_MIN_ANGLE, svo.SLIDER_MAX_ANGLE, 50)), 0, 1.05, color="grey", alpha=0.08)
        for index, target in enumerate(targets):
            colour = colours[index]
            ax.plot([np.radians(target)] * 2, [0, 1.0], color=colour, linewidth=1.5, alpha=0.5, linestyle="--")
            attainable = svo.attainable_angle(target)
            ax.scatter(np.radians(attainable), 1.0, color=colour, marker="*", s=90, zorder=5)
            rows = part[(part["value_angle"] == target) & part["angle"].notna()]
            if len(rows) > RING_REPEAT_LIMIT:  # a seeded sample keeps the figure legible (and fast)
                rows = rows.sample(RING_REPEAT_LIMIT, random_state=index)
                sampled = True
            radius = 0.55 + 0.35 * np.linspace(0, 1, max(len(rows), 1))[: len(rows)]
            goal = rows["goal_prompting"]
            for marker, mask in (("o", goal.eq(True)), ("s", goal.eq(False)), ("D", goal.isna())):
                mask = mask.to_numpy(dtype=bool)
                if mask.any():  # one scatter call per marker: thousands of repeats draw at once
                    ax.scatter(np.radians(rows["angle"].to_numpy(float)[mask]), radius[mask], color=colour,
                               marker=marker, s=18, alpha=0.8)
            ax.plot([], [], color=colour, linestyle="--", label=f"target {target:g}° (★ attainable {svo.attainable_angle(target):.1f}°)")
        ax.set_thetamin(-90)
        ax.set_thetamax(90)
        ax.set_rticks([])
        ax.set_title(f"{agent}" + (f"\n{model}" if model != agent else ""), fontsize=10, pad=14)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    sample_note = f" (at most {RING_REPEAT_LIMIT} per target, a seeded sample)" if sampled else ""
    fig.suptitle(
        f"Slider angle of every repeat{sample_note} (● goal prompting, ■ fixed goal, ◆ rule decider) vs target value "
        "(dashed spoke)\n★ the oracle's attainable angle; dotted: category boundaries; shaded: angles the slider can show",
        fontsize=10,
    )
    paths = _save(fig, out_dir, "svo_ring")
    return paths
