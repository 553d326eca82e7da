"""Value rationality: how well behaviour follows the value an agent was given.

Two measures live here (the revealed angle arrives with the full analysis layer):

* **Decision VR** — on a menu with utilities ``U_θ*(option)`` for the agent's assigned angle θ*,
  a choice ``c`` scores ``(U(c) − min U) / (max U − min U)``; menus where all options are equal
  are skipped. An agent's decision VR is the mean over its decisions. The value-rational oracle
  scores 1.0 (the **ceiling**); a uniform random chooser scores the mean of the normalised
  utilities of the options on the same menus (the **chance** level), computed exactly per decision.
* **Slider-angle VR** — the agent's slider angle θ̂ against the **attainable** target θ_att (what
  the oracle for θ* scores on the slider, ties averaged): ``1 − |θ̂ − θ_att| / 77.65``.
  Profiles come from slider rounds: an agent's k-th profile uses its k-th answer to each of the
  six primary items (so idle rounds only delay a profile, they never mix answers).

Every figure is reported beside chance and ceiling; :func:`decision_scores` returns all three per
decision so that any grouping can average them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hvae.agents import svo


def menu_options(menus: pd.DataFrame) -> dict[str, np.ndarray]:
    """``menu_id`` → ``(k, 2)`` options array from a run's ``menus`` table."""
    options = {}
    for menu_id, rows in menus.sort_values(["menu_id", "option"]).groupby("menu_id", sort=False):
        options[str(menu_id)] = rows[["self", "other"]].to_numpy(dtype=float)
    return options


def normalised_utilities(thetas: np.ndarray, options: np.ndarray) -> np.ndarray:
    """``(U − min U) / (max U − min U)`` per angle (rows) and option (columns); NaN rows where all
    options are equal. Utilities within :data:`~hvae.agents.svo.UTILITY_TOLERANCE` of the maximum
    count as the maximum, so a value-rational choice scores exactly 1.0.
    """
    utilities = svo.menu_utilities(np.atleast_1d(np.asarray(thetas, dtype=float)), options)
    low = utilities.min(axis=1, keepdims=True)
    high = utilities.max(axis=1, keepdims=True)
    tolerance = svo.UTILITY_TOLERANCE * np.maximum(1, np.abs(high))
    span = high - low
    defined = span[:, 0] > tolerance[:, 0]
    normalised = (utilities - low) / np.where(span > 0, span, 1)
    normalised = np.where(utilities >= high - tolerance, 1.0, normalised)
    return np.where(defined[:, None], normalised, np.nan)


def decision_scores(decisions: pd.DataFrame, menus: pd.DataFrame) -> pd.DataFrame:
    """Per decision: ``decision_vr`` (NaN where undefined), ``chance_vr`` and ``ceiling_vr``.

    Decisions without a choice (``choice < 0``) get NaN. Returned frame shares the index of
    ``decisions``.
    """
    options_by_menu = menu_options(menus)
    vr = np.full(len(decisions), np.nan)
    chance = np.full(len(decisions), np.nan)
    menu_ids = decisions["menu_id"].astype(str).to_numpy()
    thetas = decisions["value_angle"].to_numpy(dtype=float)
    choices = decisions["choice"].to_numpy(dtype=np.int64)
    for menu_id in np.unique(menu_ids):
        rows = np.flatnonzero(menu_ids == menu_id)
        normalised = normalised_utilities(thetas[rows], options_by_menu[menu_id])
        chosen = choices[rows]
        has_choice = chosen >= 0
        picked = np.full(rows.size, np.nan)
        picked[has_choice] = normalised[np.flatnonzero(has_choice), chosen[has_choice]]
        vr[rows] = picked
        chance[rows] = np.where(has_choice, normalised.mean(axis=1), np.nan)
    ceiling = np.where(np.isnan(chance), np.nan, 1.0)
    return pd.DataFrame({"decision_vr": vr, "chance_vr": chance, "ceiling_vr": ceiling}, index=decisions.index)


def slider_profiles(decisions: pd.DataFrame) -> pd.DataFrame:
    """Complete slider profiles per agent: one row per (agent, profile number).

    Columns: ``agent_id``, ``profile`` (0-based), ``round`` (of the profile's last answer),
    ``item1..item6`` (chosen option indices), ``angle``, ``category``, ``transitive``.
    Only decisions on primary slider menus (``slider1``..``slider6``) with a choice count.
    """
    ids = decisions["menu_id"].astype(str)
    mask = ids.isin([f"slider{i}" for i in range(1, 7)]) & (decisions["choice"] >= 0)
    rows = decisions.loc[mask, ["agent_id", "round", "choice"]].copy()
    columns = ["agent_id", "profile", "round", *[f"item{i}" for i in range(1, 7)], "angle", "category", "transitive"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["item"] = ids[mask].str.slice(6).astype(int).to_numpy()
    rows = rows.sort_values(["agent_id", "item", "round"], kind="stable")
    rows["profile"] = rows.groupby(["agent_id", "item"]).cumcount()
    wide = rows.pivot_table(index=["agent_id", "profile"], columns="item", values="choice", aggfunc="first")
    last_round = rows.groupby(["agent_id", "profile"])["round"].max()
    wide = wide.reindex(columns=range(1, 7)).dropna()
    if wide.empty:
        return pd.DataFrame(columns=columns)
    choices = wide.to_numpy(dtype=np.int64)
    out = wide.reset_index()
    out.columns = ["agent_id", "profile", *[f"item{i}" for i in range(1, 7)]]
    out["round"] = last_round.loc[wide.index].to_numpy()
    out["angle"] = svo.slider_angles(choices)
    out["category"] = svo.categories(out["angle"].to_numpy())
    out["transitive"] = [svo.is_transitive(row) for row in choices]
    return out[columns]


def attainable_angles(thetas: np.ndarray) -> np.ndarray:
    """Attainable slider target per assigned angle (cached per distinct angle)."""
    thetas = np.asarray(thetas, dtype=float)
    unique, inverse = np.unique(thetas, return_inverse=True)
    return np.array([svo.attainable_angle(t) for t in unique])[inverse]


def chance_slider_vrs(thetas: np.ndarray) -> np.ndarray:
    """Exact chance slider VR per assigned angle (a uniform chooser on all 9⁶ profiles)."""
    thetas = np.asarray(thetas, dtype=float)
    unique, inverse = np.unique(thetas, return_inverse=True)
    return np.array([svo.chance_slider_vr(t) for t in unique])[inverse]
