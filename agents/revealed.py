"""The revealed angle: which SVO angle best explains an agent's choices, and how sure we can be.

Decisions on any menus (slider items, ring items, dictator splits) are treated as draws from a
logit choice model on the SVO ring, with a bonus for the option shown first where the display
order was recorded (LLM deciders)::

    P(choose c | menu, display) ∝ exp(β · U_θ(c) + b · [c shown first]),   U_θ(s, o) = cos θ · s + sin θ · o

(β in 1/coin; β = 0 is a value-blind chooser, large β a value-rational one; ``b`` a logit bonus, 0
without a position preference). :func:`fit_choice_model` is this model's maximum-likelihood fit, a
reusable function (the surrogate chooser of a later issue builds on it).

**The revealed angle** (:func:`fit_revealed_angle`) reports one of three outcomes, the same in the
terminal, the report and every figure:

* **Consistency set** — when some angle makes *every* valid choice a best option (ties included),
  the data could be those of an exact value maximiser, whose angle is always in the closed
  **consistency set** ``{θ ∈ [−90°, 90°] : every choice ∈ argmax U_θ}`` (:func:`consistency_set`,
  computed exactly: each pair (chosen c, other j) keeps the arc where
  ``U_θ(c) − U_θ(j) = |Δ| cos(θ − φ) ≥ 0``, an interval of angles, and the set is their
  intersection; ``pieces``). A likelihood-ratio interval alone would be wrong here: at a tie angle
  a random tie-break gives a choice probability 1/k, while a slightly moved angle makes it the
  unique best with probability → 1, so the test rejects the true angle of an exact chooser. But a
  logit chooser with moderate β also often makes choices that one *wrong* angle explains exactly
  (a near-best option now and then), so the identified set is the hull of the consistency set
  and the 95% profile-likelihood set below: ``"set"`` (``[ci_low, ci_high]``), ``"point"`` when
  that is a single angle, ``"none"`` when it is the whole legal range or the likelihood
  identifies nothing (e.g. always the equal split of a dictator menu: consistent only with 45°,
  but a flat likelihood).
* **Profile-likelihood interval** — only for data that *no* single angle explains: the
  maximum-likelihood θ̂ with the 95% set ``{θ : 2 (ℓ_p(θ̂) − ℓ_p(θ)) ≤ 3.841}`` (χ²₁, connected
  around θ̂), ℓ_p the log-likelihood maximised over β (and ``b`` where the order shown was
  recorded) at each θ. ``"point"`` when the profile peaks inside (−90°, 90°), ``"set"`` when it peaks
  at an end of the legal range (only the bound is meaningful), ``"none"`` when the 95% set covers
  all of [−90°, 90°] (too few or uninformative decisions).

For ``"set"`` fits ``theta`` is a convention (the middle of the set) that tables and figures never
show as a point; for ``"none"`` fits ``theta``, ``ci_low`` and ``ci_high`` are NaN, shown as "n/i",
and every consumer (summaries, figures, the ``influence`` dynamics) skips the agent.

Estimation details. θ ranges over the legal values [−90°, 90°] (DESIGN.md §1.1). At each θ the
likelihood is concave in (β, b) and is maximised by projected Newton steps with a line search, β in
[0, ``BETA_SCALE`` / median menu span] and b in [−``POSITION_MAX``, ``POSITION_MAX``]. The profile is
scanned on a 2° grid, refined on a 0.1° grid and then by a bounded scalar search; each interval end
is found from θ̂ outward (coarse grid, fine grid, root finding), so an interval narrower than
either grid keeps its true width.

The estimator lives in ``agents/`` beside the SVO maths because both the ``influence`` dynamics
(during a run) and the analysis (after it) use it; fitting a run's decision *tables* group by group,
and the text form of a fit, are in :mod:`hvae.analysis.revealed`.

    >>> import numpy as np
    >>> menu = np.array([[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]])
    >>> fit = fit_revealed_angle([menu] * 20, np.full(20, 2))   # always gives everything away
    >>> fit.identification, round(fit.ci_low, 3), fit.ci_high   # every angle from 45° up explains it
    ('set', 45.0, 90.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

CHI2_95 = 3.841458820694124
ANGLE_MIN, ANGLE_MAX = -90.0, 90.0
BETA_SCALE = 500.0
POSITION_MAX = 20.0  #: bound of the first-position bonus b (logit units; e^20 is "always the first")
COARSE_STEP = 2.0
FINE_STEP = 0.1
ANGLE_TOLERANCE = 1e-4  # degrees: precision of the refined maximum and of the interval ends
FLAT_TOLERANCE = 1e-9  # log-likelihood: profile values this close to the maximum form a flat top
POINT_WIDTH = 1e-3  # degrees: a consistency set narrower than this is a single angle
#: Utilities this close (relative to the largest amount) count as equal, as for the oracle's
#: tie-breaks (:data:`hvae.agents.svo.UTILITY_TOLERANCE`, with margin for cos/sin rounding).
TIE_TOLERANCE = 1e-8
NAN = float("nan")
_ROUNDING = 1e-9  # degrees: the arithmetic error allowed when an arc's own end is checked against it
_NEWTON_STEPS = 60

Identification = Literal["point", "set", "none"]


@dataclass(frozen=True)
class RevealedAngle:
    """The revealed angle of a set of decisions (see the module docstring for the three outcomes)."""

    theta: float  # degrees, in [-90, 90]; NaN when not identified (see ``identification``)
    beta: float  # 1/coin (at ``theta``; the cap for consistent data: "as sharp as the menus can show")
    ci_low: float  # identified set or 95% interval (degrees; NaN when not identified)
    ci_high: float
    n: int  # decisions used
    log_likelihood: float
    identification: Identification = "point"
    position: float = 0.0  # b at ``theta``: the first-position bonus (0 where no order was recorded)
    consistent: bool = False  # True: [ci_low, ci_high] is the exact consistency set, not a 95% interval
    pieces: tuple[tuple[float, float], ...] = ()  # the consistency set's intervals (when ``consistent``)


@dataclass(frozen=True)
class ChoiceModelFit:
    """Maximum-likelihood fit of P(c) ∝ exp(β·U_θ(c) + b·[c shown first]) (:func:`fit_choice_model`)."""

    theta: float  # degrees
    beta: float  # 1/coin
    position: float  # b (logit bonus of the option shown first; 0 when no order was recorded)
    log_likelihood: float
    n: int

    def probabilities(self, menu: np.ndarray, first: int = -1, position: float | None = None) -> np.ndarray:
        """P(option) on ``menu`` (k × 2, canonical order) when option ``first`` is shown first (−1: unknown).

        ``position`` overrides the fitted ``b`` (``position=0`` is the position-free chooser).
        """
        menu = np.asarray(menu, dtype=float)
        rad = math.radians(self.theta)
        logits = self.beta * (math.cos(rad) * menu[:, 0] + math.sin(rad) * menu[:, 1])
        if first >= 0:
            logits[first] += self.position if position is None else position
        logits = logits - logits.max()
        weights = np.exp(logits)
        return weights / weights.sum()


def _as_first(first: np.ndarray | None, n: int) -> np.ndarray:
    if first is None:
        return np.full(n, -1, dtype=np.int64)
    first = np.asarray(first, dtype=np.int64)
    if len(first) != n:
        raise ValueError("first (the option shown first) and choices differ in length")
    return first


@dataclass(frozen=True)
class _Decisions:
    """Validated decisions: the distinct menus (by content) and, per decision, its menu, choice and first option.

    A run's decisions use a handful of menus many times over, so every per-menu computation is done
    once per distinct menu (or distinct (menu, choice, display)) rather than once per decision.
    """

    menus: list[np.ndarray]  # distinct (k, 2) menus, in order of first use
    menu: np.ndarray  # per decision: its index into ``menus``
    choices: np.ndarray
    first: np.ndarray  # per decision: the option shown first (−1: not recorded)

    def without_first(self) -> _Decisions:
        return replace(self, first=np.full(len(self.choices), -1, dtype=np.int64))


def _validate(options: list[np.ndarray], choices: np.ndarray | None, first: np.ndarray | None) -> _Decisions:
    choices = np.asarray(choices, dtype=np.int64)
    if len(options) == 0:
        raise ValueError("no decisions to fit")
    if len(options) != len(choices):
        raise ValueError("options and choices differ in length")
    menus, menu = _distinct_menus(options)
    sizes = np.array([len(m) for m in menus], dtype=np.int64)[menu]
    if ((choices < 0) | (choices >= sizes)).any():
        raise ValueError("a choice lies outside its menu")
    first = _as_first(first, len(choices))
    if (first >= sizes).any():
        raise ValueError("an option shown first lies outside its menu")
    return _Decisions(menus, menu, choices, first)


def _distinct_menus(options: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct menus of ``options`` (by content, as ``(k, 2)`` floats, in order of first use) and
    each decision's index into them. Each distinct *object* is converted once: callers pass the same
    menu array for every decision on it."""
    objects = list(options)  # every object stays alive here, so no two of them share an id()
    ids = np.fromiter(map(id, objects), dtype=np.uint64, count=len(objects))
    _, index, inverse = np.unique(ids, return_index=True, return_inverse=True)
    menus: list[np.ndarray] = []
    by_content: dict[tuple[bytes, tuple[int, ...]], int] = {}
    content_of = np.empty(len(index), dtype=np.int64)
    for j in np.argsort(index):  # distinct objects in order of first use
        menu = np.asarray(objects[index[j]], dtype=float).reshape(-1, 2)
        content_of[j] = by_content.setdefault((menu.tobytes(), menu.shape), len(menus))
        if content_of[j] == len(menus):
            menus.append(menu)
    return menus, content_of[inverse.reshape(-1)]


