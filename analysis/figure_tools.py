"""What every figure shares: the seaborn style, a fresh ``Figure``, seed notes, bands, saving.

Figures use matplotlib's object-oriented API (never ``pyplot``), so drawing changes no global
state. :func:`save_figure` writes PNG and SVG side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure


from hvae.analysis.dataset import Analysis

DPI = 110


def _style() -> tuple:
    return sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.95)


def _new_figure(size: tuple[float, float] = (10.0, 5.2), **subplot) -> tuple[Figure, object]:
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=size)
        ax = fig.add_subplot(111, **subplot)
    return fig, ax


def _seeds_note(analysis: Analysis, band: bool = True) -> str:
    if analysis.multi:
        seeds = ", ".join(str(s) for s in analysis.seeds)
        return f"mean over {len(analysis.runs)} seeds ({seeds})" + (", band = 95% t-interval over seeds" if band else "")
    return f"seed {analysis.seeds[0]}"


def _legend_outside(ax, **kwargs) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, **kwargs)


def _lines_with_bands(ax, frame: pd.DataFrame, metric: str, names: Sequence[str], colors: dict[str, str], label_of=str) -> None:
    for name in names:
        part = frame[frame["group"] == name].sort_values("round")
        if part.empty:
            continue
        x = part["round"].to_numpy() + 1
        ax.plot(x, part[metric], color=colors[name], lw=1.8, marker="o" if len(part) <= 30 else None, ms=3.5,
                label=label_of(name))
        low, high = part.get(f"{metric}_low"), part.get(f"{metric}_high")
        if low is not None and low.notna().any():
            ax.fill_between(x, low, high, color=colors[name], alpha=0.18 if len(names) <= 3 else 0.1, lw=0)


def _round_axis(ax) -> None:
    ax.set_xlabel("round (1 = first round played)")
    ax.xaxis.get_major_locator().set_params(integer=True)


def _scenario_label(analysis: Analysis, band: bool = True) -> str:
    return f"{analysis.scenario.get('name', '?')} — {_seeds_note(analysis, band)}"


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` in ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths
