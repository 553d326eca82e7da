"""The validity report of ``hvae evaluate --validity``: wording, placement, contamination, dictator.

Reads the evaluation's tables (cells told apart by ``probe``; see :mod:`hvae.experiments.probes`):

* :func:`probe_table` — one row per LLM cell answered under a probe or as the standard cell with
  the same goal-prompting setting: decision VR, chance, slider VR, mean angle, valid answers.
* :func:`validity_table` — per model and value (and ``all``, the mean over values):
  ``wording_spread`` (max − min decision VR over the standard wording and its paraphrases),
  ``placement_effect`` (value in the system message minus value in the first user turn),
  ``contamination`` (decision VR on the original slider items minus on the disguised ones) and its
  slider-VR form ``contamination_slider``. A model that follows the value it is given shows all
  four near 0 (up to sampling: read them beside ``n``); large ones say the measured VR depends on
  the wording, on where the value stands, or on having seen the published items.
* :func:`dictator_table` — the dictator probe per model and value (mean share of the 100 coins
  given, share giving nothing, share giving half) beside the human reference rows read from
  ``analysis/dictator_reference.csv`` (Engel 2011 meta-study; Mei et al. 2024 MobLab sample, with
  citations in the file). Humans there were given no value: the comparison is context, not a score.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["model", "value", "probe", "goal_prompting", "decision_vr", "chance_vr", "slider_vr", "angle_mean", "n_valid", "invalid_rate"]


def dictator_reference() -> pd.DataFrame:
    """The human dictator-game reference figures with their sources (shipped data file)."""
    with resources.files("hvae.analysis").joinpath("dictator_reference.csv").open(encoding="utf-8") as handle:
        return pd.read_csv(handle)


def probe_table(summary: pd.DataFrame) -> pd.DataFrame:
    """LLM cells under a probe, and the standard cells with the probes' goal-prompting setting."""
    llm = summary[summary["agent"] == "llm"]
    probed = llm[llm["probe"] != "standard"]
    if probed.empty:
        return pd.DataFrame(columns=COLUMNS)
    goals = set(probed["goal_prompting"].map(bool))
    standard = llm[(llm["probe"] == "standard") & llm["goal_prompting"].map(lambda g: bool(g) in goals)]
    return pd.concat([standard, probed], ignore_index=True)[COLUMNS]


def _vr(rows: pd.DataFrame, probe: str, column: str = "decision_vr") -> float:
    values = rows.loc[rows["probe"] == probe, column].to_numpy(dtype=float)
    return float(values[0]) if values.size else float("nan")


def validity_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Per model and value (and ``all``): wording spread, placement effect, contamination (module docstring)."""
    rows = []
    for (model, value), part in probes.groupby(["model", "value"], sort=False):
        wordings = part[part["probe"].isin(["standard", "wording1", "wording2", "wording3"])]["decision_vr"].to_numpy(dtype=float)
        wordings = wordings[np.isfinite(wordings)]
        standard = _vr(part, "standard")
        rows.append({
            "model": model, "value": value,
            "vr_standard": standard,
            "n_wordings": int(wordings.size),
            "vr_wording_min": float(wordings.min()) if wordings.size > 1 else np.nan,
            "vr_wording_max": float(wordings.max()) if wordings.size > 1 else np.nan,
            "wording_spread": float(np.ptp(wordings)) if wordings.size > 1 else np.nan,
            "vr_system": _vr(part, "system"),
            "placement_effect": _vr(part, "system") - standard,
            "vr_disguised": _vr(part, "disguised"),
            "contamination": standard - _vr(part, "disguised"),
            "slider_vr_standard": _vr(part, "standard", "slider_vr"),
            "slider_vr_disguised": _vr(part, "disguised", "slider_vr"),
            "contamination_slider": _vr(part, "standard", "slider_vr") - _vr(part, "disguised", "slider_vr"),
            "n_valid_standard": int(part.loc[part["probe"] == "standard", "n_valid"].sum()),
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    means = table.drop(columns=["value"]).groupby("model", sort=False).mean(numeric_only=True).reset_index()
    means.insert(1, "value", "all")
    return pd.concat([table, means], ignore_index=True)


def dictator_table(answers: pd.DataFrame, endowment: float = 100.0) -> pd.DataFrame:
    """The dictator probe per model and value, then the human reference rows (module docstring)."""
    rows = []
    usable = answers[answers["valid"].astype(bool) & (answers["choice"] >= 0)] if not answers.empty else answers
    for (model, value), part in usable.groupby(["model", "value"], sort=False):
        share = part["other_amount"].to_numpy(dtype=float) / endowment
        rows.append({
            "source": model, "population": f"LLM told the value '{value}'", "value": value, "n": len(part),
            "mean_given_share": float(share.mean()), "share_give_nothing": float(np.mean(share == 0)),
            "share_give_half": float(np.mean(np.isclose(share, 0.5))), "citation": "", "kind": "model",
        })
    reference = dictator_reference().assign(value="(no value given)", kind="human reference")
    return pd.concat([pd.DataFrame(rows), reference], ignore_index=True)


def validity_figure(probes: pd.DataFrame, dictator: pd.DataFrame, path: Path) -> Path:
    """Decision VR per value under each probe (one panel per model) and the dictator shares."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(probes["model"])) if not probes.empty else []
    has_dictator = (dictator["kind"] == "model").any()
    panels = len(models) + (1 if has_dictator else 0)
    fig = Figure(figsize=(6.2 * max(panels, 1), 4.6))
    axes = fig.subplots(1, max(panels, 1), squeeze=False)[0]
    order = ["standard", "wording1", "wording2", "wording3", "system", "disguised"]
    colours = {"standard": "tab:blue", "wording1": "#9ecae1", "wording2": "#6baed6", "wording3": "#4292c6",
               "system": "tab:green", "disguised": "tab:red"}
    for ax, model in zip(axes, models):
        part = probes[probes["model"] == model]
        values = list(dict.fromkeys(part["value"]))
        present = [p for p in order if p in set(part["probe"])]
        width = 0.8 / max(len(present), 1)
        x = np.arange(len(values))
        for i, probe in enumerate(present):
            vr = [_vr(part[part["value"] == v], probe) for v in values]
            ax.bar(x + (i - (len(present) - 1) / 2) * width, vr, width, label=probe, color=colours[probe])
        chance = [float(part.loc[part["value"] == v, "chance_vr"].mean()) for v in values]
        ax.scatter(x, chance, marker="_", s=500, color="black", label="chance", zorder=5)
        ax.set_xticks(x, values, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("decision VR")
        ax.set_title(f"{model}: VR per probe", fontsize=10)
        ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    if has_dictator:
        ax = axes[-1]
        models_rows = dictator[dictator["kind"] == "model"]
        labels = [f"{s}\n{v}" for s, v in zip(models_rows["source"], models_rows["value"])]
        ax.barh(np.arange(len(models_rows)), models_rows["mean_given_share"], color="tab:purple")
        for (_, ref), style in zip(dictator[dictator["kind"] == "human reference"].iterrows(), ("--", ":", "-.")):
            ax.axvline(ref["mean_given_share"], linestyle=style, linewidth=1.2, color="grey",
                       label=f"{ref['source']} (N = {int(ref['n']):,}): {ref['mean_given_share']:.1%}")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))
        ax.set_yticks(np.arange(len(models_rows)), labels, fontsize=6)
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean share of 100 coins given")
        ax.set_title("dictator probe vs human reference (dashed)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