def _distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct combinations of integer ``columns``, in order of first appearance: the row of each
    one's first appearance and, per row, the index of its combination."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        column = np.asarray(column, dtype=np.int64)
        low, high = (int(column.min()), int(column.max())) if column.size else (0, 0)
        key = key * (high - low + 1) + (column - low)  # exact: menus × options × displays stays far below 2⁶³
    _, index, inverse = np.unique(key, return_index=True, return_inverse=True)  # index: first occurrences
    order = np.argsort(index)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return index[order], rank[inverse.reshape(-1)]


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


# --------------------------------------------------------------------------- consistency set


def _arcs(data: _Decisions) -> tuple[np.ndarray, np.ndarray]:
    """Per (chosen c, other j) pair with distinct allocations: direction φ of U(c) − U(j) and half-width.

    ``U_θ(c) − U_θ(j) = |Δ| cos(θ − φ) ≥ −tol`` holds for ``|θ − φ| ≤ 90° + asin(tol / |Δ|)``.
    Each distinct (menu, choice) is taken once, in order of first appearance.
    """
    centres, halves = [], []
    rows, _ = _distinct_rows(data.menu, data.choices)
    for menu, c in ((data.menus[i], int(k)) for i, k in zip(data.menu[rows], data.choices[rows])):
        delta = menu[c][None, :] - np.delete(menu, c, axis=0)
        norm = np.hypot(delta[:, 0], delta[:, 1])
        keep = norm > 0
        tol = TIE_TOLERANCE * max(1.0, float(np.abs(menu).max()) * 2)
        centres.append(np.degrees(np.arctan2(delta[keep, 1], delta[keep, 0])))
        halves.append(90.0 + np.degrees(np.arcsin(np.minimum(1.0, tol / norm[keep]))))
    if not centres:
        return np.empty(0), np.empty(0)
    return np.concatenate(centres), np.concatenate(halves)


