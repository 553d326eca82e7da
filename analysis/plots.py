"""Figures of a run (or of several seeds of one scenario), saved as PNG and SVG.

::

    from hvae.analysis.plots import make_figures
    paths = make_figures("runs/demo", "runs/demo/figures")                 # one run
    paths = make_figures(["runs/s1", "runs/s2", "runs/s3"], "runs/figures")  # seeds: CI bands

One run gives per-round lines; several runs of the same scenario (different seeds) give the mean
over seeds with a 95% t-interval band (see :mod:`hvae.analysis.population`). The figures:

=====================  ===========================================================================
``payoff_by_group``    mean payoff per round of an agent that played, per group
``welfare``            total payoff of the population per round
``gini``               Gini coefficient of cumulative payoff (population and per group)
``value_shares``       stacked shares of the value categories among agents that act on their value
``revealed_drift``     revealed angle θ̂ per group over a rolling window; dashed: assigned angle
``pair_payoffs``       heatmap: mean payoff per game of a row group against a column group
``network``            the network, nodes coloured by value category, shaped by decider
``svo_ring``           polar SVO ring: each agent's assigned angle (open) and revealed angle (dot or set)
``value_rationality``  decision VR (and slider VR) per group with chance and ceiling marked
=====================  ===========================================================================

Figures are drawn with matplotlib's object-oriented API on ``Figure`` objects (rendered by the Agg
canvas when saved), never through ``pyplot``: making figures changes no global state and opens no
window, in a script, a test or a notebook. :class:`~hvae.analysis.dataset.Analysis` computes the
data once; the report (:mod:`hvae.analysis.report`) reuses it for its tables. A new figure is a
``fig_*`` function here, registered in :data:`FIGURES`; the shared axes helpers and
:func:`~hvae.analysis.figure_tools.save_figure` are in :mod:`hvae.analysis.figure_tools`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hvae.agents.svo import CATEGORY_LOWER_BOUNDS, CATEGORY_ORDER
from hvae.analysis.dataset import Analysis
from hvae.analysis.games import plays_every_edge
from hvae.analysis.figure_tools import (
    _legend_outside,
    _lines_with_bands,
    _new_figure,
    _round_axis,
    _scenario_label,
    _seeds_note,
    _style,
    save_figure,
)
from hvae.analysis.palette import CATEGORY_COLORS
from hvae.analysis.rundata import RunData

NETWORK_FULL_LIMIT = 500  # above this many nodes: small markers, thin edges
NETWORK_SAMPLE_LIMIT = 2000  # above this many nodes: draw a random sample of nodes
RING_AGENT_LIMIT = 300  # the SVO ring shows at most this many agents (a seeded sample)
WIDE_BAND = 90.0  # degrees: wider revealed-angle bands are outlined, not filled


# ---------------------------------------------------------------------------------- figures
def fig_payoff_by_group(analysis: Analysis) -> Figure | None:
    frame = analysis.rounds_group
    if frame.empty:
        return None
    names = analysis.order(analysis.by, frame["group"].unique())
    fig, ax = _new_figure()
    _lines_with_bands(ax, frame, "mean_payoff", names, analysis.colors(names))
    per_game = " (summed over all of its games)" if plays_every_edge(analysis.scenario) else ""
    ax.set_title(f"Mean payoff per round of an agent that played{per_game}, by group\n{_scenario_label(analysis)}")
    ax.set_ylabel("mean payoff (coins per agent per round)")
    _round_axis(ax)
    _legend_outside(ax, title="group")
    return fig


def fig_welfare(analysis: Analysis) -> Figure | None:
    frame = analysis.rounds_all
    if frame.empty:
        return None
    fig, ax = _new_figure((10.0, 4.2))
    _lines_with_bands(ax, frame, "welfare", ["all"], {"all": "#333333"}, label_of=lambda _: "population")
    ax.set_title(f"Welfare: total payoff of all agents per round\n{_scenario_label(analysis)}")
    ax.set_ylabel("welfare (coins per round)")
    _round_axis(ax)
    return fig


def fig_gini(analysis: Analysis) -> Figure | None:
    groups, everyone = analysis.rounds_group, analysis.rounds_all
    if everyone.empty:
        return None
    names = analysis.order(analysis.by, groups["group"].unique())
    colors = {**analysis.colors(names), "all": "#000000"}
    fig, ax = _new_figure()
    _lines_with_bands(ax, everyone, "gini", ["all"], colors, label_of=lambda _: "whole population")
    _lines_with_bands(ax, groups, "gini", names, colors)
    for line in ax.get_lines()[:1]:
        line.set_linewidth(3.0)
    ax.set_title("Inequality: Gini coefficient of cumulative payoff after each round (0 = all equal, 1 = one agent "
                 f"has everything)\n{_scenario_label(analysis)}", fontsize=10.5)
    ax.set_ylabel("Gini of cumulative payoff")
    ax.set_ylim(0, min(1.0, ax.get_ylim()[1]))
    _round_axis(ax)
    _legend_outside(ax, title="among")
    return fig


def fig_value_shares(analysis: Analysis) -> Figure | None:
    shares = analysis.shares
    if shares.empty:
        return None
    fig, ax = _new_figure((10.0, 4.6))
    x = shares.index.to_numpy() + 1
    names = list(shares.columns)
    ax.stackplot(x, shares.T.to_numpy(), labels=names, colors=[CATEGORY_COLORS.get(n, "#777") for n in names], alpha=0.85)
    ax.set_ylim(0, 1)
    ax.set_xlim(x.min(), max(x.max(), x.min() + 1))
    ax.set_ylabel("share of agents that act on their value")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    note = "mean over seeds" if analysis.multi else f"seed {analysis.seeds[0]}"
    ax.set_title(f"Value shares: fraction of the agents that act on their value in each SVO category per round ({note})\n"
                 f"{analysis.scenario.get('name', '?')} — random and fixed deciders not counted; flat unless an update "
                 "rule changes values", fontsize=10.5)
    _round_axis(ax)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="category")
    return fig


def fig_revealed_drift(analysis: Analysis) -> Figure | None:
    drift = analysis.drift
    if drift.empty:
        return None
    names = analysis.order(analysis.by, drift["group"].unique())
    colors = analysis.colors(names)
    fig, ax = _new_figure()
    window = int(drift["round_end"].iloc[0] - drift["round_start"].iloc[0] + 1)
    strip = ax.get_xaxis_transform()  # x in data, y in axes fraction: unidentified windows sit at the bottom
    for name in names:
        part = drift[drift["group"] == name].sort_values("round_end")
        x = part["round_end"].to_numpy() + 1
        color = colors[name]
        theta = part["theta"].to_numpy(float)
        if "identification" in part:
            identification = part["identification"].to_numpy()
        else:  # several seeds: theta is the mean of the seeds' point estimates (NaN when none had one)
            identification = np.where(np.isnan(theta), "none", "point")
        point, bounded, unknown = (identification == k for k in ("point", "set", "none"))
        ax.plot(x, np.where(point, theta, np.nan), color=color, lw=1.8, label=f"{name}: revealed θ̂")
        ax.scatter(x[point], theta[point], color=color, s=22, zorder=3)
        low = np.where(point, part["theta_low"].to_numpy(float), np.nan)
        high = np.where(point, part["theta_high"].to_numpy(float), np.nan)
        if point.any() and np.nanmax(high - low, initial=0.0) <= WIDE_BAND:
            ax.fill_between(x, low, high, color=color, alpha=0.15, lw=0)
        elif point.any():  # a very wide band would hide everything: outline it
            ax.plot(x, low, color=color, lw=0.8, ls=(0, (1, 2)))
            ax.plot(x, high, color=color, lw=0.8, ls=(0, (1, 2)))
        if bounded.any():  # only a set is identified: its 95% set as a bar, no point
            ax.vlines(x[bounded], part["ci_low"].to_numpy(float)[bounded], part["ci_high"].to_numpy(float)[bounded],
                      color=color, lw=3.0, alpha=0.45, zorder=2)
        ax.scatter(x[unknown], np.full(unknown.sum(), 0.03), transform=strip, color="white", edgecolors=color,
                   marker="X", s=40, zorder=3, clip_on=False)
        ax.plot(x, part["target"], color=color, lw=1.4, ls="--", label=f"{name}: assigned (mean)")
    for _, bound in CATEGORY_LOWER_BOUNDS:
        ax.axhline(bound, color="#999999", lw=0.7, ls=":")
    if analysis.multi:
        band = "95% t-interval over seeds of the point estimates; X at the bottom = no seed identifies a point"
    else:
        band = "95% profile-likelihood interval; bar without a dot = only a set is identified; X at the bottom = not identified"
    ax.set_title(
        f"Value drift: revealed angle θ̂ of each group's pooled choices in a {window}-round window\n"
        f"solid = θ̂ (band: {band}; bands wider than {WIDE_BAND:g}° outlined)\n"
        f"dashed = mean assigned angle; dotted = category boundaries — {_scenario_label(analysis, band=False)}",
        fontsize=10.5,
    )
    ax.set_ylabel("revealed angle θ̂ (degrees)")
    ax.set_xlabel(f"last round of the {window}-round window")
    ax.xaxis.get_major_locator().set_params(integer=True)
    values = drift[[c for c in ("theta", "target", "ci_low", "ci_high") if c in drift]].to_numpy(dtype=float)
    ax.set_ylim(max(min(-60.0, np.nanmin(values) - 10), -185), min(max(100.0, np.nanmax(values) + 10), 185))
    _legend_outside(ax, fontsize=8.5)
    return fig


def fig_pair_payoffs(analysis: Analysis) -> Figure | None:
    matrix = analysis.pair_payoffs
    if matrix.empty:
        return None
    n = len(matrix)
    fig, ax = _new_figure((max(6.0, 1.3 * n + 3.0), max(4.5, 0.9 * n + 2.5)))
    sns.heatmap(matrix, ax=ax, annot=True, fmt=".1f", cmap="viridis", linewidths=0.5, square=n <= 8,
                cbar_kws={"label": "mean payoff per game (coins)"}, annot_kws={"fontsize": 9 if n <= 8 else 7})
    label = "value category" if analysis.by == "value_category" else "group"
    ax.set_xlabel(f"partner's {label}")
    ax.set_ylabel(f"focal {label} (who earns the payoff)")
    ax.set_title(f"Value-pair payoffs: mean payoff per game of the row {label} against the column {label}\n"
                 f"(kept + received in that one game; blank = never paired) — {_seeds_note(analysis, band=False)}", fontsize=10.5)
    ax.tick_params(axis="x", rotation=30)
    ax.tick_params(axis="y", rotation=0)
    return fig


def fig_network(analysis: Analysis, seed: int = 0) -> Figure | None:
    run = analysis.first
    agents = run.agents()
    edges = run.frame("network")
    nodes = agents["agent_id"].to_numpy()
    n = len(nodes)
    note = ""
    pairs = edges[["u", "v"]].to_numpy()
    if n > NETWORK_SAMPLE_LIMIT:  # the sample and the edges among them, chosen before any graph is built
        keep = np.random.default_rng(seed).choice(nodes, NETWORK_SAMPLE_LIMIT, replace=False)
        nodes = nodes[np.isin(nodes, keep)]  # in the agents table's order, as a subgraph keeps it
        pairs = pairs[np.isin(pairs[:, 0], keep) & np.isin(pairs[:, 1], keep)]
        note = f" (random sample of {NETWORK_SAMPLE_LIMIT} of {n} agents and the edges among them)"
    graph = nx.Graph()
    graph.add_nodes_from(nodes.tolist())
    graph.add_edges_from(map(tuple, pairs.tolist()))
    small = graph.number_of_nodes() > NETWORK_FULL_LIMIT
    pos = nx.spring_layout(graph, seed=seed, iterations=50 if small else 100)
    fig, ax = _new_figure((9.0, 8.0))
    nx.draw_networkx_edges(graph, pos, ax=ax, width=0.3 if small else 0.8, alpha=0.25 if small else 0.5, edge_color="#777777")
    info = agents.set_index("agent_id")
    shapes = dict(zip(sorted(info["decider"].astype(str).unique()), "os^Dvp<>h8"))
    for decider, shape in shapes.items():
        for category in CATEGORY_ORDER:
            nodes = [v for v in graph.nodes if str(info.at[v, "decider"]) == decider and info.at[v, "value_category"] == category]
            if nodes:
                nx.draw_networkx_nodes(graph, pos, nodelist=nodes, ax=ax, node_shape=shape,
                                       node_size=12 if small else 80, node_color=CATEGORY_COLORS[category],
                                       edgecolors="white" if not small else "none", linewidths=0.5)
    handles = [Line2D([], [], ls="", marker="o", color=CATEGORY_COLORS[c], ms=8, label=c)
               for c in CATEGORY_ORDER if (info["value_category"] == c).any()]
    handles += [Line2D([], [], ls="", marker=s, color="#555555", mfc="white", ms=8, label=f"decider: {d}")
                for d, s in shapes.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="colour: value; shape: decider")
    ax.set_title(f"Network: {analysis.scenario.get('network', {}).get('kind', '?')} graph, {n} agents, "
                 f"{len(edges)} edges{note}\ncoloured by value category (seed {analysis.seeds[0]}; spring layout, layout seed {seed})")
    ax.set_axis_off()
    return fig


def fig_svo_ring(analysis: Analysis, seed: int = 0) -> Figure | None:
    agents, total = analysis.revealed_agents_sample(RING_AGENT_LIMIT, seed)
    if agents.empty or agents["ci_low"].isna().all():
        return None
    note = f" (random sample of {len(agents)} of {total} agent-values that decided)" if total > len(agents) else ""
    names = analysis.order("group", agents["group"].astype(str).unique())
    colors = analysis.colors(names, "group")
    agents = agents.assign(group=agents["group"].astype(str))
    agents["_g"] = agents["group"].map({g: i for i, g in enumerate(names)})
    agents = agents.sort_values(["_g", "target", "agent_id"]).reset_index(drop=True)
    radius = 3.0 + np.arange(len(agents)) / max(len(agents) - 1, 1) * 7.0
    fig, ax = _new_figure((9.5, 8.5), projection="polar")
    r_max = 10.6
    for _name, lower in CATEGORY_LOWER_BOUNDS:
        ax.plot([math.radians(lower)] * 2, [0, r_max], color="#555555", lw=1.0, ls="--")
        ax.text(math.radians(lower), r_max + 0.5, f"{lower:g}°", ha="center", va="center", fontsize=8, color="#555555")
    for category, angle in (("altruistic", 75), ("prosocial", 40), ("individualistic", 5), ("competitive", -35)):
        ax.text(math.radians(angle), r_max + 1.7, category, ha="center", va="center", fontsize=9,
                color="#333333", fontstyle="italic")
    agents["radius"] = radius
    target = np.radians(agents["target"].to_numpy(float))
    agents["_target"] = target
    # revealed angles and their sets lie in [-90, 90], as do the targets: no wrap-around
    agents["_revealed"] = np.radians(agents["theta"].to_numpy(float))
    steps = np.linspace(0.0, 1.0, 24)

    def arcs(starts: pd.Series, ends: pd.Series, radii: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Arcs at constant radius from ``starts`` to ``ends`` (radians), one line separated by NaN."""
        t = [np.append(a + (b - a) * steps, np.nan) for a, b in zip(starts, ends)]
        r = [np.append(np.full(steps.size, rr), np.nan) for rr in radii]
        return (np.concatenate(t), np.concatenate(r)) if t else (np.array([]), np.array([]))

    for name in names:
        part = agents[agents["group"] == name]
        color = colors[name]
        ax.scatter(part["_target"], part["radius"], s=28, facecolors="none", edgecolors=color, linewidths=1.2, zorder=3)
        point = part[part["identification"] == "point"]
        bounded = part[part["identification"] == "set"]
        unknown = part[part["identification"] == "none"]
        ax.plot(*arcs(point["_target"], point["_revealed"], point["radius"]), color=color, lw=0.9, alpha=0.7)
        ax.scatter(point["_revealed"], point["radius"], s=22, color=color, zorder=4)
        # only a set is identified: draw the 95% set itself as a thick translucent arc, no point
        ax.plot(*arcs(np.radians(bounded["ci_low"]), np.radians(bounded["ci_high"]), bounded["radius"]),
                color=color, lw=4.0, alpha=0.35, solid_capstyle="butt")
        ax.scatter(unknown["_target"], unknown["radius"], s=30, color="white", edgecolors=color, marker="X", zorder=4)
    ax.set_thetamin(-90)
    ax.set_thetamax(90)
    ax.set_ylim(0, r_max + 2.3)
    ax.set_yticks([])
    ax.set_thetagrids(range(-90, 91, 45), labels=["−90°", "−45°", "0° self", "45°", "90° other"])
    handles = [Line2D([], [], color=colors[g], lw=2, label=g) for g in names]
    handles += [
        Line2D([], [], ls="", marker="o", mfc="none", mec="#333333", label="assigned angle (value in force)"),
        Line2D([], [], ls="", marker="o", color="#333333", label="revealed angle θ̂ (point-identified)"),
        Line2D([], [], color="#333333", lw=4.0, alpha=0.35, label="only bounded: 95% set, no point"),
        Line2D([], [], ls="", marker="X", mfc="white", mec="#333333", label="not identified"),
        Line2D([], [], color="#555555", ls="--", label="category boundaries"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=9)
    ax.set_title(f"SVO ring: assigned angle (open circle) and revealed angle θ̂ (dot, joined by an arc) or its set\n"
                 f"one agent and value per radius, grouped by population group{note} — seed {analysis.seeds[0]}",
                 fontsize=10.5, pad=28)
    return fig


def small_group_note(table: pd.DataFrame) -> str:
    """What the report table and the VR figure say about groups whose interval is not a t over agents."""
    if "interval_method" not in table:
        return ""
    methods = {m for m in table["interval_method"] if m not in ("t over agents", "t over seeds")}
    if not methods:
        return ""
    groups = ", ".join(table.loc[~table["interval_method"].isin(["t over agents", "t over seeds"]), "group"].astype(str))
    return f"; groups of fewer than 3 agents ({groups}): " + "; ".join(sorted(methods))


def fig_value_rationality(analysis: Analysis) -> Figure | None:
    table = analysis.group_vr
    if table.empty or table["decision_vr"].isna().all():
        return None
    panels = [("decision_vr", "chance_vr", "position_vr", "decision VR (0–1)", "Decision VR")]
    if "slider_vr" in table and table["slider_vr"].notna().any():
        panels.append(("slider_vr", "chance_slider_vr", "position_slider_vr", "slider-angle VR (0–1)", "Slider-angle VR"))
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=(5.5 * len(panels) + 3.0, 0.55 * len(table) + 3.2), layout="constrained")
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(len(table))
    for ax, (measure, chance, position, xlabel, title) in zip(axes, panels):
        values = table[measure].to_numpy(float)
        low = table[f"{measure}_low"].to_numpy(float)
        high = table[f"{measure}_high"].to_numpy(float)
        err = np.vstack([values - low, high - values])
        err = np.where(np.isnan(err), 0, err)
        ax.errorbar(values, y, xerr=err, fmt="o", color="#1f3b73", ms=7, capsize=4, label="measured (95% CI)")
        ax.scatter(table[chance], y, marker="|", s=300, color="#d95f02", linewidths=2.5, label="chance (uniform random)", zorder=3)
        if measure == "decision_vr":
            ax.axvline(1.0, color="#1b9e77", lw=2, ls="--", label="ceiling (oracle) = 1")
        else:  # the oracle's expected per-profile score: below 1 where items tie
            ax.scatter(table["ceiling_slider_vr"], y, marker="|", s=300, color="#1b9e77", linewidths=2.5,
                       label="ceiling (oracle, same score)", zorder=3)
        if position in table and table[position].notna().any():  # LLM groups: where position alone gets you
            ax.scatter(table[position], y, marker="D", s=40, facecolors="none", edgecolors="#7b3294", linewidths=1.5,
                       label="always the first option shown", zorder=4)
        ax.set_xlim(min(0.0, np.nanmin(np.concatenate([values, low, table[chance].to_numpy(float)])) - 0.05), 1.05)
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    axes[0].set_yticks(y, table["group"])
    axes[0].invert_yaxis()
    interval = "over seeds" if analysis.multi else "over the group's agents"
    interval += ", clipped to [0, 1]" + small_group_note(table)
    heading = f"Value rationality by group: measured VR (dot, 95% t-interval {interval}) vs chance and ceiling"
    width = int(fig.get_figwidth() * 11)  # characters of an 11-point title across the figure
    fig.suptitle(f"{textwrap.fill(heading, width)}\n{_scenario_label(analysis, band=False)}", fontsize=11)
    return fig


