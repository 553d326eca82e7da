"""Social Value Orientation (SVO) mathematics: the ring utility and the SVO Slider Measure.

An orientation is an angle θ on the SVO ring (degrees throughout this package). A decision maker
with angle θ values an allocation (self s, other o) as ``U_θ(s, o) = cos θ · s + sin θ · o``.

The SVO Slider Measure (Murphy, Ackermann & Handgraaf 2011) turns six answers to the primary items
into an angle and a category; nine secondary items split prosocials into inequality-averse and
joint-gain maximisers (that, and the transitivity check of the primary answers, is in
:mod:`hvae.agents.slider_checks`). Everything here is pure functions over numbers, so it is easy to test
against the published reference profiles::

    >>> from hvae.agents import svo
    >>> round(svo.slider_angle(svo.parse_choices("AIAAII")), 2)
    61.39
    >>> svo.category(61.39)
    'altruistic'

Boundary rule for categories: a value exactly on a boundary belongs to the *upper* (more
other-regarding) category, as in the official scoring script (the HVAE code uses the lower one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Category = Literal["altruistic", "prosocial", "individualistic", "competitive"]

#: Canonical ring angles of the four SVO categories, in degrees.
CATEGORY_ANGLES: dict[str, float] = {
    "altruistic": 90.0,
    "prosocial": 45.0,
    "individualistic": 0.0,
    "competitive": -45.0,
}

#: Lower bounds (inclusive) of the slider categories, from most to least other-regarding.
CATEGORY_LOWER_BOUNDS: tuple[tuple[str, float], ...] = (
    ("altruistic", 57.15),
    ("prosocial", 22.45),
    ("individualistic", -12.04),
)

#: Letters used to show slider options.
LETTERS = "ABCDEFGHI"

# Six primary items, nine (self, other) allocations each, options A..I.
PRIMARY_ITEMS: np.ndarray = np.array(
    [
        [(85, 85), (85, 76), (85, 68), (85, 59), (85, 50), (85, 41), (85, 33), (85, 24), (85, 15)],
        [(85, 15), (87, 19), (89, 24), (91, 28), (93, 33), (94, 37), (96, 41), (98, 46), (100, 50)],
        [(50, 100), (54, 98), (59, 96), (63, 94), (68, 93), (72, 91), (76, 89), (81, 87), (85, 85)],
        [(50, 100), (54, 89), (59, 79), (63, 68), (68, 58), (72, 47), (76, 36), (81, 26), (85, 15)],
        [(100, 50), (94, 56), (88, 63), (81, 69), (75, 75), (69, 81), (63, 88), (56, 94), (50, 100)],
        [(100, 50), (98, 54), (96, 59), (94, 63), (93, 68), (91, 72), (89, 76), (87, 81), (85, 85)],
    ],
    dtype=float,
)

# Nine secondary items (items 7..15).
SECONDARY_ITEMS: np.ndarray = np.array(
    [
        [(100, 50), (96, 56), (93, 63), (89, 69), (85, 75), (81, 81), (78, 88), (74, 94), (70, 100)],
        [(90, 100), (91, 99), (93, 98), (94, 96), (95, 95), (96, 94), (98, 93), (99, 91), (100, 90)],
        [(100, 70), (94, 74), (88, 78), (81, 81), (75, 85), (69, 89), (63, 93), (56, 96), (50, 100)],
        [(100, 70), (99, 74), (98, 78), (96, 81), (95, 85), (94, 89), (93, 93), (91, 96), (90, 100)],
        [(70, 100), (74, 96), (78, 93), (81, 89), (85, 85), (89, 81), (93, 78), (96, 74), (100, 70)],
        [(50, 100), (56, 99), (63, 98), (69, 96), (75, 95), (81, 94), (88, 93), (94, 91), (100, 90)],
        [(50, 100), (56, 94), (63, 88), (69, 81), (75, 75), (81, 69), (88, 63), (94, 56), (100, 50)],
        [(100, 90), (96, 91), (93, 93), (89, 94), (85, 95), (81, 96), (78, 98), (74, 99), (70, 100)],
        [(90, 100), (91, 94), (93, 88), (94, 81), (95, 75), (96, 69), (98, 63), (99, 56), (100, 50)],
    ],
    dtype=float,
)

#: The four ideal endpoints of the primary items.
ENDPOINTS: dict[str, tuple[float, float]] = {
    "altruistic": (50.0, 100.0),
    "prosocial": (85.0, 85.0),
    "individualistic": (100.0, 50.0),
    "competitive": (85.0, 15.0),
}

#: Which endpoints each primary item compares (option A side first, option I side second).
PRIMARY_ITEM_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("prosocial", "competitive"),
    ("competitive", "individualistic"),
    ("altruistic", "prosocial"),
    ("altruistic", "competitive"),
    ("individualistic", "altruistic"),
    ("individualistic", "prosocial"),
)

#: Ideal secondary answers (option numbers 1..9; None = no ideal), items 7..15, official script.
SECONDARY_IDEALS: dict[str, tuple[int | None, ...]] = {
    "inequality_averse": (6, 5, 4, 7, 5, 8, 5, 3, 2),
    "joint_gain_max": (9, None, 1, 9, None, 9, None, 1, 1),
    "individualistic": (1, 9, 1, 1, 9, 9, 9, 1, 9),
    "altruistic": (9, 1, 9, 9, 1, 1, 1, 9, 1),
}

#: The slider's attainable angle range (degrees) and its width, used to normalise distances.
SLIDER_MIN_ANGLE = -16.26
SLIDER_MAX_ANGLE = 61.39
SLIDER_RANGE = 77.65


def utility(theta_deg: float | np.ndarray, self_amount, other_amount) -> np.ndarray:
    """Ring utility ``cos θ · s + sin θ · o`` (broadcasts over numpy arrays)."""
    theta = np.radians(theta_deg)
    return np.cos(theta) * np.asarray(self_amount, dtype=float) + np.sin(theta) * np.asarray(
        other_amount, dtype=float
    )


def menu_utilities(theta_deg: float | np.ndarray, menu: np.ndarray) -> np.ndarray:
    """Utilities of every option of ``menu`` (shape ``(k, 2)``) for one or many angles.

    A scalar angle gives shape ``(k,)``; an array of ``n`` angles gives ``(n, k)``.
    """
    menu = np.asarray(menu, dtype=float)
    theta = np.radians(np.asarray(theta_deg, dtype=float))
    if theta.ndim == 0:
        return math.cos(theta) * menu[:, 0] + math.sin(theta) * menu[:, 1]
    return np.outer(np.cos(theta), menu[:, 0]) + np.outer(np.sin(theta), menu[:, 1])


def option_generosity(menu: np.ndarray) -> np.ndarray:
    """Generosity of each option of ``menu`` (``(k, 2)``): where its "other" amount sits in the menu's
    range of "other" amounts, 0 = the least generous option, 1 = the most generous; all NaN on a menu
    whose options all give the other the same (the definition behind ``History.generosity``)."""
    others = np.asarray(menu, dtype=float)[:, 1]
    spread = others.max() - others.min()
    if spread <= 0:
        return np.full(others.shape, np.nan)
    return (others - others.min()) / spread


#: Two utilities closer than this count as equal (amounts are whole coins; this only absorbs
#: floating-point noise of cos/sin).
UTILITY_TOLERANCE = 1e-9


def best_options(theta_deg: float, menu: np.ndarray) -> np.ndarray:
    """Indices of all utility-maximising options of ``menu`` for angle ``theta_deg``."""
    u = menu_utilities(theta_deg, menu)
    return np.flatnonzero(u >= u.max() - UTILITY_TOLERANCE * max(1.0, abs(u.max())))


def parse_choices(choices: str | Sequence[int], n_items: int = 6) -> list[int]:
    """Turn ``"AIAAII"`` (letters A–I) or a sequence of option numbers 0..8 into indices 0..8.

    Raises:
        ValueError: wrong length or a letter/number outside A–I.
    """
    if isinstance(choices, str):
        text = choices.strip().upper()
        if len(text) != n_items:
            raise ValueError(f"expected {n_items} letters A-I, got {len(text)} ({choices!r})")
        bad = [c for c in text if c not in LETTERS]
        if bad:
            raise ValueError(f"letters must be A-I, got {bad[0]!r} in {choices!r}")
        return [LETTERS.index(c) for c in text]
    indices = [int(c) for c in choices]
    if len(indices) != n_items:
        raise ValueError(f"expected {n_items} answers, got {len(indices)}")
    if any(not 0 <= i < 9 for i in indices):
        raise ValueError(f"option indices must be 0..8, got {indices}")
    return indices


def primary_allocations(choices: Sequence[int]) -> np.ndarray:
    """The (self, other) allocations chosen on the six primary items, shape ``(6, 2)``."""
    return PRIMARY_ITEMS[np.arange(6), np.asarray(choices, dtype=int)]


def angle_from_allocations(allocations: np.ndarray) -> float:
    """Slider angle (degrees) from six (self, other) allocations, or their per-item means.

    ``atan2(mean_other − 50, mean_self − 50)``: the direction of the mean allocation seen from the
    slider's centre (50, 50). On the slider items mean_self > 50, where this equals the published
    ``atan`` form; for general allocations ``atan`` would put the angle in the wrong quadrant.
    """
    allocations = np.asarray(allocations, dtype=float)
    mean_self, mean_other = allocations[..., 0].mean(), allocations[..., 1].mean()
    return math.degrees(math.atan2(mean_other - 50.0, mean_self - 50.0))


def slider_angle(choices: Sequence[int]) -> float:
    """SVO angle (degrees) of six primary answers (option indices 0..8 in item order 1..6)."""
    return angle_from_allocations(primary_allocations(choices))


def slider_angles(choice_matrix: np.ndarray) -> np.ndarray:
    """Vectorised :func:`slider_angle` for an ``(n, 6)`` matrix of option indices."""
    choice_matrix = np.asarray(choice_matrix, dtype=int)
    allocations = PRIMARY_ITEMS[np.arange(6)[None, :], choice_matrix]  # (n, 6, 2)
    means = allocations.mean(axis=1)
    return np.degrees(np.arctan2(means[:, 1] - 50.0, means[:, 0] - 50.0))


def category(angle_deg: float) -> str | None:
    """SVO category of an angle (boundary values go to the upper category, see module doc).

    None for an undefined angle (NaN): it has no category.
    """
    if math.isnan(angle_deg):
        return None
    for name, lower in CATEGORY_LOWER_BOUNDS:
        if angle_deg >= lower:
            return name
    return "competitive"


#: Category names in ring order, the index used by :func:`category_codes_of`.
CATEGORY_ORDER: tuple[str, ...] = ("altruistic", "prosocial", "individualistic", "competitive")


def category_codes_of(angles_deg: np.ndarray) -> np.ndarray:
    """Vectorised category as an index into :data:`CATEGORY_ORDER` (same boundary rule); −1 for NaN."""
    angles = np.asarray(angles_deg, dtype=float)
    codes = np.zeros(angles.shape, dtype=np.int64)
    for _, lower in CATEGORY_LOWER_BOUNDS:  # the index counts the lower bounds an angle is below
        codes += angles < lower
    codes[np.isnan(angles)] = -1
    return codes


def categories(angles_deg: np.ndarray) -> np.ndarray:
    """Vectorised :func:`category` (an object array of names; None for NaN)."""
    codes = category_codes_of(angles_deg)
    names = np.array([*CATEGORY_ORDER, None], dtype=object)
    return names[codes]  # code -1 picks the trailing None


def oracle_allocations(theta_deg: float, items: np.ndarray = PRIMARY_ITEMS) -> np.ndarray:
    """Per item, the mean allocation over the utility-maximising options (ties averaged)."""
    return np.array([item[best_options(theta_deg, item)].mean(axis=0) for item in items])


def attainable_angle(theta_deg: float) -> float:
    """The slider angle a value-rational oracle for ``theta_deg`` produces (ties averaged)."""
    return angle_from_allocations(oracle_allocations(theta_deg))


def attainable_angles(thetas_deg: np.ndarray) -> np.ndarray:
    """Vectorised :func:`attainable_angle` (computed once per distinct angle; NaN stays NaN)."""
    return _per_distinct(attainable_angle, thetas_deg)


def slider_vr(measured_angle: float | np.ndarray, target_theta_deg: float | np.ndarray) -> np.ndarray:
    """Slider-angle value rationality of **one answer profile**: ``1 − |θ̂ − θ_att| / 77.65``.

    This is the only implementation of slider VR in hvae. An agent's (or a repeat's, or a
    group's) slider VR is the mean of this per-profile score over its scored profiles, and is
    always shown beside :func:`chance_slider_vr` and :func:`ceiling_slider_vr`, the expectations
    of the same per-profile score for a uniform random answerer and for the value-rational oracle.
    (Scoring the *mean angle* over profiles instead would let a random answerer, whose angles
    average out near the middle of the slider, "beat" the per-profile chance level.)
    """
    target = attainable_angles(target_theta_deg)
    return 1.0 - np.abs(np.asarray(measured_angle, dtype=float) - target) / SLIDER_RANGE


def _all_profiles_angles() -> np.ndarray:
    grids = np.meshgrid(*[np.arange(9)] * 6, indexing="ij")
    return slider_angles(np.stack([g.ravel() for g in grids], axis=1))


_RANDOM_ANGLES: tuple[np.ndarray, np.ndarray] | None = None


def random_slider_angles() -> np.ndarray:
    """Sorted slider angles of all 9⁶ answer profiles (the exact distribution of a uniform chooser)."""
    return _random_angles_and_prefix()[0]


def _random_angles_and_prefix() -> tuple[np.ndarray, np.ndarray]:
    global _RANDOM_ANGLES
    if _RANDOM_ANGLES is None:
        angles = np.sort(_all_profiles_angles())
        _RANDOM_ANGLES = (angles, np.concatenate([[0.0], np.cumsum(angles)]))
    return _RANDOM_ANGLES


def chance_slider_vr(target_theta_deg: float) -> float:
    """Exact expected per-profile slider VR (:func:`slider_vr`) of a uniform random answerer."""
    target = attainable_angle(target_theta_deg)
    angles, prefix = _random_angles_and_prefix()
    k, n = int(np.searchsorted(angles, target)), angles.size
    mean_abs = (target * k - prefix[k] + (prefix[n] - prefix[k]) - target * (n - k)) / n
    return float(1.0 - mean_abs / SLIDER_RANGE)


def ceiling_slider_vr(target_theta_deg: float) -> float:
    """Exact expected per-profile slider VR (:func:`slider_vr`) of the value-rational oracle.

    The oracle breaks ties uniformly at random, so where several options of an item are best its
    profile angle varies around the attainable target (the angle of the tie-averaged allocations)
    and its expected per-profile score is below 1 (e.g. 0° ties on all nine options of item 1).
    Computed over every combination of tied best options.
    """
    best = [best_options(target_theta_deg, item) for item in PRIMARY_ITEMS]
    grids = np.meshgrid(*best, indexing="ij")
    profiles = np.stack([g.ravel() for g in grids], axis=1)
    return float(np.mean(slider_vr(slider_angles(profiles), np.full(len(profiles), target_theta_deg))))


def chance_slider_vrs(thetas_deg: np.ndarray) -> np.ndarray:
    """Vectorised :func:`chance_slider_vr` (computed once per distinct angle; NaN stays NaN)."""
    return _per_distinct(chance_slider_vr, thetas_deg)


def ceiling_slider_vrs(thetas_deg: np.ndarray) -> np.ndarray:
    """Vectorised :func:`ceiling_slider_vr` (computed once per distinct angle; NaN stays NaN)."""
    return _per_distinct(ceiling_slider_vr, thetas_deg)


def _per_distinct(function, thetas_deg: np.ndarray) -> np.ndarray:
    thetas = np.asarray(thetas_deg, dtype=float)
    unique, inverse = np.unique(thetas, return_inverse=True)
    return np.array([function(t) if np.isfinite(t) else np.nan for t in unique])[inverse].reshape(thetas.shape)