def _feasible(thetas: np.ndarray, centres: np.ndarray, halves: np.ndarray) -> np.ndarray:
    """Whether each angle lies inside every arc (angular distance to φ at most the half-width)."""
    gap = np.abs((thetas[:, None] - centres[None, :] + 180.0) % 360.0 - 180.0)
    return (gap <= halves[None, :] + _ROUNDING).all(axis=1)


def consistency_set(options: list[np.ndarray], choices: np.ndarray) -> list[tuple[float, float]]:
    """The closed set of angles in [−90°, 90°] at which every choice is a best option (ties included).

    Returned as sorted, disjoint closed intervals ``[(low, high), ...]`` (a single angle is
    ``(a, a)``); empty when no angle explains every choice. Exact up to floating-point ties
    (utilities within :data:`TIE_TOLERANCE` of the best count as best): every constraint keeps an
    arc of the circle, so the set's ends are among the arcs' ends, and feasibility is constant
    between consecutive ends — checking each end and each midpoint decides the whole set.
    """
    return _consistency_set(_validate(options, choices, None))


def _consistency_set(data: _Decisions) -> list[tuple[float, float]]:
    centres, halves = _arcs(data)
    if centres.size == 0:
        return [(ANGLE_MIN, ANGLE_MAX)]
    ends = np.concatenate([centres - halves, centres + halves])
    ends = (ends + 180.0) % 360.0 - 180.0  # on (−180, 180]
    ends = np.unique(np.concatenate([[ANGLE_MIN, ANGLE_MAX], ends[(ends >= ANGLE_MIN) & (ends <= ANGLE_MAX)]]))
    mids = (ends[:-1] + ends[1:]) / 2
    at_end = _feasible(ends, centres, halves)
    between = _feasible(mids, centres, halves)
    pieces: list[tuple[float, float]] = []
    start: float | None = None
    for i, end in enumerate(ends):
        if at_end[i] and start is None:
            start = float(end)
        if start is not None and (i == len(ends) - 1 or not between[i]):
            pieces.append((start, float(end)))
            start = None
    return pieces