#: (file stem, builder, caption) in report order.
FIGURES: list[tuple[str, Callable[[Analysis], Figure | None], str]] = [
    ("value_rationality", fig_value_rationality,
     "Decision VR per group (1 = always the option that is best for the agent's own assigned value) beside the "
     "chance level of a uniform random chooser on the same menus and the ceiling of the value-rational oracle; "
     "for LLM groups, a hollow diamond marks what always taking the option shown first, whatever the value, "
     "would score on the same displays (a VR near it is explained by position alone); "
     "slider-angle VR where slider menus were played."),
    ("svo_ring", fig_svo_ring,
     "Each agent's assigned SVO angle (per value it held) and the angle its choices reveal (maximum-likelihood "
     "logit fit). A long arc from the assigned angle to a dot means the choices reveal a different value. Where "
     "the menus cannot tell nearby values apart (an altruist or competitor on the slider, an individualist on "
     "dictator menus) even a value-rational oracle is only bounded: its identified set (every angle at which all "
     "its choices are best, with the 95% likelihood set) is drawn as a thick band, not a point, and says nothing "
     "against the agent. A cross marks decisions that identify no angle."),
    ("revealed_drift", fig_revealed_drift,
     "Value drift: the revealed angle of each group's pooled choices in a rolling window of one menu cycle, "
     "against the group's mean assigned angle."),
    ("payoff_by_group", fig_payoff_by_group, "Mean payoff per round of an agent that played, per group."),
    ("welfare", fig_welfare, "Total payoff of the population per round."),
    ("gini", fig_gini, "Inequality of cumulative payoff over time, in the whole population and within each group."),
    ("value_shares", fig_value_shares,
     "Value shares: per round, the share of each SVO category among the agents that act on their value, by the "
     "value each held while deciding in that round (random and fixed deciders carry a value only as a label and "
     "are not counted; an update after the last round changes values no round played and is not drawn). The "
     "terminal's and the report's 'round 1 → round R' figures are this plot's two ends."),
    ("pair_payoffs", fig_pair_payoffs,
     "Mean payoff per game an agent of the row group earns against a partner of the column group."),
    ("network", fig_network, "The interaction network, coloured by value category and shaped by decider kind."),
]


def make_figures(
    run_or_runs: RunData | str | Path | Sequence[RunData | str | Path],
    out_dir: str | Path,
    *,
    analysis: Analysis | None = None,
) -> list[Path]:
    """Draw every figure of :data:`FIGURES` that has data; return the PNG and SVG paths written.

    Several runs must be seeds of one scenario (else :class:`ScenarioMismatch`); their figures
    show means over seeds with 95% t-interval bands. Pass ``analysis`` to reuse computed data.
    """
    analysis = analysis or Analysis.of(run_or_runs)
    out_dir = Path(out_dir)
    paths: list[Path] = []
    for stem, build, _caption in FIGURES:
        fig = build(analysis)
        if fig is not None:
            paths.extend(save_figure(fig, out_dir, stem))
    return paths
