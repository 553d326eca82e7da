"""The revealed angle: which SVO angle best explains an agent's choices, with a confidence interval.

Decisions on any menus (slider items, ring items, dictator splits) are treated as draws from a
logit choice model on the SVO ring::

    P(choose c | menu) = exp(β · U_θ(c)) / Σ_j exp(β · U_θ(j)),   U_θ(s, o) = cos θ · s + sin θ · o

and the maximum-likelihood (θ̂, β̂) is the agent's **revealed angle** and inverse temperature
(β in 1/coin; β = 0 is a random chooser, large β a value-rational one). This is the general
trajectory → value map of DESIGN.md §1.4: it works for games other than the slider, and for a
value-rational oracle it recovers an angle consistent with every choice.

Estimation. θ ranges over the legal values [−90°, 90°] (DESIGN.md §1.1), with β ≥ 0; choices
best explained beyond them (a "martyr" who prefers the other to get more even at a loss) are
reported at the nearest end. For each θ on a 2° grid the log-likelihood is maximised over β (it is
concave in β, so bisection on its derivative is exact), giving the **profile likelihood** ℓ_p(θ);
the grid maximum is refined on a 0.1° grid, and where perfectly consistent choices leave a flat
top, θ̂ is the middle of it. The 95% interval is the connected set of angles around θ̂ with
``2 (ℓ_p(θ̂) − ℓ_p(θ)) ≤ 3.841`` (χ²₁), each end located on the 0.1° grid. When that set covers the
whole range (too few or uninformative decisions) the interval is NaN: the angle is not identified.

β is capped at ``BETA_SCALE / median menu span`` (span = the largest distance between two options
of a menu): perfectly consistent choices make the likelihood increase forever in β, and the cap
turns that into "as deterministic as the menus can show" without changing which θ fit.

    >>> import numpy as np
    >>> menu = np.array([[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]])
    >>> fit = fit_revealed_angle([menu] * 20, np.full(20, 2))   # always gives everything away
    >>> bool(fit.theta > 45), fit.ci_high
    (True, 90.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CHI2_95 = 3.841458820694124
ANGLE_MIN, ANGLE_MAX = -90.0, 90.0
BETA_SCALE = 500.0
COARSE_STEP = 2.0
FINE_STEP = 0.1
_BISECTION_STEPS = 30


@dataclass(frozen=True)
class RevealedAngle:
    """Maximum-likelihood revealed angle of a set of decisions."""

    theta: float  # degrees, in [-90, 90]
    beta: float  # 1/coin
    ci_low: float  # 95% profile-likelihood interval (degrees; NaN when not identified)
    ci_high: float
    n: int  # decisions used
    log_likelihood: float


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


def _menu_span(options: list[np.ndarray]) -> float:
    spans = []
    for menu in options:
        diffs = menu[:, None, :] - menu[None, :, :]
        spans.append(float(np.sqrt((diffs**2).sum(-1)).max()))
    span = float(np.median(spans)) if spans else 1.0
    return span if span > 0 else 1.0


class _Profile:
    """Profile log-likelihood over θ for one set of decisions."""

    def __init__(self, options: list[np.ndarray], choices: np.ndarray) -> None:
        self.beta_max = BETA_SCALE / _menu_span(options)
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
    values, _ = profile.evaluate(grid)
    best = float(grid[int(np.argmax(values))])
    fine = np.clip(best + np.arange(-COARSE_STEP, COARSE_STEP + FINE_STEP / 2, FINE_STEP), ANGLE_MIN, ANGLE_MAX)
    fine_values, fine_betas = profile.evaluate(fine)
    index = int(np.argmax(fine_values))
    theta_hat, ll_max, beta_hat = float(fine[index]), float(fine_values[index]), float(fine_betas[index])
    # Ties on a flat top (perfectly consistent choices): report the middle of the flat region.
    flat = np.flatnonzero(values >= max(ll_max, values.max()) - 1e-9)
    if len(flat) > 1:
        theta_hat = _middle_of_run(grid, flat, theta_hat)
        ll_at, beta_at = profile.evaluate(np.array([theta_hat]))
        ll_max, beta_hat = max(ll_max, float(ll_at[0])), float(beta_at[0])
    low, high = _interval(grid, values, theta_hat, ll_max, profile)
    return RevealedAngle(theta_hat, beta_hat, low, high, len(options), ll_max)


def _middle_of_run(grid: np.ndarray, indices: np.ndarray, anchor: float) -> float:
    """Middle of the contiguous run of grid points (given by ``indices``) nearest ``anchor``."""
    centre = int(np.argmin(np.abs(grid[indices] - anchor)))
    lo = hi = centre
    while lo > 0 and indices[lo] - indices[lo - 1] == 1:
        lo -= 1
    while hi < len(indices) - 1 and indices[hi + 1] - indices[hi] == 1:
        hi += 1
    return float((grid[indices[lo]] + grid[indices[hi]]) / 2)


def _interval(
    grid: np.ndarray, values: np.ndarray, theta_hat: float, ll_max: float, profile: _Profile
) -> tuple[float, float]:
    """The connected 95% profile-likelihood interval around ``theta_hat`` (NaN if it is everything).

    The coarse grid finds the two grid steps where the profile crosses the threshold; each
    crossing is then located on a fine grid inside its step (the profile can fall off a cliff
    when choices are perfectly consistent, where interpolating the coarse grid would be off).
    An interval that reaches an end of the legal range stops there.
    """
    threshold = ll_max - CHI2_95 / 2
    inside = values >= threshold
    if inside.all():
        return float("nan"), float("nan")
    start = int(np.argmin(np.abs(grid - theta_hat)))
    if not inside[start]:
        return float(theta_hat), float(theta_hat)

    def walk(direction: int) -> float:
        i = start
        while 0 <= i + direction < len(grid):
            if not inside[i + direction]:
                return crossing(float(grid[i]), direction)
            i += direction
        return float(grid[i])  # reached the end of the legal range

    def crossing(last_inside: float, direction: int) -> float:
        offsets = np.arange(0.0, COARSE_STEP + FINE_STEP / 2, FINE_STEP)
        fine_values, _ = profile.evaluate(last_inside + direction * offsets)
        outside = np.flatnonzero(fine_values < threshold)
        k = int(outside[0]) if outside.size else len(offsets) - 1
        if k == 0:
            return last_inside
        vi, vj = fine_values[k - 1], fine_values[k]
        fraction = (vi - threshold) / (vi - vj) if vi != vj else 0.5
        return float(last_inside + direction * (offsets[k - 1] + FINE_STEP * min(max(fraction, 0.0), 1.0)))

    return walk(-1), walk(+1)


def revealed_angles(decisions: pd.DataFrame, menus: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One revealed-angle fit per group of ``by`` columns of a run's decisions.

    Columns: ``*by``, ``theta``, ``beta``, ``ci_low``, ``ci_high``, ``n`` and ``target_angle``
    (the mean assigned angle of the decisions). Decisions without a choice are skipped.
    """
    from hvae.analysis.rationality import menu_options

    options_by_menu = menu_options(menus)
    usable = decisions[decisions["choice"] >= 0]
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
                "target_angle": float(part["value_angle"].mean()),
            }
        )
    columns = [*by, "theta", "beta", "ci_low", "ci_high", "n", "target_angle"]
    return pd.DataFrame(rows, columns=columns)
