"""Value rationality: how well behaviour follows the value an agent was given.

Every figure here is scored against the value an agent held **when it made the decision** (the
``value_angle`` of each decision row; under value dynamics an agent's value changes during a run),
uses only **behaviour** — decisions whose reply was valid and had a choice; fallback choices for
unusable LLM replies are never measured (:func:`behavioural`) — and comes with chance and ceiling
computed by the same estimator:

* **Decision VR** — on a menu with utilities ``U_θ*(option)`` for the angle θ* in force, a choice
  ``c`` scores ``(U(c) − min U) / (max U − min U)``; menus where all options are equal are
  skipped. An agent's decision VR is the mean over its scored decisions. The value-rational oracle
  scores 1.0 (the **ceiling**); a uniform random chooser scores the mean of the normalised
  utilities of the options on the same menus (the **chance** level), computed exactly per decision.
* **Position reference** — the decision VR that a **value-blind** chooser with a fixed position
  preference (it always takes the option shown first) would get on the same decisions with the
  same recorded display orders (``position_vr``), by the same estimator; only for decisions whose
  display order was recorded (LLM deciders). It is what a model like the embedded SmolLM2, which
  answers "A" whatever it is told, scores: a VR at this level is explained by position alone.
  Its slider counterpart (``position_slider_vr``, :func:`position_slider_scores`) scores the
  profiles that chooser would give on the same displays.
* **Slider-angle VR** — per answer profile, the profile's slider angle θ̂ against the
  **attainable** target θ_att (what the oracle for θ* scores on the slider, ties averaged):
  ``1 − |θ̂ − θ_att| / 77.65`` (:func:`hvae.agents.svo.slider_vr`, the one implementation). An
  agent's slider VR is the mean over its scored profiles; chance and ceiling are the exact
  expectations of the same per-profile score for a uniform random answerer (over all 9⁶ profiles)
  and for the oracle (over its tie-breaks; below 1 where items tie, e.g. 0.944 at 0°). Profiles come
  from slider rounds: an agent's k-th profile uses its k-th answer to each of the six primary items
  (so idle rounds only delay a profile, they never mix answers); a profile with an invalid answer,
  or whose answers span a value change, is not scored.

:func:`decision_scores` and :func:`slider_scores` return figure, chance and ceiling per decision and
per profile, so that any grouping can average all three over the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hvae.agents import slider_checks, svo


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


def behavioural(decisions: pd.DataFrame) -> np.ndarray:
    """Mask of the decisions that are behaviour: a usable reply (``valid``) with a choice.

    Rows with ``valid = False`` got their choice from a fallback (``random``) or have none
    (``skip``): they say nothing about the agent, so no behavioural figure (decision VR, slider
    profiles, the revealed angle, reciprocity) uses them; summaries report how many there were.
    """
    choice = decisions["choice"].to_numpy()
    valid = decisions["valid"].to_numpy(dtype=bool) if "valid" in decisions else np.ones(len(decisions), dtype=bool)
    return valid & (choice >= 0)


def decision_scores(decisions: pd.DataFrame, menus: pd.DataFrame) -> pd.DataFrame:
    """Per decision: ``decision_vr`` (NaN where undefined), ``chance_vr``, ``ceiling_vr`` and ``position_vr``.

    Each decision is scored against ``value_angle``, the value the agent held **when it made
    the decision** (under value dynamics an agent's value changes during a run). Decisions that
    are not behaviour (see :func:`behavioural`) get NaN in all three columns. Returned frame
    shares the index of ``decisions``.
    """
    options_by_menu = menu_options(menus)
    vr = np.full(len(decisions), np.nan)
    chance = np.full(len(decisions), np.nan)
    codes, names = menu_codes(decisions)
    thetas = decisions["value_angle"].to_numpy(dtype=float)
    choices = decisions["choice"].to_numpy(dtype=np.int64)
    first = first_shown(decisions)
    position = np.full(len(decisions), np.nan)
    scored = behavioural(decisions)
    for code in np.unique(codes[scored]):
        rows = np.flatnonzero((codes == code) & scored)
        normalised = normalised_utilities(thetas[rows], options_by_menu[names[code]])
        vr[rows] = normalised[np.arange(rows.size), choices[rows]]
        chance[rows] = normalised.mean(axis=1)
        shown = np.flatnonzero(first[rows] >= 0)
        position[rows[shown]] = normalised[shown, first[rows[shown]]]
    ceiling = np.where(np.isnan(chance), np.nan, 1.0)
    return pd.DataFrame(
        {"decision_vr": vr, "chance_vr": chance, "ceiling_vr": ceiling, "position_vr": position}, index=decisions.index
    )


def menu_codes(decisions: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per decision, the index of its ``menu_id`` in the returned list of distinct ids (as ``str``).

    The same as ``decisions["menu_id"].astype(str)`` but computed once per distinct id: a run has a
    handful of menus over up to millions of decision rows.
    """
    codes, distinct = pd.factorize(decisions["menu_id"], use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), [str(menu_id) for menu_id in distinct]


def first_shown(decisions: pd.DataFrame) -> np.ndarray:
    """Per decision, the menu option shown first (from ``shown_order``); −1 where none was recorded."""
    if "shown_order" not in decisions:
        return np.full(len(decisions), -1, dtype=np.int64)
    # A run has a handful of distinct orders over up to millions of rows: parse each distinct one once.
    codes, orders = pd.factorize(decisions["shown_order"], use_na_sentinel=True)
    parsed = np.array([_first_of(order) for order in orders] + [-1], dtype=np.int64)
    return parsed[codes]  # code −1 (missing) picks the trailing −1


def _first_of(order: object) -> int:
    """The first index of one ``shown_order`` string (``"2,0,1"`` → 2); −1 for anything else."""
    return int(order.split(",", 1)[0]) if isinstance(order, str) and order else -1


PRIMARY_MENUS = tuple(f"slider{i}" for i in range(1, 7))


def slider_profiles(decisions: pd.DataFrame) -> pd.DataFrame:
    """Slider profiles per agent: one row per (agent, profile number), scored or not.

    An agent's k-th profile uses its k-th answer to each of the six primary items (``slider1`` ..
    ``slider6``), counting every decision row on that item, so idle rounds only delay a profile and
    answers are never mixed across profiles. A profile is **scored** (``scored`` True, ``angle``
    defined) only when all six answers are behaviour (valid replies with a choice, see
    :func:`behavioural`) and were made under one value; ``value_angle`` is that value (NaN when the
    answers span a value change). Profiles missing an answer (the run ended) are left out.

    Columns: ``agent_id``, ``profile`` (0-based), ``round`` (of the profile's last answer),
    ``item1..item6`` (chosen option indices, −1 = none), ``value_angle``, ``scored``, ``angle``,
    ``category``, ``transitive`` (the last three NaN/None unless scored).
    """
    codes, names = menu_codes(decisions)
    mask = np.isin(codes, [i for i, name in enumerate(names) if name in PRIMARY_MENUS])
    rows = decisions.loc[mask, ["agent_id", "round", "choice", "value_angle"]].copy()
    columns = ["agent_id", "profile", "round", *[f"item{i}" for i in range(1, 7)], "value_angle", "scored", "angle",
               "category", "transitive"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["ok"] = behavioural(decisions.loc[mask])
    rows["item"] = np.array([int(name[6:]) if name in PRIMARY_MENUS else 0 for name in names], dtype=np.int64)[codes[mask]]
    rows = rows.sort_values(["agent_id", "item", "round"], kind="stable")
    rows["profile"] = rows.groupby(["agent_id", "item"]).cumcount()
    keys = ["agent_id", "profile"]
    wide = rows.pivot_table(index=keys, columns="item", values="choice", aggfunc="first")
    wide = wide.reindex(columns=range(1, 7)).dropna()
    if wide.empty:
        return pd.DataFrame(columns=columns)
    per_profile = rows.groupby(keys).agg(
        round=("round", "max"), ok=("ok", "all"), low=("value_angle", "min"), high=("value_angle", "max")
    ).loc[wide.index]
    choices = wide.to_numpy(dtype=np.int64)
    out = wide.reset_index()
    out.columns = ["agent_id", "profile", *[f"item{i}" for i in range(1, 7)]]
    out["round"] = per_profile["round"].to_numpy()
    one_value = (per_profile["low"] == per_profile["high"]).to_numpy()
    out["value_angle"] = np.where(one_value, per_profile["low"].to_numpy(dtype=float), np.nan)
    out["scored"] = per_profile["ok"].to_numpy(dtype=bool) & one_value
    scored = out["scored"].to_numpy()
    angles = np.full(len(out), np.nan)
    angles[scored] = svo.slider_angles(choices[scored])
    out["angle"] = angles
    out["category"] = svo.categories(angles)  # None where not scored (NaN angle)
    out["transitive"] = _transitive(choices, scored)
    return out[columns]


def _transitive(choices: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """:func:`~hvae.agents.slider_checks.is_transitive` of each scored row of ``choices`` (None elsewhere).

    Computed once per distinct answer profile (there are at most 9⁶, and far fewer in practice).
    """
    out = np.full(len(choices), None, dtype=object)
    if scored.any():
        answers = choices[scored]
        # one integer per answer profile (base max+1 over the six items: exact), then one check per distinct key
        base = int(answers.max()) + 1
        keys = answers @ (base ** np.arange(answers.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        per_distinct = np.array([slider_checks.is_transitive(answers[i]) for i in first], dtype=object)
        out[scored] = per_distinct[inverse.reshape(-1)]
    return out


def slider_scores(profiles: pd.DataFrame) -> pd.DataFrame:
    """Per profile of :func:`slider_profiles`: ``attainable_angle``, ``slider_vr``,
    ``chance_slider_vr`` and ``ceiling_slider_vr`` — the per-profile score of
    :func:`hvae.agents.svo.slider_vr` against the value in force and its exact expectations for a
    uniform random answerer and for the oracle. NaN for profiles that are not scored. Averaging the
    three columns over the same profiles keeps every figure beside chance and ceiling of the same
    estimator.
    """
    if profiles.empty:
        return pd.DataFrame(columns=["attainable_angle", "slider_vr", "chance_slider_vr", "ceiling_slider_vr"],
                            index=profiles.index, dtype=float)
    target = np.where(profiles["scored"].to_numpy(dtype=bool), profiles["value_angle"].to_numpy(dtype=float), np.nan)
    return pd.DataFrame(
        {
            "attainable_angle": svo.attainable_angles(target),
            "slider_vr": svo.slider_vr(profiles["angle"].to_numpy(dtype=float), target),
            "chance_slider_vr": svo.chance_slider_vrs(target),
            "ceiling_slider_vr": svo.ceiling_slider_vrs(target),
        },
        index=profiles.index,
    )


def position_slider_scores(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per slider profile: the slider VR of the value-blind first-option chooser on the same displays.

    The decisions are replayed with each choice replaced by the option shown first (rows without a
    recorded display get no choice), and the profiles are built and scored exactly as the real ones
    (:func:`slider_profiles`, :func:`slider_scores`). Columns: ``agent_id``, ``profile``,
    ``position_slider_vr`` (NaN where the profile is not scored).
    """
    first = first_shown(decisions)
    blind = decisions.assign(choice=np.where(first >= 0, first, -1))
    profiles = slider_profiles(blind)
    scores = slider_scores(profiles)
    return pd.DataFrame({
        "agent_id": profiles["agent_id"].to_numpy(), "profile": profiles["profile"].to_numpy(),
        "position_slider_vr": scores["slider_vr"].to_numpy(dtype=float),
    })
