"""The dashboard's figures, drawn from a :class:`~hvae.dashboard.session.View` with matplotlib.

Each function returns a new :class:`matplotlib.figure.Figure` (no pyplot state, so figures can be
drawn while another thread plays the next round). Colours are the project's palette
(:mod:`hvae.analysis.palette`): a value category has the same colour here as in every report.

The network keeps one layout per model (:func:`network_layout`, a seeded spring layout computed
once): Mesa's ``make_space_component`` recomputes the layout of a network space at every draw,
which for a few hundred nodes costs more than the round itself.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from matplotlib.figure import Figure

from hvae.agents.svo import CATEGORY_ORDER, categories
from hvae.analysis.palette import CATEGORY_COLORS, OTHER_COLOR
from hvae.dashboard.session import View

SMALL = (4.6, 3.2)


def network_layout(n_agents: int, edges: np.ndarray, seed: int = 0) -> np.ndarray:
    """Node positions ``(n, 2)`` for the network (spring layout, fixed seed)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(n_agents))
    graph.add_edges_from(map(tuple, edges.tolist()))
    iterations = 50 if n_agents <= 500 else 15
    positions = nx.spring_layout(graph, seed=seed, iterations=iterations)
    return np.array([positions[i] for i in range(n_agents)])


def network_figure(view: View, layout: np.ndarray) -> Figure:
    """The network, each agent coloured by the value category it holds now."""
    figure = Figure(figsize=(4.6, 4.2), layout="constrained")
    axes = figure.add_subplot()
    if len(view.edges) <= 5000:
        segments = layout[view.edges]
        for (x0, y0), (x1, y1) in segments:
            axes.plot([x0, x1], [y0, y1], color="#cccccc", linewidth=0.6, zorder=1)
    names = categories(view.theta)
    colors = [CATEGORY_COLORS.get(name, OTHER_COLOR) if name else OTHER_COLOR for name in names]
    size = max(8.0, 120.0 / max(1.0, np.sqrt(view.n_agents / 16)))
    axes.scatter(layout[:, 0], layout[:, 1], c=colors, s=size, edgecolors="white", linewidths=0.5, zorder=2)
    for name in CATEGORY_ORDER:
        axes.scatter([], [], c=CATEGORY_COLORS[name], label=name, s=30)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=7, frameon=False, handletextpad=0.1)
    axes.set_title(f"network: value held by each agent (round {view.round})", fontsize=9)
    axes.set_axis_off()
    return figure


def _lines_figure(frame, colors: dict[str, str], title: str, ylabel: str) -> tuple[Figure, object]:
    """One line per column of ``frame`` (x = its index, rounds played) that has a colour."""
    figure = Figure(figsize=SMALL, layout="constrained")
    axes = figure.add_subplot()
    for name, color in colors.items():
        if name in frame:
            axes.plot(frame.index, frame[name], color=color, label=name, marker="o", markersize=2.5)
    axes.set_xlabel("rounds played", fontsize=8)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.set_title(title, fontsize=9)
    axes.tick_params(labelsize=7)
    if len(frame):
        axes.legend(fontsize=7, frameon=False)
    else:
        axes.text(0.5, 0.5, "no round played yet", ha="center", va="center", transform=axes.transAxes, fontsize=8)
    return figure, axes


def shares_figure(view: View) -> Figure:
    """Share of the population holding each value category, after each round."""
    figure, axes = _lines_figure(view.shares, {name: CATEGORY_COLORS[name] for name in CATEGORY_ORDER},
                                 "value shares over time", "share of agents")
    axes.set_ylim(-0.02, 1.02)
    return figure


def payoff_figure(view: View) -> Figure:
    """Mean payoff of each group in each round."""
    figure, _ = _lines_figure(view.mean_payoff, view.group_colors, "mean payoff by group",
                              "mean payoff in the round")
    return figure


def vr_figure(view: View) -> Figure:
    """Decision VR by group so far, with chance (random chooser) and ceiling (oracle) on the same decisions."""
    figure = Figure(figsize=SMALL, layout="constrained")
    axes = figure.add_subplot()
    table = view.vr_by_group
    positions = np.arange(len(table))
    colors = view.group_colors
    axes.bar(positions, table["decision_vr"].fillna(0), color=[colors[g] for g in table["group"]], width=0.6)
    axes.scatter(positions, table["chance_vr"], marker="_", s=400, color="black", label="chance", zorder=3)
    # the ceiling in grey, not green: a group may wear the altruistic green (analysis.palette.group_colors)
    axes.scatter(positions, table["ceiling_vr"], marker="_", s=400, color="#888888", label="ceiling", zorder=3)
    for x, (value, n) in enumerate(zip(table["decision_vr"], table["n"])):
        axes.text(x, 0.02, "n/a" if n == 0 else f"{value:.2f}", ha="center", va="bottom", fontsize=7, color="white" if n else "black")
    axes.set_xticks(positions, table["group"], rotation=30, ha="right", fontsize=7)
    axes.set_ylim(0, 1.25)
    axes.set_ylabel("decision VR", fontsize=8)
    axes.set_title("decision VR by group (chance, ceiling)", fontsize=9)
    axes.legend(fontsize=7, frameon=False, loc="upper center", ncol=2)
    axes.tick_params(axis="y", labelsize=7)
    return figure