# --------------------------------------------------------------------------- the logit model


class _Profile:
    """Log-likelihood of the logit model, maximised over (β, b) at each θ, for one set of decisions."""

    def __init__(self, options: list[np.ndarray] | _Decisions, choices: np.ndarray | None = None,
                 first: np.ndarray | None = None, signed_beta: bool = False) -> None:
        data = options if isinstance(options, _Decisions) else _validate(options, choices, first)
        # Identical (menu, display, choice) decisions are exchangeable: fit each once, weighted by its count
        # (unique rows in order of first appearance; ``inverse``: original decision → its unique row).
        rows, inverse = _distinct_rows(data.menu, data.choices, data.first)
        menus = [data.menus[i] for i in data.menu[rows]]
        shown = data.first[rows]
        self.selfs, self.others, self.mask = _pad(menus)
        self.rows = np.arange(len(menus))
        self.choices = data.choices[rows]
        self.weights = np.bincount(inverse, minlength=len(rows)).astype(float)
        self.inverse = inverse
        self.beta_max = BETA_SCALE / _menu_span(menus, self.weights)
        self.beta_min = -self.beta_max if signed_beta else 0.0
        self.padding = np.where(self.mask, 0.0, -np.inf)[None]  # adds -inf to missing options
        first_arr = np.asarray(shown, dtype=np.int64)
        self.flags = np.zeros(self.mask.shape)
        self.flags[self.rows[first_arr >= 0], first_arr[first_arr >= 0]] = 1.0
        self.chosen_flag = self.flags[self.rows, self.choices]
        self.has_position = bool((first_arr >= 0).any())

    def _centred(self, thetas_deg: np.ndarray) -> np.ndarray:
        t = np.radians(thetas_deg)[:, None, None]
        u = np.cos(t) * self.selfs[None] + np.sin(t) * self.others[None]  # (G, n, K)
        # centre each menu's utilities: the softmax is unchanged and exp() never overflows
        u = u - np.where(self.mask[None], u, -np.inf).max(axis=2, keepdims=True)
        return np.where(self.mask[None], u, 0.0)

    def _stats(self, u: np.ndarray, beta: np.ndarray, b: np.ndarray, chosen_u: np.ndarray, derivatives: bool = True):
        """Log-likelihood (G,), and its gradient (G, 2) and Hessian (G, 2, 2) in (β, b)."""
        logits = beta[:, None, None] * u + b[:, None, None] * self.flags[None] + self.padding
        top = logits.max(axis=2, keepdims=True)
        w = np.exp(logits - top)
        total = w.sum(axis=2)
        ll_rows = beta[:, None] * chosen_u + b[:, None] * self.chosen_flag[None] - top[..., 0] - np.log(total)
        ll = (ll_rows * self.weights).sum(axis=1)
        if not derivatives:
            return ll, None, None
        p = w / total[..., None]
        eu = (p * u).sum(axis=2)
        ef = (p * self.flags[None]).sum(axis=2)
        vu = (p * u * u).sum(axis=2) - eu**2
        vf = ef - ef**2
        cuf = (p * u * self.flags[None]).sum(axis=2) - eu * ef
        g = np.stack([((chosen_u - eu) * self.weights).sum(1), ((self.chosen_flag[None] - ef) * self.weights).sum(1)], 1)
        h = -np.stack([
            np.stack([(vu * self.weights).sum(1), (cuf * self.weights).sum(1)], 1),
            np.stack([(cuf * self.weights).sum(1), (vf * self.weights).sum(1)], 1),
        ], 1)
        return ll, g, h

    def evaluate_full(self, thetas_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(profile log-likelihood, β̂, b̂) at each θ: projected Newton on the concave (β, b) problem."""
        thetas_deg = np.atleast_1d(np.asarray(thetas_deg, dtype=float))
        u = self._centred(thetas_deg)
        chosen_u = u[:, self.rows, self.choices]
        g_count = len(thetas_deg)
        lo = np.array([self.beta_min, -POSITION_MAX if self.has_position else 0.0])
        hi = np.array([self.beta_max, POSITION_MAX if self.has_position else 0.0])
        x = np.zeros((g_count, 2))  # start at the value-blind chooser; the problem is concave
        ll, g, h = self._stats(u, x[:, 0], x[:, 1], chosen_u)
        for _ in range(_NEWTON_STEPS):
            at_bound = ((x <= lo + 1e-12) & (g < 0)) | ((x >= hi - 1e-12) & (g > 0)) | (lo == hi)[None]
            free = ~at_bound
            step = _newton_step(g, h, free)
            improved = np.zeros(g_count, dtype=bool)
            t = np.ones(g_count)
            new_x = x.copy()
            for _ in range(30):
                candidate = np.clip(x + t[:, None] * step, lo, hi)
                cand_ll, _, _ = self._stats(u, candidate[:, 0], candidate[:, 1], chosen_u, derivatives=False)
                ok = (cand_ll >= ll - 1e-12) & ~improved
                new_x[ok] = candidate[ok]
                improved |= ok
                if improved.all():
                    break
                t = np.where(improved, t, t / 2)
            moved = np.abs(new_x - x).max(axis=1)
            x = new_x
            ll, g, h = self._stats(u, x[:, 0], x[:, 1], chosen_u)
            if (moved < 1e-10 * np.maximum(1.0, np.abs(x).max(axis=1))).all():
                break
        return ll, x[:, 0], x[:, 1]

    def at_angle(self, theta: float, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log-likelihood, β̂, b̂) at one angle for each row of ``weights`` (per original decision)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        kept = self.weights
        self.weights = np.stack([np.bincount(self.inverse, row, minlength=len(kept)) for row in weights])
        try:
            return self.evaluate_full(np.full(len(weights), float(theta)))
        finally:
            self.weights = kept

    def evaluate(self, thetas_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(profile log-likelihood, β̂) at each θ."""
        ll, beta, _ = self.evaluate_full(thetas_deg)
        return ll, beta


def _newton_step(g: np.ndarray, h: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Newton ascent direction on the free coordinates (the others held at their bound)."""
    step = np.zeros_like(g)
    neg_h = -h
    both = free.all(axis=1)
    if both.any():
        a, bb, d = neg_h[both, 0, 0], neg_h[both, 0, 1], neg_h[both, 1, 1]
        det = a * d - bb * bb
        ok = det > 1e-12 * np.maximum(1.0, a * d)
        s0 = np.where(ok, (d * g[both, 0] - bb * g[both, 1]) / np.where(ok, det, 1), g[both, 0] / np.maximum(a, 1e-12))
        s1 = np.where(ok, (a * g[both, 1] - bb * g[both, 0]) / np.where(ok, det, 1), g[both, 1] / np.maximum(d, 1e-12))
        step[both] = np.stack([s0, s1], 1)
    for i in (0, 1):
        alone = free[:, i] & ~free[:, 1 - i]
        step[alone, i] = g[alone, i] / np.maximum(neg_h[alone, i, i], 1e-12)
    return np.where(np.isfinite(step), step, 0.0)


def fit_choice_model(
    options: list[np.ndarray], choices: np.ndarray, first: np.ndarray | None = None, position: bool = True
) -> ChoiceModelFit:
    """Maximum-likelihood (θ, β, b) of ``P(c) ∝ exp(β·U_θ(c) + b·[c shown first])``.

    ``options[i]`` is menu i as ``(k, 2)`` (self, other) in canonical order, ``choices[i]`` the
    chosen index and ``first[i]`` the index of the option shown first (−1 or ``None``: not
    recorded; such decisions carry no position term). ``position=False`` fixes b = 0. θ is searched
    over [−90°, 90°] (2° grid, 0.1° grid, bounded scalar search); β over [0, ``BETA_SCALE`` / median
    menu span], b over [−``POSITION_MAX``, ``POSITION_MAX``]. Unlike :func:`fit_revealed_angle`
    this is the plain point estimate, with no identified set: use it to predict choices (e.g. with
    b = 0, :meth:`ChoiceModelFit.probabilities`), not to claim an angle.

    Raises:
        ValueError: no decisions, or a choice (or first option) outside its menu.
    """
    data = _validate(options, choices, first)
    profile = _Profile(data if position else data.without_first())
    theta = _maximise(profile)
    ll, beta, b = profile.evaluate_full(np.array([theta]))
    return ChoiceModelFit(theta, float(beta[0]), float(b[0]), float(ll[0]), len(data.choices))


def fit_at_angle(
    options: list[np.ndarray], choices: np.ndarray, first: np.ndarray | None, theta: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The choice model's (β̂, b̂, log-likelihood) with θ held at ``theta``, for many weightings at once.

    ``weights`` (``(B, n)``; default one row of ones) reweights the decisions — e.g. bootstrap
    counts — and each row gets its own fit (one vectorised Newton run). β may be negative here (a
    chooser acting *against* the value), bounded by ±``BETA_SCALE`` / median menu span; b as in
    :func:`fit_choice_model`, NaN where β reaches its bound (perfectly separated choices say nothing
    about position).
    """
    data = _validate(options, choices, first)
    profile = _Profile(data, signed_beta=True)
    if weights is None:
        weights = np.ones((1, len(data.choices)))
    ll, beta, b = profile.at_angle(theta, weights)
    # where β sits at its bound the choices are perfectly separated and b is not identified
    b = np.where(np.abs(beta) >= 0.999 * profile.beta_max, np.nan, b)
    return beta, b, ll


def _maximise(profile: _Profile) -> float:
    """θ̂ of the profile likelihood (coarse grid, fine grid, bounded scalar search)."""
    grid = np.arange(ANGLE_MIN, ANGLE_MAX + COARSE_STEP / 2, COARSE_STEP)
    values, _ = profile.evaluate(grid)
    best = float(grid[int(np.argmax(values))])
    fine = np.clip(best + np.arange(-COARSE_STEP, COARSE_STEP + FINE_STEP / 2, FINE_STEP), ANGLE_MIN, ANGLE_MAX)
    fine_values, _ = profile.evaluate(fine)
    return _refine_maximum(profile, float(fine[int(np.argmax(fine_values))]))


def fit_revealed_angle(options: list[np.ndarray], choices: np.ndarray, first: np.ndarray | None = None) -> RevealedAngle:
    """The revealed angle of decisions: ``options[i]`` is menu i as ``(k, 2)``, ``choices[i]`` its index.

    ``first[i]``, where given, is the index of the option shown first (−1: not recorded); the
    likelihood then has a first-position term fitted with θ and β, so a position-biased chooser's
    angle is not biased. See the module docstring for the outcomes.

    Raises:
        ValueError: no decisions, or a choice (or first option) outside its menu.
    """
    data = _validate(options, choices, first)
    profile = _Profile(data)
    pieces = _consistency_set(data)
    likelihood = _likelihood_fit(profile, len(data.choices))
    if pieces:
        return _consistent_fit(profile, pieces, likelihood, len(data.choices))
    return likelihood


def _likelihood_fit(profile: _Profile, n: int) -> RevealedAngle:
    """The maximum-likelihood angle and its 95% profile-likelihood interval (module docstring)."""
    grid = np.arange(ANGLE_MIN, ANGLE_MAX + COARSE_STEP / 2, COARSE_STEP)
    values, betas = profile.evaluate(grid)
    threshold_of = lambda ll: ll - CHI2_95 / 2  # noqa: E731
    if (values >= threshold_of(values.max())).all():
        # the 95% set is the whole legal range: the decisions do not identify an angle
        index = int(np.argmax(values))
        return RevealedAngle(NAN, float(betas[index]), NAN, NAN, n, float(values[index]), "none")
    best = float(grid[int(np.argmax(values))])
    fine = np.clip(best + np.arange(-COARSE_STEP, COARSE_STEP + FINE_STEP / 2, FINE_STEP), ANGLE_MIN, ANGLE_MAX)
    fine_values, _ = profile.evaluate(fine)
    theta_hat = float(fine[int(np.argmax(fine_values))])
    # Ties on a flat top: report the middle of the flat region.
    flat = np.flatnonzero(values >= max(float(fine_values.max()), values.max()) - FLAT_TOLERANCE)
    is_set = len(flat) > 1
    if is_set:
        theta_hat = _middle_of_run(grid, flat, theta_hat)
    else:  # the maximum between fine grid points (sharp choosers have intervals narrower than the grid)
        theta_hat = _refine_maximum(profile, theta_hat)
    ll_at, beta_at, b_at = profile.evaluate_full(np.array([theta_hat]))
    ll_max, beta_hat = max(float(ll_at[0]), float(fine_values.max())), float(beta_at[0])
    is_set = is_set or theta_hat <= ANGLE_MIN + FINE_STEP / 2 or theta_hat >= ANGLE_MAX - FINE_STEP / 2
    threshold = threshold_of(ll_max)
    low = _interval_end(profile, grid, values, theta_hat, threshold, -1)
    high = _interval_end(profile, grid, values, theta_hat, threshold, +1)
    return RevealedAngle(theta_hat, beta_hat, low, high, n, ll_max, "set" if is_set else "point",
                         position=float(b_at[0]))


def _consistent_fit(profile: _Profile, pieces: list[tuple[float, float]], likelihood: RevealedAngle,
                    n: int) -> RevealedAngle:
    """The fit of data that an exact maximiser explains.

    The identified set is the consistency set, joined (as its hull) with the 95% profile-likelihood
    set of the logit model: an exact maximiser's angle is always in the first, while a logit
    chooser with moderate β often makes choices that one *wrong* angle explains exactly (a
    near-best option chosen now and then), and its angle is then in the second.
    """
    low, high = pieces[0][0], pieces[-1][1]
    if not np.isnan(likelihood.ci_low):
        low, high = min(low, likelihood.ci_low), max(high, likelihood.ci_high)
    if (low <= ANGLE_MIN and high >= ANGLE_MAX) or likelihood.identification == "none":
        ll, beta, b = profile.evaluate_full(np.array([0.0]))
        return RevealedAngle(NAN, float(beta[0]), NAN, NAN, n, float(ll[0]), "none", float(b[0]), True, tuple(pieces))
    widest = max(pieces, key=lambda p: p[1] - p[0])
    theta = (widest[0] + widest[1]) / 2
    ll, beta, b = profile.evaluate_full(np.array([theta]))
    kind: Identification = "point" if high - low < POINT_WIDTH else "set"
    return RevealedAngle(theta, float(beta[0]), low, high, n, float(ll[0]), kind, float(b[0]), True, tuple(pieces))


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
