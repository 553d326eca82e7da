"""The revealed angle: which SVO angle best explains an agent's choices, with a confidence interval.

Decisions on any menus (slider items, ring items, dictator splits) are treated as draws from a
logit choice model on the SVO ring::

    P(choose c | menu) = exp(β · U_θ(c)) / Σ_j exp(β · U_θ(j)),   U_θ(s, o) = cos θ · s + sin θ · o

and the maximum-likelihood (θ̂, β̂) is the agent's **revealed angle** and inverse temperature
(β in 1/coin; β = 0 is a random chooser, large β a value-rational one). This is the general
trajectory → value map of DESIGN.md §1.4: it works for games other than the slider, and for a
value-rational oracle it recovers an angle consistent with every choice.

Estimation. θ ranges over the legal values [−90°, 90°] (DESIGN.md §1.1, not the whole circle),
with β ≥ 0; choices best explained beyond them (a "martyr" who prefers the other to get more even
at a loss) are reported at the nearest end. For each θ on a 2° grid the log-likelihood is
maximised over β (it is concave in β, so bisection on its derivative is exact), giving the
**profile likelihood** ℓ_p(θ); the grid maximum is refined on a 0.1° grid and then between grid
points by a bounded scalar search. The 95% confidence set is the connected set of angles around
θ̂ with ``2 (ℓ_p(θ̂) − ℓ_p(θ)) ≤ 3.841`` (χ²₁). Each end is found from θ̂ outward — coarse grid,
then fine grid, then root finding between the last fine angle inside and the first outside — so
the interval of a sharp chooser with many decisions, narrower than either grid, keeps its true
(non-zero) width.

Identification (``RevealedAngle.identification``), so that no figure claims more than the data do:

* ``"point"`` — the profile likelihood has a single peak inside (−90°, 90°): θ̂ and its interval.
* ``"set"`` — the choices are *perfectly* consistent with a whole range of angles (the profile has
  a flat top: an oracle on menus that cannot separate nearby values, e.g. a competitive oracle on
  the slider, or an individualist on dictator menus, where every θ < 45° keeps everything), or the
  maximum sits at an end of the legal range. Only the 95% set ``[ci_low, ci_high]`` is meaningful:
  ``theta`` is then a convention (the middle of the flat top, or the end), which tables and figures
  do not show as a point.
* ``"none"`` — the 95% set covers all of [−90°, 90°] (too few or uninformative decisions, e.g. a
  flat likelihood): ``theta``, ``ci_low`` and ``ci_high`` are NaN, shown as "n/i", and every
  consumer (summaries, figures, the ``influence`` dynamics) skips the agent.

β is capped at ``BETA_SCALE / median menu span`` (span = the largest distance between two options
of a menu): perfectly consistent choices make the likelihood increase forever in β, and the cap
turns that into "as deterministic as the menus can show" without changing which θ fit.

    >>> import numpy as np
    >>> menu = np.array([[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]])
    >>> fit = fit_revealed_angle([menu] * 20, np.full(20, 2))   # always gives everything away
    >>> fit.identification, fit.ci_high                           # only bounded below
    ('set', 90.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

CHI2_95 = 3.841458820694124
ANGLE_MIN, ANGLE_MAX = -90.0, 90.0
BETA_SCALE = 500.0
COARSE_STEP = 2.0
FINE_STEP = 0.1
ANGLE_TOLERANCE = 1e-4  # degrees: precision of the refined maximum and of the interval ends
FLAT_TOLERANCE = 1e-9  # log-likelihood: profile values this close to the maximum form a flat top
NAN = float("nan")
_BISECTION_STEPS = 30

Identification = Literal["point", "set", "none"]


@dataclass(frozen=True)
class RevealedAngle:
    """Maximum-likelihood revealed angle of a set of decisions."""

    theta: float  # degrees, in [-90, 90]; NaN when not identified (see ``identification``)
    beta: float  # 1/coin
    ci_low: float  # 95% profile-likelihood set (degrees; NaN when not identified)
    ci_high: float
    n: int  # decisions used
    log_likelihood: float
    identification: Identification = "point"


def _pad(options: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack menus of different sizes: self (n, K), other (n, K) and a validity mask."""
    width = max(len(o) for o in options)
    selfs = np.zeros((len(options), width))
    others = np.zeros((len(options), width))
    mask = np.zeros((len(options), width), dtype=bool)
    for i, menu in enumerate(options):
        k = len(menu)
        selfs[i, :k] = menu[:, 0]
        others[i, :k] = menu[:, 1]
        mask[i, :k] = True
    return selfs, others, mask


