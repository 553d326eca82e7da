"""Invasion analysis across runs: which values spread, which die out, and how fast.

With value dynamics (:mod:`hvae.simulation.dynamics`) a population's value shares change. Across
many runs (a sweep, or several seeds), :func:`invasion_table` gives one row per (run, value
category): the category's ``initial_share`` (before the first round), ``final_share`` (after the
last round played and its update), and — where one category took over the whole population —
``fixation_round`` (how many rounds were played before every agent held it) and which category
fixed (``fixed_category``).
:func:`invasion_plot` draws final vs initial share per category (points above the diagonal:
the value invaded; below: it receded), with the fixation times beside it.
:func:`invasion_by_parameter_plot` draws the final share of each value against one swept
parameter (a sweep adds its numeric parameters as columns of the table), which shows a threshold
such as the multiplication factor above which contributing values survive in a public goods game.

    table = invasion_table(["runs/sweep/run-0001_…", "runs/sweep/run-0002_…"])
    invasion_plot(table, "runs/sweep/figures")

Shares are among the agents that act on their value: random and fixed deciders carry a value only
as a label and are not counted (see :func:`hvae.analysis.population.value_shares`).

Reads only run-folder files (``rounds.parquet``, ``agents.parquet``, ``value_changes.parquet``,
``summary.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.agents.svo import CATEGORY_ORDER
from hvae.analysis.palette import CATEGORY_COLORS
from hvae.analysis.rundata import RunData, as_run


def invasion_table(run_dirs: Sequence[str | Path | RunData]) -> pd.DataFrame:
    """One row per (run, category): initial and final share and fixation (see module docstring)."""
    from hvae.agents.deciders import VALUE_BLIND_DECIDERS
    from hvae.agents.svo import categories
    from hvae.analysis.population import category_counts

    rows = []
    for item in run_dirs:
        run = as_run(item)
        agents = run.agents()
        agents = agents[~agents["decider"].astype(str).isin(VALUE_BLIND_DECIDERS)]
        if agents.empty:
            continue
        initial_angles = agents["initial_value_angle"] if "initial_value_angle" in agents else agents["value_angle"]
        initial = pd.Series(categories(initial_angles.to_numpy())).value_counts(normalize=True)
        final = pd.Series(categories(agents["value_angle"].to_numpy())).value_counts(normalize=True)
        # a round's row counts the values its decisions were made with (updates come after it)
        counts = category_counts(run)
        fixed = counts[(counts >= counts.sum(axis=1).to_numpy()[:, None] - 0.5).any(axis=1)] if not counts.empty else counts
        if len(fixed):
            fixation_round, winner = int(fixed.index[0]), fixed.iloc[0].idxmax()
        elif final.max() >= 1.0 - 1e-12:  # fixed by the update after the last round
            fixation_round, winner = int(run.summary.get("rounds_completed", 0)), final.idxmax()
        else:
            fixation_round, winner = None, None
        for name in CATEGORY_ORDER:
            if initial.get(name, 0.0) == 0 and final.get(name, 0.0) == 0:
                continue
            rows.append(
                {
                    "run": Path(run.label).name,
                    "seed": run.summary.get("seed"),
                    "status": run.status,
                    "category": name,
                    "initial_share": float(initial.get(name, 0.0)),
                    "final_share": float(final.get(name, 0.0)),
                    "fixed_category": winner,
                    "fixation_round": fixation_round,
                    "rounds_completed": run.summary.get("rounds_completed"),
                }
            )
    return pd.DataFrame(rows)


def invasion_plot(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Final vs initial share per category across runs, and time to fixation; PNG + SVG paths."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 4.8))
    ax, ax_time = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="no change")
    jitter = np.random.default_rng(0)
    for name in CATEGORY_ORDER:
        part = table[table["category"] == name]
        if part.empty:
            continue
        ax.scatter(part["initial_share"] + jitter.normal(0, 0.006, len(part)), part["final_share"],
                   color=CATEGORY_COLORS[name], label=name, alpha=0.75, s=28, edgecolor="white", linewidth=0.5)
    ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), xlabel="initial share of the population",
           ylabel="final share of the population", title="Invasion: final vs initial share of each value, one point per run")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    fixed = table.dropna(subset=["fixation_round"]).drop_duplicates("run")
    runs = table["run"].nunique()
    if len(fixed):
        for name in CATEGORY_ORDER:
            times = fixed.loc[fixed["fixed_category"] == name, "fixation_round"]
            if len(times):
                ax_time.hist(times, bins=min(20, max(3, len(times))), color=CATEGORY_COLORS[name], alpha=0.75, label=f"{name} fixed")
        ax_time.legend(frameon=False, fontsize=8)
    else:
        ax_time.text(0.5, 0.5, "no run reached fixation", ha="center", va="center", transform=ax_time.transAxes)
    ax_time.set(xlabel="rounds played until one value held the whole population", ylabel="runs",
                title=f"Time to fixation ({len(fixed)} of {runs} runs fixed)")
    fig.tight_layout()
    paths = [out_dir / "invasion.png", out_dir / "invasion.svg"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def numeric_parameters(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The keys among ``keys`` whose column holds numbers (not booleans) with at least 3 distinct values."""
    found = []
    for key in keys:
        if key not in table:
            continue
        values = table[key].dropna()
        if len(values) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in values):
            if values.nunique() >= 3:
                found.append(key)
    return found


def invasion_by_parameter_plot(table: pd.DataFrame, parameter: str, out_dir: str | Path) -> list[Path]:
    """Final share of each value against a swept ``parameter``: one point per run, the mean over
    runs as a line, the mean initial share dashed; PNG + SVG paths (``invasion_by_<parameter>``)."""
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7.5, 4.6))
    ax = fig.subplots()
    jitter = np.random.default_rng(0)
    values = np.sort(table[parameter].astype(float).unique())
    width = 0.01 * (values.max() - values.min()) if len(values) > 1 else 0.0
    for name in CATEGORY_ORDER:
        part = table[table["category"] == name]
        if part.empty:
            continue
        x = part[parameter].astype(float)
        color = CATEGORY_COLORS[name]
        ax.scatter(x + jitter.normal(0, width, len(part)), part["final_share"], color=color, alpha=0.6, s=22,
                   edgecolor="white", linewidth=0.5)
        means = part.groupby(x)["final_share"].mean()
        ax.plot(means.index, means.to_numpy(), color=color, linewidth=1.8, marker="o", markersize=4, label=f"{name}: final (mean)")
        ax.axhline(part["initial_share"].mean(), color=color, linestyle="--", linewidth=1, alpha=0.7)
    ax.set(ylim=(-0.03, 1.03), xlabel=parameter, ylabel="final share of the population (dashed: initial)",
           title=f"Which values survive, by {parameter} ({table['run'].nunique()} runs; one point per run)")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    stem = "invasion_by_" + "".join(c if c.isalnum() or c in "_-" else "_" for c in parameter)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths
