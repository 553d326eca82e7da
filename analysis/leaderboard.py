"""The model leaderboard of ``hvae evaluate``: one table and one figure per model, and a ranking.

``hvae evaluate --backend a,b,c`` answers the HVAE questionnaire with every named backend (and any
rule deciders asked for); this module turns the evaluation folder's tables into

* **per-model tables** (``models/<model>.csv``): one row per (value, goal prompting) with decision
  VR, slider VR, their chance levels and the position reference (the VR of a value-blind chooser
  that always takes the option shown first, same displays), the revealed angle with its 95%
  interval (:func:`~hvae.agents.revealed.fit_revealed_angle` on the valid answers; rule-decider
  cells only up to :data:`RULE_FIT_LIMIT` answers), the
  first-position share with its display-adjusted test (:func:`~hvae.analysis.position.display_adjusted_bias`),
  the invalid rate, and tokens and latency per answer;
* **per-model figures** (``figures/model_<model>.png``): the paper's radar of decision VR per value
  with and without goal prompting (chance and the position reference dashed), the revealed angle per
  value with its interval against the target, and the first-position share against its expectation;
* **the leaderboard** (``leaderboard.csv`` / ``.parquet`` / ``.md`` / ``.html``): one row per model,
  sorted by the overall score, with three **reference rows** computed by the same estimators on
  the same items: ``ceiling`` (the value-rational oracle), ``chance`` (a uniform random chooser)
  and ``first option`` (the value-blind first-option chooser on the displays the models saw).

**Score** (the ranking; position cannot buy it): per model and cell (value × goal-prompting
setting) the choice model of :func:`~hvae.agents.revealed.fit_at_angle`,
``P(i) ∝ exp(β·U_θ*(i) + b·[i shown first])`` with θ* the value the model was given, is fitted to
the valid answers; the **position-free VR** is the decision VR that this fit predicts at b = 0
(each answer's expected normalised utility under ``softmax(β̂·U_θ*)``), and the cell scores
``valid share × (position-free VR − chance) / (1 − chance)``; the model's score is the mean over
its cells. 0 = chance (and the value-blind first-option chooser: β̂ = 0), 1 = the ceiling, below 0
a model acting against its value; every invalid answer counts as a chance-level answer. ``b`` (the
fitted first-position bonus, mean over cells, logit units) is reported beside the score. Every
score has a 95% **bootstrap interval** (:data:`RESAMPLES` resamples of the repeats within each
cell, percentile), and ``tied_with_next`` says when the next model's interval overlaps this one's
(the order of the two is not established).

**Raw score** (``raw_score``, shown for context): the same formula with the observed decision VR,
which a first-position bonus can raise (the best slider option often sits at an end of the menu,
and is then shown first for half of the counterbalanced displays).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.agents.revealed import fit_revealed_angle
from hvae.analysis.position import display_adjusted_bias
from hvae.analysis.rationality import first_shown

RESAMPLES = 200  #: bootstrap resamples of repeats behind every score's interval
LEADERBOARD_FILES = ("leaderboard.csv", "leaderboard.parquet", "leaderboard.md", "leaderboard.html")
REFERENCE_ROWS = ("ceiling", "chance", "first option")
#: Rule-decider cells with more valid answers than this get no revealed-angle fit (their behaviour is
#: known by construction, and baselines of 20,000 repeats must stay fast); LLM cells are always fitted.
RULE_FIT_LIMIT = 5000


def model_slug(model: str) -> str:
    """A file-name-safe form of a model label (``oracle_server:hvae-oracle`` → ``oracle_server_hvae-oracle``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


def _cell_key(frame: pd.DataFrame) -> pd.Series:
    goal = frame["goal_prompting"].map(lambda g: "–" if g is None or g != g else ("on" if g else "off"))
    return frame["value"].astype(str) + "|" + goal


def model_table(summary: pd.DataFrame, answers: pd.DataFrame, menus: dict[str, np.ndarray],
                resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One model's rows (one per value and goal-prompting setting); see the module docstring.

    ``summary`` and ``answers`` are the model's rows of ``evaluation_summary`` and ``answers``;
    ``menus`` maps ``menu_id`` to its options. The bootstrap replicates of each cell's score
    (``resamples`` + 1 columns, the first the estimate itself) are kept in
    ``table.attrs["score_replicates"]`` for :func:`leaderboard`.
    """
    rng = np.random.default_rng(seed)
    rows, replicates = [], []
    answers = answers.assign(cell=_cell_key(answers), first=first_shown(answers))
    summary = summary.assign(cell=_cell_key(summary))
    for _, cell in summary.iterrows():
        part = answers[answers["cell"] == cell["cell"]]
        usable = part[part["valid"].astype(bool) & (part["choice"] >= 0)]
        fit = None
        if len(usable) and (cell["agent"] == "llm" or len(usable) <= RULE_FIT_LIMIT):
            fit = fit_revealed_angle([menus[m] for m in usable["menu_id"]], usable["choice"].to_numpy(), usable["first"].to_numpy())
        scores, beta, b, pf_vr = position_free_scores(part, menus, float(cell["value_angle"]), resamples, rng)
        replicates.append(scores)
        shown = usable[usable["first"] >= 0]
        bias = display_adjusted_bias(shown["menu_id"].to_numpy(), shown["choice"].to_numpy(), shown["first"].to_numpy())
        rows.append({
            "model": cell["model"], "agent": cell["agent"], "value": cell["value"], "value_angle": float(cell["value_angle"]),
            "goal_prompting": cell["goal_prompting"], "repeats": int(cell["repeats"]), "n_answers": len(part),
            "n_valid": len(usable),
            "decision_vr": cell["decision_vr"], "chance_vr": cell["chance_vr"], "position_vr": cell.get("position_vr", np.nan),
            "position_free_vr": pf_vr, "fit_beta": beta, "fit_position": b, "cell_score": scores[0],
            "slider_vr": cell["slider_vr"], "chance_slider_vr": cell["chance_slider_vr"],
            "ceiling_slider_vr": cell["ceiling_slider_vr"], "position_slider_vr": cell.get("position_slider_vr", np.nan),
            "angle_mean": cell["angle_mean"], "attainable_angle": cell["attainable_angle"],
            "revealed_theta": fit.theta if fit is not None and fit.identification == "point" else np.nan,
            "revealed_ci_low": fit.ci_low if fit is not None else np.nan,
            "revealed_ci_high": fit.ci_high if fit is not None else np.nan,
            "revealed_identification": fit.identification if fit is not None else "none",
            "first_share": bias["first_share"], "first_expected": bias["first_expected"], "position_p": bias["p_value"],
            "invalid_rate": cell["invalid_rate"],
            "reask_rate": _reask_rate(part),
            "tokens_per_answer": _per_answer(part, ("tokens_in", "tokens_out")),
            "latency_s_per_answer": _per_answer(part, ("latency_s",)),
        })
    table = pd.DataFrame(rows)
    # (tuples: pandas compares attrs when tables are concatenated, which arrays do not allow)
    table.attrs["score_replicates"] = tuple(tuple(map(float, r)) for r in replicates)
    return table


def position_free_scores(
    part: pd.DataFrame, menus: dict[str, np.ndarray], theta: float, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, float, float, float]:
    """One cell's score (module docstring) and its bootstrap replicates over repeats.

    ``part`` is the cell's answers (all of them: invalid ones count as chance). Returns the
    scores (``resamples`` + 1 values, the first on the data as they are), and β̂, b̂ and the
    position-free VR of the estimate.
    """
    from hvae.agents.revealed import fit_at_angle
    from hvae.analysis.rationality import normalised_utilities

    repeat_ids = part["repeat"].to_numpy() if "repeat" in part else np.arange(len(part))
    units, unit_of = np.unique(repeat_ids, return_inverse=True)
    counts = np.vstack([np.ones(len(units)), rng.multinomial(len(units), np.full(len(units), 1 / len(units)),
                                                             size=resamples)]) if len(units) else np.ones((1, 0))
    answered = counts[:, unit_of] if len(part) else np.zeros((resamples + 1, 0))
    valid = (part["valid"].astype(bool) & (part["choice"] >= 0)).to_numpy() if len(part) else np.zeros(0, bool)
    normalised = [normalised_utilities(theta, menus[m])[0] for m in part["menu_id"]] if len(part) else []
    scored = valid & np.array([np.isfinite(nu).all() for nu in normalised], dtype=bool)
    nan = float("nan")
    if not scored.any():
        return np.zeros(resamples + 1), nan, nan, nan  # no valid answer: chance level
    keep = np.flatnonzero(scored)
    options = [menus[m] for m in part["menu_id"].to_numpy()[keep]]
    first = part["first"].to_numpy()[keep] if "first" in part else None
    weights = answered[:, keep]
    beta, b, _ = fit_at_angle(options, part["choice"].to_numpy()[keep], first, theta, weights)
    rad = np.radians(theta)
    expected = np.empty((len(beta), keep.size))
    chance = np.empty(keep.size)
    for j, (menu, i) in enumerate(zip(options, keep)):
        u = np.cos(rad) * menu[:, 0] + np.sin(rad) * menu[:, 1]
        logits = np.outer(beta, u - u.max())
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected[:, j] = (p / p.sum(axis=1, keepdims=True)) @ normalised[i]
        chance[j] = normalised[i].mean()
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pf_vr = (weights * expected).sum(axis=1) / total
        chance_level = (weights @ chance) / total
        valid_share = (answered[:, valid].sum(axis=1)) / answered.sum(axis=1)
        scores = valid_share * (pf_vr - chance_level) / (1.0 - chance_level)
    scores = np.where(np.isfinite(scores), scores, 0.0)  # a resample without a valid answer: chance
    return scores, float(beta[0]), float(b[0]), float(pf_vr[0])


def _reask_rate(part: pd.DataFrame) -> float:
    """Share of answers whose first reply was unusable (re-asked, or invalid at once); NaN for rule deciders."""
    if "attempts" not in part or part["attempts"].isna().all():
        return float("nan")
    attempts = pd.to_numeric(part["attempts"], errors="coerce")
    return float(((attempts > 1) | ~part["valid"].astype(bool)).mean())


def _per_answer(part: pd.DataFrame, columns: tuple[str, ...]) -> float:
    if part.empty or not all(c in part for c in columns):
        return float("nan")
    values = sum(pd.to_numeric(part[c], errors="coerce") for c in columns)
    return float(values.mean()) if values.notna().any() else float("nan")


def overall_score(table: pd.DataFrame) -> float:
    """The raw score: ``mean(valid share × (decision VR − chance) / (1 − chance))`` over a model's cells.

    Position can raise it (module docstring); the ranking uses the position-free score instead.
    """
    vr = table["decision_vr"].to_numpy(dtype=float)
    chance = table["chance_vr"].to_numpy(dtype=float)
    valid = 1.0 - table["invalid_rate"].to_numpy(dtype=float)
    normalised = np.where(np.isfinite(vr), (vr - chance) / (1.0 - chance), 0.0)  # no valid answer: chance level
    return float(np.mean(valid * normalised)) if len(table) else float("nan")


def _goal_gain(table: pd.DataFrame) -> float:
    goal = table["goal_prompting"]
    on = table.loc[goal.map(lambda g: g is True or g == 1.0), "decision_vr"].mean()
    off = table.loc[goal.map(lambda g: g is False or g == 0.0), "decision_vr"].mean()
    return float(on - off) if np.isfinite(on) and np.isfinite(off) else float("nan")


def _weighted(table: pd.DataFrame, column: str, weights: str = "n_valid") -> float:
    values = table[column].to_numpy(dtype=float)
    w = table[weights].to_numpy(dtype=float)
    keep = np.isfinite(values) & (w > 0)
    return float(np.average(values[keep], weights=w[keep])) if keep.any() else float("nan")


def leaderboard(model_tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model (sorted by the position-free ``score``) plus the ceiling, chance and first-option rows."""
    rows = []
    for model, table in model_tables.items():
        score, low, high = _score_interval(table)
        rows.append({
            "model": model, "kind": "rule" if table["agent"].iloc[0] != "llm" else "model",
            "score": score, "score_low": low, "score_high": high,
            "fit_position": float(table["fit_position"].mean()) if "fit_position" in table else float("nan"),  # (NaN-skipping)
            "raw_score": overall_score(table),
            "decision_vr": table["decision_vr"].mean(), "chance_vr": table["chance_vr"].mean(),
            "position_vr": table["position_vr"].mean(), "slider_vr": table["slider_vr"].mean(),
            "chance_slider_vr": table["chance_slider_vr"].mean(), "goal_gain": _goal_gain(table),
            "first_share": _weighted(table, "first_share"), "first_expected": _weighted(table, "first_expected"),
            "position_p_min": float(table["position_p"].min()) if table["position_p"].notna().any() else float("nan"),
            "invalid_rate": float(1 - table["n_valid"].sum() / max(table["n_answers"].sum(), 1)),
            "reask_rate": _weighted(table, "reask_rate", "n_answers"),
            "tokens_per_answer": _weighted(table, "tokens_per_answer", "n_answers"),
            "latency_s_per_answer": _weighted(table, "latency_s_per_answer", "n_answers"),
            "n_answers": int(table["n_answers"].sum()),
        })
    board = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable") if rows else pd.DataFrame()
    if not board.empty:
        below_high = board["score_high"].shift(-1)
        board["tied_with_next"] = (board["score_low"] <= below_high).fillna(False).astype(bool)
    everything = pd.concat(model_tables.values(), ignore_index=True) if model_tables else pd.DataFrame()
    llm = everything[everything["agent"] == "llm"] if not everything.empty else everything
    base = llm if not llm.empty else everything
    references = []
    if not base.empty:
        chance, chance_slider = base["chance_vr"].mean(), base["chance_slider_vr"].mean()
        references = [
            {"model": "ceiling", "kind": "reference", "score": 1.0, "raw_score": 1.0, "decision_vr": 1.0, "chance_vr": chance,
             "slider_vr": base["ceiling_slider_vr"].mean(), "chance_slider_vr": chance_slider, "invalid_rate": 0.0},
            {"model": "chance", "kind": "reference", "score": 0.0, "raw_score": 0.0, "decision_vr": chance, "chance_vr": chance,
             "slider_vr": chance_slider, "chance_slider_vr": chance_slider, "invalid_rate": 0.0},
        ]
        if llm["position_vr"].notna().any():
            position = llm.assign(invalid_rate=0.0, decision_vr=llm["position_vr"])
            references.append({
                "model": "first option", "kind": "reference", "score": 0.0, "raw_score": overall_score(position),
                "decision_vr": llm["position_vr"].mean(), "chance_vr": llm["chance_vr"].mean(),
                "slider_vr": llm["position_slider_vr"].mean(), "chance_slider_vr": llm["chance_slider_vr"].mean(),
                "first_share": 1.0, "invalid_rate": 0.0,
            })
    board = pd.concat([board, pd.DataFrame(references)], ignore_index=True)
    board.insert(0, "rank", [i + 1 if kind != "reference" else None for i, kind in enumerate(board["kind"])])
    board["rank"] = board["rank"].astype("Int64")
    return board


def _score_interval(table: pd.DataFrame) -> tuple[float, float, float]:
    """The model's score (mean over cells) and its 95% percentile bootstrap interval."""
    replicates = table.attrs.get("score_replicates")
    if replicates is None or len(replicates) == 0:
        score = float(table["cell_score"].mean()) if "cell_score" in table else float("nan")
        return score, float("nan"), float("nan")
    per_resample = np.asarray(replicates, dtype=float).mean(axis=0)
    low, high = np.percentile(per_resample[1:], [2.5, 97.5]) if per_resample.size > 1 else (np.nan, np.nan)
    return float(per_resample[0]), float(low), float(high)


_DISPLAY = [
    ("rank", "#", None), ("model", "model", None), ("score", "score", ".3f"), ("score_interval", "95% interval", None),
    ("tied_with_next", "≈ next", None), ("fit_position", "1st bonus b", "+.2f"), ("raw_score", "raw score", ".3f"),
    ("decision_vr", "decision VR", ".3f"),
    ("chance_vr", "chance", ".3f"), ("position_vr", "1st-only VR", ".3f"), ("slider_vr", "slider VR", ".3f"),
    ("goal_gain", "goal gain", "+.3f"), ("first_share", "1st shown", ".0%"), ("first_expected", "expected", ".0%"),
    ("invalid_rate", "invalid", ".0%"), ("reask_rate", "re-asked", ".0%"), ("tokens_per_answer", "tokens/ans", ".0f"), ("latency_s_per_answer", "s/ans", ".3f"),
]

LEADERBOARD_NOTE = (
    "score (the ranking) = mean over values and goal-prompting settings of valid share × (position-free VR − chance) / "
    "(1 − chance), where the position-free VR is what the fit P(i) ∝ exp(β·U_θ*(i) + b·[i shown first]) predicts at "
    "b = 0: 0 = chance, 1 = ceiling (the value-rational oracle); invalid answers count as chance; 95% bootstrap interval "
    "over repeats; '≈ next': the next model's interval overlaps (their order is not established). 1st bonus b: the "
    "fitted first-position bonus. raw score: the same with the observed decision VR (position can raise it). "
    "1st-only VR: a value-blind "
    "chooser that always takes the option shown first, on the same displays (reference row 'first option'). "
    "1st shown vs expected: the share of answers that took the first option, and what the same choices would give "
    "if the display order did not matter (display-adjusted test). goal gain: decision VR with minus without goal "
    "prompting. invalid: unusable after hvae's re-asks; re-asked: the first reply was unusable."
)


def display_rows(board: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the leaderboard (Markdown, HTML and the terminal share them)."""
    headers = [h for _, h, _ in _DISPLAY]
    cells = []
    for _, row in board.iterrows():
        line = []
        for key, _, fmt in _DISPLAY:
            value = row.get(key)
            if key == "score_interval":
                low, high = row.get("score_low"), row.get("score_high")
                line.append("–" if low is None or pd.isna(low) else f"[{low:.3f}, {high:.3f}]")
                continue
            if key == "tied_with_next":
                line.append("≈" if value is True or value == 1 else "")
                continue
            if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
                line.append("–")
            else:
                line.append(format(value, fmt) if fmt else str(value))
        cells.append(line)
    return headers, cells


def _markdown_cell(text: str) -> str:
    """A table cell: HTML escaped (Markdown renders raw HTML), one line, ``|`` escaped."""
    from html import escape

    from hvae.files.untrusted import one_line

    return escape(one_line(text, limit=500), quote=False).replace("|", "\\|")


def markdown(board: pd.DataFrame) -> str:
    headers, cells = display_rows(board)
    lines = ["| " + " | ".join(_markdown_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in cells]
    return "# hvae leaderboard\n\n" + "\n".join(lines) + f"\n\n{LEADERBOARD_NOTE}\n"


def html(board: pd.DataFrame) -> str:
    from html import escape

    headers, cells = display_rows(board)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f"<tr class=\"{escape(str(kind))}\">" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
        for row, kind in zip(cells, board["kind"])
    )
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:4px 10px;"
             "border-bottom:1px solid #ddd;text-align:right}td:nth-child(2),th:nth-child(2){text-align:left}"
             "tr.reference{color:#666;font-style:italic}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>hvae leaderboard</title><style>{style}</style>"
            f"</head><body><h1>hvae leaderboard</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p>{escape(LEADERBOARD_NOTE)}</p></body></html>\n")


def model_figure(table: pd.DataFrame, path: Path) -> Path:
    """Radar of decision VR per value (goal on/off), revealed angle per value, first-position share."""
    from matplotlib.figure import Figure

    values = list(dict.fromkeys(table["value"]))
    fig = Figure(figsize=(15, 4.8))
    radar = fig.add_subplot(1, 3, 1, projection="polar")
    angles = np.linspace(0, 2 * np.pi, len(values), endpoint=False)
    closed = np.append(angles, angles[0])

    def ring(series: pd.Series) -> list[float]:
        vr = [float(series.get(v, np.nan)) for v in values]
        return [*vr, vr[0]]

    goal = table["goal_prompting"]
    for label, mask, colour, style in (("with goal prompting", goal.map(lambda g: g is True or g == 1.0), "tab:blue", "-"),
                                       ("without goal prompting", goal.map(lambda g: g is False or g == 0.0), "tab:orange", "--"),
                                       ("rule decider", goal.isna(), "tab:purple", "-")):
        rows = table[mask.astype(bool)]
        if not rows.empty:
            radar.plot(closed, ring(rows.groupby("value")["decision_vr"].mean()), marker="o", color=colour, label=label,
                       linestyle=style, alpha=0.85)
    radar.plot(closed, ring(table.groupby("value")["chance_vr"].mean()), color="grey", linestyle="--", linewidth=1, label="chance")
    if table["position_vr"].notna().any():
        radar.plot(closed, ring(table.groupby("value")["position_vr"].mean()), color="tab:red", linestyle=":",
                   linewidth=1.2, label="first option (value-blind)")
    radar.set_xticks(angles, values, fontsize=8)
    radar.tick_params(axis="x", pad=10)
    radar.set_rlabel_position(112)
    radar.tick_params(axis="y", labelsize=7)
    radar.set_ylim(0, 1)
    radar.set_title("decision VR per value", fontsize=10, pad=16)
    radar.legend(loc="lower left", bbox_to_anchor=(-0.25, -0.32), fontsize=7)

    ax = fig.add_subplot(1, 3, 2)
    labels = [f"{v} ({_goal_label(g)})" for v, g in zip(table["value"], table["goal_prompting"])]
    x = np.arange(len(table))
    low, high = table["revealed_ci_low"].to_numpy(float), table["revealed_ci_high"].to_numpy(float)
    point = table["revealed_theta"].to_numpy(float)
    for i in x:
        colour = "tab:blue" if np.isfinite(point[i]) else "tab:grey"
        if np.isfinite(low[i]):
            ax.plot([i, i], [low[i], high[i]], color=colour, linewidth=5, alpha=0.45, solid_capstyle="butt")
        if np.isfinite(point[i]):
            ax.plot(i, point[i], "o", color=colour)
    ax.scatter(x, table["value_angle"], marker="_", s=400, color="black", label="assigned angle", zorder=5)
    ax.set_xticks(x, labels, fontsize=7, rotation=35, ha="right")
    ax.set_ylim(-95, 95)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("revealed angle (°)")
    ax.set_title("revealed angle: ● point with 95% interval, grey bar = only a set identified", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")

    bars = fig.add_subplot(1, 3, 3)
    bars.bar(x - 0.2, table["first_share"], width=0.4, label="chose the option shown first")
    bars.bar(x + 0.2, table["first_expected"], width=0.4, color="lightgrey", label="expected if display did not matter")
    for i, p in zip(x, table["position_p"]):
        if np.isfinite(p) and p < 0.01:
            bars.text(i, min(1.0, float(table["first_share"].iloc[i]) + 0.03), "*", ha="center", fontsize=12)
    bars.set_xticks(x, labels, fontsize=7, rotation=35, ha="right")
    bars.set_ylim(0, 1.1)
    bars.set_title("first-position share (* display-adjusted p < 0.01)", fontsize=9)
    bars.legend(fontsize=7, loc="upper right")
    model = str(table["model"].iloc[0])
    fig.suptitle(f"{model}: invalid {float(1 - table['n_valid'].sum() / max(table['n_answers'].sum(), 1)):.0%} of "
                 f"{int(table['n_answers'].sum())} answers; score {_score_interval(table)[0]:.3f} "
                 f"(raw {overall_score(table):.3f})", fontsize=11)
    fig.subplots_adjust(wspace=0.3, bottom=0.25, top=0.82)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _goal_label(goal) -> str:
    if goal is None or goal != goal:
        return "rule"
    return "goal" if goal else "fixed goal"


def write_leaderboard(folder: Path, summary: pd.DataFrame, answers: pd.DataFrame, menus: dict[str, np.ndarray],
                      figures: bool = True) -> pd.DataFrame:
    """Per-model tables (and figures) and the leaderboard files in an evaluation folder."""
    from hvae.files.atomic import write_bytes_atomic

    folder = Path(folder)
    tables: dict[str, pd.DataFrame] = {}
    for model in dict.fromkeys(summary["model"]):
        table = model_table(summary[summary["model"] == model], answers[answers["model"] == model], menus)
        tables[model] = table
        (folder / "models").mkdir(exist_ok=True)
        table.to_csv(folder / "models" / f"{model_slug(model)}.csv", index=False)
        if figures:
            model_figure(table, folder / "figures" / f"model_{model_slug(model)}.png")
    board = leaderboard(tables)
    board.to_csv(folder / "leaderboard.csv", index=False)
    board.to_parquet(folder / "leaderboard.parquet", index=False)
    write_bytes_atomic(folder / "leaderboard.md", markdown(board).encode())
    write_bytes_atomic(folder / "leaderboard.html", html(board).encode())
    return board


def menus_of(schedule) -> dict[str, np.ndarray]:
    """``menu_id`` → options of an evaluation's slider schedule."""
    return {menu.menu_id: np.asarray(menu.options, dtype=float) for menu in schedule.menus}