def _menu_span(options: list[np.ndarray], counts: np.ndarray) -> float:
    """Median over decisions of the menu span (``options`` are distinct menus, ``counts`` their uses)."""
    spans = []
    for menu in options:
        diffs = menu[:, None, :] - menu[None, :, :]
        spans.append(float(np.sqrt((diffs**2).sum(-1)).max()))
    span = float(np.median(np.repeat(spans, counts.astype(np.int64)))) if spans else 1.0
    return span if span > 0 else 1.0


class _Profile:
    """Profile log-likelihood over θ for one set of decisions."""

    def __init__(self, options: list[np.ndarray], choices: np.ndarray) -> None:
        # Identical (menu, choice) decisions are exchangeable: fit each once, weighted by its count.
        unique: dict[tuple[bytes, tuple[int, ...], int], int] = {}
        menus: list[np.ndarray] = []
        picked: list[int] = []
        weights: list[float] = []
        for menu, choice in zip(options, np.asarray(choices, dtype=np.int64).tolist()):
            key = (menu.tobytes(), menu.shape, choice)
            if key in unique:
                weights[unique[key]] += 1
            else:
                unique[key] = len(menus)
                menus.append(menu)
                picked.append(choice)
                weights.append(1.0)
        self.selfs, self.others, self.mask = _pad(menus)
        self.rows = np.arange(len(menus))
        self.choices = np.array(picked, dtype=np.int64)
        self.weights = np.array(weights)
        self.beta_max = BETA_SCALE / _menu_span(menus, self.weights)
        self.padding = np.where(self.mask, 0.0, -np.inf)[None]  # adds -inf to missing options

    def _utilities(self, thetas_deg: np.ndarray) -> np.ndarray:
        t = np.radians(thetas_deg)[:, None, None]
        return np.cos(t) * self.selfs[None] + np.sin(t) * self.others[None]  # (G, n, K), 0 if padded

    def evaluate(self, thetas_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(profile log-likelihood, β̂) at each θ."""
        finite = self._utilities(thetas_deg)
        # centre each menu's utilities: the softmax is unchanged and exp() never overflows
        finite = finite - np.where(self.mask[None], finite, -np.inf).max(axis=2, keepdims=True)
        finite = np.where(self.mask[None], finite, 0.0)
        chosen_centred = finite[:, self.rows, self.choices]

        def gradient(beta: np.ndarray) -> np.ndarray:
            weights = np.exp(beta[:, None, None] * finite + self.padding)
            expected = (weights * finite).sum(axis=2) / weights.sum(axis=2)
            return ((chosen_centred - expected) * self.weights).sum(axis=1)

        low = np.zeros(len(thetas_deg))
        high = np.full(len(thetas_deg), self.beta_max)
        at_zero = gradient(low) <= 0
        at_cap = gradient(high) >= 0
        for _ in range(_BISECTION_STEPS):
            mid = (low + high) / 2
            rising = gradient(mid) > 0
            low = np.where(rising, mid, low)
            high = np.where(rising, high, mid)
        beta = (low + high) / 2
        beta = np.where(at_zero, 0.0, np.where(at_cap, self.beta_max, beta))
        # centred utilities are <= 0 with a 0 per menu, so log Σ exp(β u) is safe as written
        log_norm = np.log(np.exp(beta[:, None, None] * finite + self.padding).sum(axis=2))
        return ((beta[:, None] * chosen_centred - log_norm) * self.weights).sum(axis=1), beta


def fit_revealed_angle(options: list[np.ndarray], choices: np.ndarray) -> RevealedAngle:
    """Fit the logit model to decisions: ``options[i]`` is menu i as ``(k, 2)``, ``choices[i]`` its index.

    Raises:
        ValueError: no decisions, or a choice outside its menu.
    """
    choices = np.asarray(choices, dtype=np.int64)
    if len(options) == 0:
        raise ValueError("no decisions to fit")
    if len(options) != len(choices):
        raise ValueError("options and choices differ in length")
    options = [np.asarray(o, dtype=float) for o in options]
    if any(not 0 <= c < len(o) for o, c in zip(options, choices)):
        raise ValueError("a choice lies outside its menu")
    profile = _Profile(options, choices)
    grid = np.arange(ANGLE_MIN, ANGLE_MAX + COARSE_STEP / 2, COARSE_STEP)
    values, betas = profile.evaluate(grid)
    threshold_of = lambda ll: ll - CHI2_95 / 2  # noqa: E731
    best = float(grid[int(np.argmax(values))])
    if (values >= threshold_of(values.max())).all():
        # the 95% set is the whole legal range: the decisions do not identify an angle
        index = int(np.argmax(values))
        return RevealedAngle(NAN, float(betas[index]), NAN, NAN, len(options), float(values[index]), "none")
    fine = np.clip(best + np.arange(-COARSE_STEP, COARSE_STEP + FINE_STEP / 2, FINE_STEP), ANGLE_MIN, ANGLE_MAX)
    fine_values, _ = profile.evaluate(fine)
    theta_hat = float(fine[int(np.argmax(fine_values))])
    # Ties on a flat top (perfectly consistent choices): report the middle of the flat region.
    flat = np.flatnonzero(values >= max(float(fine_values.max()), values.max()) - FLAT_TOLERANCE)
    is_set = len(flat) > 1
    if is_set:
        theta_hat = _middle_of_run(grid, flat, theta_hat)
    else:  # the maximum between fine grid points (sharp choosers have intervals narrower than the grid)
        theta_hat = _refine_maximum(profile, theta_hat)
    ll_at, beta_at = profile.evaluate(np.array([theta_hat]))
    ll_max, beta_hat = max(float(ll_at[0]), float(fine_values.max())), float(beta_at[0])
    is_set = is_set or theta_hat <= ANGLE_MIN + FINE_STEP / 2 or theta_hat >= ANGLE_MAX - FINE_STEP / 2
    threshold = threshold_of(ll_max)
    low = _interval_end(profile, grid, values, theta_hat, threshold, -1)
    high = _interval_end(profile, grid, values, theta_hat, threshold, +1)
    return RevealedAngle(theta_hat, beta_hat, low, high, len(options), ll_max, "set" if is_set else "point")


def _refine_maximum(profile: _Profile, theta: float) -> float:
    """The profile maximum within one fine step of ``theta`` (bounded scalar search)."""
    from scipy.optimize import minimize_scalar

    low, high = max(theta - FINE_STEP, ANGLE_MIN), min(theta + FINE_STEP, ANGLE_MAX)
    result = minimize_scalar(
        lambda t: -float(profile.evaluate(np.array([t]))[0][0]), bounds=(low, high), method="bounded",
        options={"xatol": ANGLE_TOLERANCE},
    )
    at_grid = float(profile.evaluate(np.array([theta]))[0][0])
    return float(result.x) if -result.fun >= at_grid else theta


def _middle_of_run(grid: np.ndarray, indices: np.ndarray, anchor: float) -> float:
    """Middle of the contiguous run of grid points (given by ``indices``) nearest ``anchor``."""
    centre = int(np.argmin(np.abs(grid[indices] - anchor)))
    lo = hi = centre
    while lo > 0 and indices[lo] - indices[lo - 1] == 1:
        lo -= 1
    while hi < len(indices) - 1 and indices[hi + 1] - indices[hi] == 1:
        hi += 1
    return float((grid[indices[lo]] + grid[indices[hi]]) / 2)


def _interval_end(
    profile: _Profile, grid: np.ndarray, values: np.ndarray, theta_hat: float, threshold: float, direction: int
) -> float:
    """One end of the connected 95% profile-likelihood set around ``theta_hat``.

    Walks the coarse grid outward from θ̂ to the first grid angle outside the set, scans the last
    coarse step (from θ̂ itself when that angle is θ̂'s neighbour) on the fine grid for the first
    angle outside, and locates the crossing between it and the fine angle before it by root
    finding. Every step starts from θ̂, so an interval narrower than the grids is still found
    (the ends are never collapsed onto θ̂). A set that reaches an end of the legal range stops there.
    """
    from scipy.optimize import brentq

    limit = ANGLE_MAX if direction > 0 else ANGLE_MIN
    beyond = grid > theta_hat if direction > 0 else grid < theta_hat
    order = np.flatnonzero(beyond)[:: direction]
    outside = np.flatnonzero(values[order] < threshold)
    if outside.size == 0:
        start, stop = (float(grid[order[-1]]) if order.size else theta_hat), limit
        if start == limit:
            return limit
    else:
        k = int(outside[0])
        start = float(grid[order[k - 1]]) if k > 0 else theta_hat
        stop = float(grid[order[k]])
    steps = np.arange(FINE_STEP, abs(stop - start) + FINE_STEP / 2, FINE_STEP)
    points = np.clip(start + direction * steps, ANGLE_MIN, ANGLE_MAX)
    if points.size == 0 or points[-1] != stop:
        points = np.append(points, stop)
    fine_values, _ = profile.evaluate(points)
    out = np.flatnonzero(fine_values < threshold)
    if out.size == 0:  # inside all the way (only possible up to the end of the legal range)
        return float(points[-1])
    j = int(out[0])
    inside_at = float(points[j - 1]) if j > 0 else start
    outside_at = float(points[j])

    def excess(theta: float) -> float:
        return float(profile.evaluate(np.array([theta]))[0][0]) - threshold

    if excess(inside_at) < 0:  # (only for a start that is itself on the edge of the set)
        return inside_at
    return float(brentq(excess, inside_at, outside_at, xtol=ANGLE_TOLERANCE))


def revealed_angles(decisions: pd.DataFrame, menus: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One revealed-angle fit per group of ``by`` columns of a run's decisions.

    Columns: ``*by``, ``theta``, ``beta``, ``ci_low``, ``ci_high``, ``n``, ``identification``
    (``point``/``set``/``none``, see the module docstring) and ``target_angle`` (the mean value in
    force when the decisions were made). Only behaviour is fitted: decisions without a choice and
    invalid replies (whose choice came from a fallback) are skipped.
    """
    from hvae.analysis.rationality import behavioural, menu_options

    options_by_menu = menu_options(menus)
    usable = decisions[behavioural(decisions)]
    rows = []
    for key, part in usable.groupby(by, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        menu_ids = part["menu_id"].astype(str).to_numpy()
        fit = fit_revealed_angle([options_by_menu[m] for m in menu_ids], part["choice"].to_numpy())
        rows.append(
            {
                **dict(zip(by, key)),
                "theta": fit.theta,
                "beta": fit.beta,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "n": fit.n,
                "identification": fit.identification,
                "target_angle": float(part["value_angle"].mean()),
            }
        )
    columns = [*by, "theta", "beta", "ci_low", "ci_high", "n", "identification", "target_angle"]
    return pd.DataFrame(rows, columns=columns)


def _decimals(low: float, high: float) -> int:
    """1 decimal, or 2 when one decimal would print both ends of a narrow interval the same."""
    return 1 if f"{low:.1f}" != f"{high:.1f}" else 2


def format_revealed(theta: float, low: float, high: float, identification: str | None = None) -> str:
    """The revealed angle as text, the same in the terminal, the HTML report and anywhere else.

    ``45.0 (44.8, 45.2)`` — point-identified, with its 95% interval; ``bounded [-90.0, -30.0]`` —
    only a set is identified (no point is shown); ``n/i`` — not identified.
    """
    if identification is None:  # tables written before identification was recorded
        identification = "none" if pd.isna(low) else "point"
    if identification == "none" or pd.isna(low) or pd.isna(high):
        return "n/i"
    d = _decimals(low, high)
    if identification == "set" or pd.isna(theta):
        return f"bounded [{low:.{d}f}, {high:.{d}f}]"
    return f"{theta:.{d}f} ({low:.{d}f}, {high:.{d}f})"
