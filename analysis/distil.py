"""Distilling LLM behaviour into a surrogate policy: one calibrated logit choice model per unit.

:func:`distil_decisions` fits, per group (or per value, or per agent), the surrogate's choice model
(:mod:`hvae.agents.surrogate`)::

    P(i) ∝ exp(β · U_θ(i) + b · [i shown first] + ρ · g(i) · partner_gave)

to the **valid** decisions of a decisions table (the run folder's ``decisions.parquet`` format),
plus the unit's invalid-reply rate from all of its decisions. :func:`distil_run` does it for a run
folder, a run in memory or an ``hvae evaluate`` output folder and records where the policy came
from; ``hvae distil`` is the command (:mod:`hvae.cli.distil`).

**Estimation.** The revealed-angle estimator :func:`hvae.agents.revealed.fit_choice_model` finds
the maximum-likelihood (θ, β, b) — its θ profile (2° grid, 0.1° grid, bounded search) finds the
global maximum, which a local optimiser started anywhere could miss. Where the reciprocity term is
identified, the joint maximum over (θ, β, b, ρ) is then polished from that start by scipy's
bounded L-BFGS-B with the analytic score (the profile's Newton solver is written for the two
parameters it profiles; one local polish of a concave-in-(β, b, ρ) likelihood is simpler than
generalising it).

**Intervals.** Each kept parameter gets a 95% Wald interval from a *cluster-robust* (sandwich)
covariance, clustered by agent — an agent's decisions are not independent draws, and this
interval stays honest when agents differ — ``A⁻¹ (Σ_agents s_g s_gᵀ) A⁻¹ · G/(G−1)`` with ``A`` the
observed information (numerical derivative of the analytic score) and ``s_g`` an agent's summed
score. With fewer than :data:`MIN_CLUSTERS` agents in a unit (always for ``by: agent``) the
model-based covariance ``A⁻¹`` is used, and the unit's ``notes`` say so. θ's interval is clipped to
the legal range [−90°, 90°]. The invalid-reply rate gets a Wilson score interval.

**What is dropped, never guessed** (listed in the unit's ``dropped`` with the reason; the term's
parameter is 0.0):

* ``position`` — no display order recorded (rule deciders, old runs), or the option shown first
  never varied on any menu (``order: fixed``: the bonus would be a property of option 0);
* ``reciprocity`` — what partners gave does not vary (always unknown, or always the same), or the
  menus never let the agent vary what it gives (g(i) constant), so ρ cannot be told apart from θ;
* both, when β reaches its bound (choices perfectly separated by utility: an exact maximiser;
  nothing else about the choices can be learnt). β is then kept at the bound — the sharpest the
  menus can show — and its note says that only a lower bound is known.

``partner_gave`` of a decision is the generosity the agent received in the most recent game it
played before (the mean gift of the partners it played that round, as a fraction of that menu's
range of "other" amounts; a round whose games were all void leaves no entry); unknown (0) before
its first game — exactly what the surrogate decider reads from ``History.generosity[:, 0]``
(tested against it).

    >>> from hvae.analysis.distil import distil_run
    >>> policy = distil_run("runs/llm_demo", by="group")          # doctest: +SKIP
    >>> policy.save("policy.yaml")                                # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from hvae.agents.revealed import BETA_SCALE, POSITION_MAX, fit_choice_model
from hvae.agents.surrogate import FEATURES, PolicyUnit, SurrogatePolicy, value_key
from hvae.files.untrusted import one_line

__all__ = ["DistilError", "MIN_CLUSTERS", "MIN_DECISIONS", "distil_decisions", "distil_run", "evaluation_decisions", "partner_gave"]

#: Fewest valid decisions a unit is fitted from.
MIN_DECISIONS = 20
#: Fewest agents in a unit for the cluster-robust covariance (below it: model-based).
MIN_CLUSTERS = 10
Z95 = 1.959963984540054
RECIPROCITY_MAX = 50.0  #: bound of ρ (logit units per unit of generosity × gift)
_SEPARATED = 0.999  # β at this fraction of its bound counts as "at the bound"

By = Literal["group", "value", "agent"]


class DistilError(ValueError):
    """Decisions that cannot be distilled (none, an unknown group, too few); the message is one line."""


# --------------------------------------------------------------------------- inputs


@dataclass
class _Inputs:
    """One unit's decisions as arrays: menus padded to ``K`` options (``mask`` marks real ones)."""

    selfs: np.ndarray  # (n, K)
    others: np.ndarray  # (n, K)
    mask: np.ndarray  # (n, K) bool
    generosity: np.ndarray  # (n, K), 0 where undefined
    first: np.ndarray  # (n,) canonical option shown first, −1 unknown
    choice: np.ndarray  # (n,)
    partner_gave: np.ndarray  # (n,), 0 unknown
    gave_known: np.ndarray  # (n,) bool: the gift was known (not the first round, not a void game)
    cluster: np.ndarray  # (n,) agent of each decision
    options: list[np.ndarray]

    @property
    def n(self) -> int:
        return int(self.choice.shape[0])


def _options_from_text(shown: str, order: str | None) -> np.ndarray:
    """Canonical ``(k, 2)`` options from a decision's ``options_shown`` and ``shown_order``."""
    rows = np.array([[float(x) for x in pair.split(",")] for pair in shown.split("|")])
    if not isinstance(order, str) or not order:
        return rows
    canonical = np.empty_like(rows)
    canonical[np.array(order.split(","), dtype=int)] = rows
    return canonical


def _menu_lookup(decisions: pd.DataFrame, menus: pd.DataFrame | None) -> list[np.ndarray]:
    """Each decision's canonical options (from the menus table when given, else from the shown text)."""
    if menus is not None and len(menus):
        from hvae.analysis.rationality import menu_options

        by_menu = menu_options(menus)
        ids = decisions["menu_id"].astype(str)
        missing = sorted(set(ids) - set(by_menu))
        if missing:
            raise DistilError(f"menu {missing[0]!r} of the decisions is not in the menus table")
        return [by_menu[m] for m in ids]
    if "options_shown" not in decisions:
        raise DistilError("the decisions table has neither a menus table beside it nor options_shown")
    order = decisions["shown_order"] if "shown_order" in decisions else pd.Series([None] * len(decisions), index=decisions.index)
    cache: dict[tuple[str, Any], np.ndarray] = {}
    out = []
    for shown, shown_order in zip(decisions["options_shown"].astype(str), order):
        key = (shown, shown_order if isinstance(shown_order, str) else None)
        if key not in cache:
            cache[key] = _options_from_text(*key)
        out.append(cache[key])
    return out


def _received_last(decisions: pd.DataFrame, options: list[np.ndarray]) -> np.ndarray:
    """Per decision: the generosity the agent received in its most recent game played before it (NaN unknown).

    The table form of ``History.generosity[:, 0]``, what the decider saw: a round whose games were
    all void leaves no entry (the one before counts); the mean over the partners whose game was
    played (``received / n_played``, with ``n_played = (payoff − received) / self_amount`` when some
    of several games were void), placed in that round's menu range of "other" amounts.
    """
    n = len(decisions)
    if n == 0 or not {"received", "n_partners", "round", "agent_id"} <= set(decisions.columns):
        return np.full(n, np.nan)
    received = decisions["received"].to_numpy(dtype=float)
    partners = decisions["n_partners"].to_numpy(dtype=float)
    void = decisions["pair_skipped"].to_numpy(dtype=bool) if "pair_skipped" in decisions else np.zeros(n, bool)
    own = decisions["choice"].to_numpy() >= 0
    played = np.where(void, np.nan, partners)
    if void.any() and {"payoff", "self_amount"} <= set(decisions.columns):  # some of several games were played
        kept = decisions["self_amount"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            counted = np.round((decisions["payoff"].to_numpy(dtype=float) - received) / kept)
        played = np.where(void & (kept > 0), counted, played)
    played = np.where(own, played, 0.0)  # without its own choice every game of the agent was void
    lows = np.array([menu[:, 1].min() for menu in options])
    spans = np.array([np.ptp(menu[:, 1]) for menu in options])
    has = played > 0  # NaN (unknown) compares False: such a round counts as without a game
    with np.errstate(divide="ignore", invalid="ignore"):
        gift = np.where(has & (spans > 0), (received / np.where(has, played, 1.0) - lows) / np.where(spans > 0, spans, 1.0), np.nan)
    order = np.lexsort((decisions["round"].to_numpy(), decisions["agent_id"].to_numpy()))
    agents = decisions["agent_id"].to_numpy()[order]
    new_agent = np.ones(n, dtype=bool)
    new_agent[1:] = agents[1:] != agents[:-1]
    start = np.maximum.accumulate(np.where(new_agent, np.arange(n), 0))  # first sorted row of each row's agent
    last = np.maximum.accumulate(np.where(has[order], np.arange(n), -1))  # last played row up to here
    before = np.concatenate([[-1], last[:-1]])
    known = before >= start
    previous = np.full(n, np.nan)
    previous[order[known]] = gift[order][before[known]]
    return previous


def partner_gave(decisions: pd.DataFrame, menus: pd.DataFrame | None = None) -> np.ndarray:
    """Per decision, the surrogate's ``partner_gave`` input rebuilt from a decisions table (0 when unknown).

    What the deciding agent saw as ``History.generosity[:, 0]``: the generosity it received in the
    most recent game it played before (module docstring); ``menus`` as for :func:`distil_decisions`.
    """
    return np.nan_to_num(_received_last(decisions.reset_index(drop=True), _menu_lookup(decisions, menus)))


def _inputs(options: list[np.ndarray], choice: np.ndarray, first: np.ndarray, partner_gave: np.ndarray,
            cluster: np.ndarray) -> _Inputs:
    n = len(options)
    width = max(len(o) for o in options)
    selfs, others = np.zeros((n, width)), np.zeros((n, width))
    mask = np.zeros((n, width), dtype=bool)
    generosity = np.zeros((n, width))
    for i, menu in enumerate(options):
        k = len(menu)
        selfs[i, :k], others[i, :k], mask[i, :k] = menu[:, 0], menu[:, 1], True
        spread = menu[:, 1].max() - menu[:, 1].min()
        if spread > 0:
            generosity[i, :k] = (menu[:, 1] - menu[:, 1].min()) / spread
    return _Inputs(selfs, others, mask, generosity, first.astype(np.int64), choice.astype(np.int64),
                   np.nan_to_num(partner_gave), np.isfinite(partner_gave), cluster, options)


# --------------------------------------------------------------------------- the likelihood


def _derivatives(x: np.ndarray, data: _Inputs) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per decision: log-likelihood (n,), P (n, K) and the logits' derivatives in (θ°, β, b, ρ)."""
    rad = math.radians(x[0])
    u = math.cos(rad) * data.selfs + math.sin(rad) * data.others
    du = (-math.sin(rad) * data.selfs + math.cos(rad) * data.others) * (math.pi / 180.0)
    flags = np.zeros_like(u)
    shown = data.first >= 0
    flags[np.flatnonzero(shown), data.first[shown]] = 1.0
    recip = data.generosity * data.partner_gave[:, None]
    logits = x[1] * u + x[2] * flags + x[3] * recip
    logits = np.where(data.mask, logits, -np.inf)
    top = logits.max(axis=1, keepdims=True)
    weights = np.exp(logits - top)
    total = weights.sum(axis=1, keepdims=True)
    p = weights / total
    rows = np.arange(data.n)
    ll = logits[rows, data.choice] - top[:, 0] - np.log(total[:, 0])
    return ll, p, [x[1] * du, u, flags, recip]


def _scores(x: np.ndarray, data: _Inputs, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-decision log-likelihood (n,) and score (n, free parameters)."""
    ll, p, derivs = _derivatives(x, data)
    rows = np.arange(data.n)
    columns = [d[rows, data.choice] - (p * np.where(data.mask, d, 0.0)).sum(axis=1) for d, keep in zip(derivs, free) if keep]
    return ll, np.stack(columns, axis=1)


def _polish(start: np.ndarray, data: _Inputs, free: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    """The joint maximum from ``start`` (scipy L-BFGS-B with the analytic score, fixed terms held)."""
    from scipy.optimize import minimize

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        x = start.copy()
        x[free] = z
        ll, score = _scores(x, data, free)
        return -float(ll.sum()), -score.sum(axis=0)

    result = minimize(objective, start[free], jac=True, method="L-BFGS-B",
                      bounds=[b for b, keep in zip(bounds, free) if keep])
    x = start.copy()
    if -result.fun >= -objective(start[free])[0]:
        x[free] = result.x
    return x


def _covariance(x: np.ndarray, data: _Inputs, free: np.ndarray) -> tuple[np.ndarray, bool]:
    """Covariance of the free parameters: cluster-robust by agent, or model-based with few agents."""
    z = x[free]
    k = int(free.sum())
    information = np.zeros((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(z[j]))
        up, down = x.copy(), x.copy()
        up[np.flatnonzero(free)[j]] += h
        down[np.flatnonzero(free)[j]] -= h
        information[:, j] = -(_scores(up, data, free)[1].sum(0) - _scores(down, data, free)[1].sum(0)) / (2 * h)
    information = (information + information.T) / 2
    try:
        inverse = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan), False
    clusters, index = np.unique(data.cluster, return_inverse=True)
    if len(clusters) < MIN_CLUSTERS:
        return inverse, False
    _, score = _scores(x, data, free)
    summed = np.zeros((len(clusters), k))
    np.add.at(summed, index, score)
    g = len(clusters)
    meat = summed.T @ summed * g / (g - 1)
    return inverse @ meat @ inverse, True


def _wilson(invalid: int, total: int) -> tuple[float, float]:
    if total == 0:
        return 0.0, 1.0
    p, z2 = invalid / total, Z95**2
    if invalid == 0:
        return 0.0, min(1.0, z2 / (total + z2))
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = Z95 * math.sqrt(p * (1 - p) / total + z2 / (4 * total**2)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _fit_unit(data: _Inputs, n_all: int, n_invalid: int, features: tuple[str, ...]) -> tuple[PolicyUnit, float]:
    """One unit's :class:`PolicyUnit` and its log-likelihood (module docstring)."""
    dropped: dict[str, str] = {}
    notes: dict[str, str] = {}
    recorded = data.first >= 0
    if "position" in features:
        if not recorded.any():
            dropped["position"] = "no display order was recorded"
        elif not _first_varies(data):
            dropped["position"] = "the option shown first never varied on a menu (not counterbalanced)"
    if "reciprocity" in features:
        reach = data.generosity.max(axis=1) > 0  # menus on which what is given can vary
        gifts = data.partner_gave[reach & data.gave_known]  # unknown gifts (0) say nothing about ρ
        if not reach.any():
            dropped["reciprocity"] = "no menu let the agents vary what they give"
        elif gifts.size == 0 or np.ptp(gifts) == 0:
            dropped["reciprocity"] = "what partners gave does not vary (unknown or always the same)"
    use_position = "position" in features and "position" not in dropped
    fit = fit_choice_model(data.options, data.choice, data.first if use_position else None, position=use_position)
    beta_max = BETA_SCALE / _median_span(data.options)
    x = np.array([fit.theta, fit.beta, fit.position if use_position else 0.0, 0.0])
    if fit.beta >= _SEPARATED * beta_max:
        reason = "choices perfectly separated by utility (β at its bound): not identified"
        for term in ("position", "reciprocity"):
            if term in features:
                dropped.setdefault(term, reason)
        x[2] = 0.0
        notes["beta"] = f"at its bound {beta_max:.4g}: choices perfectly separated by utility, only a lower bound is known"
        ll = float(_derivatives(x, data)[0].sum())
        return _unit(x, {}, dropped, notes, data.n, n_all, n_invalid), ll
    free = np.array([True, True, use_position, "reciprocity" in features and "reciprocity" not in dropped])
    bounds = [(-90.0, 90.0), (0.0, beta_max), (-POSITION_MAX, POSITION_MAX), (-RECIPROCITY_MAX, RECIPROCITY_MAX)]
    if free[3]:
        x = _polish(x, data, free, bounds)
    covariance, robust = _covariance(x, data, free)
    if not robust:
        notes["intervals"] = f"model-based (fewer than {MIN_CLUSTERS} agents for agent-clustered intervals)"
    names = [name for name, keep in zip(("theta", "beta", "position", "reciprocity"), free) if keep]
    intervals: dict[str, tuple[float, float]] = {}
    for j, name in enumerate(names):
        se = math.sqrt(covariance[j, j]) if np.isfinite(covariance[j, j]) and covariance[j, j] >= 0 else math.nan
        value = float(x[("theta", "beta", "position", "reciprocity").index(name)])
        if not math.isfinite(se):
            notes[name] = "no interval: the information matrix is singular (not identified)"
            continue
        low, high = value - Z95 * se, value + Z95 * se
        if name == "theta":
            low, high = max(low, -90.0), min(high, 90.0)
        intervals[name] = (low, high)
    if "beta" in intervals and intervals["beta"][0] <= 0.0:
        notes["theta"] = "not identified: β's interval reaches 0 (a value-blind chooser has no angle)"
        intervals.pop("theta", None)
    ll = float(_derivatives(x, data)[0].sum())
    return _unit(x, intervals, dropped, notes, data.n, n_all, n_invalid), ll


def _unit(x: np.ndarray, intervals: dict[str, tuple[float, float]], dropped: dict[str, str], notes: dict[str, str],
          n_valid: int, n_all: int, n_invalid: int) -> PolicyUnit:
    intervals = {**intervals, "invalid_rate": _wilson(n_invalid, n_all)}
    return PolicyUnit(
        theta=float(np.clip(x[0], -90.0, 90.0)), beta=float(x[1]),
        position=0.0 if "position" in dropped else float(x[2]),
        reciprocity=0.0 if "reciprocity" in dropped else float(x[3]),
        invalid_rate=n_invalid / n_all if n_all else 0.0, n_decisions=n_valid,
        intervals=intervals, dropped=dropped, notes=notes,
    )


def _first_varies(data: _Inputs) -> bool:
    """Whether some menu was shown with different options first (the display was counterbalanced)."""
    keys: dict[bytes, int] = {}
    for menu, first in zip(data.options, data.first.tolist()):
        if first < 0:
            continue
        key = menu.tobytes()
        if keys.setdefault(key, first) != first:
            return True
    return False


def _median_span(options: list[np.ndarray]) -> float:
    spans = {}
    values = []
    for menu in options:
        key = menu.tobytes()
        if key not in spans:
            diffs = menu[:, None, :] - menu[None, :, :]
            spans[key] = float(np.sqrt((diffs**2).sum(-1)).max())
        values.append(spans[key])
    span = float(np.median(values)) if values else 1.0
    return span if span > 0 else 1.0


# --------------------------------------------------------------------------- distilling


def _unit_keys(decisions: pd.DataFrame, by: By) -> np.ndarray:
    """Each decision's unit key (text, as in the policy file)."""
    if by == "group":
        return decisions["group"].astype(str).to_numpy()
    if by == "value":
        return np.array([value_key(v) for v in decisions["value_angle"].to_numpy(dtype=float)], dtype=object)
    return decisions["agent_id"].to_numpy(dtype=np.int64).astype(str).astype(object)


def distil_decisions(
    decisions: pd.DataFrame,
    *,
    by: By = "group",
    groups: list[str] | None = None,
    agents: list[int] | np.ndarray | None = None,
    menus: pd.DataFrame | None = None,
    features: tuple[str, ...] = FEATURES,
    min_decisions: int = MIN_DECISIONS,
) -> SurrogatePolicy:
    """Fit a surrogate policy to a decisions table (``decisions.parquet``'s columns; module docstring).

    ``groups`` restricts to those population groups, ``agents`` to those agent ids (cross-validation
    by agent); ``menus`` (a run's ``menus`` table) gives the exact options, else they are read from
    ``options_shown``. ``features`` are the terms to fit (``utility`` always; ``position``,
    ``reciprocity`` where identified). The provenance holds the fit; :func:`distil_run` adds the source.

    Raises:
        DistilError: no decisions, an unknown group, or a unit with fewer than ``min_decisions``
            valid decisions.
    """
    if by not in ("group", "value", "agent"):
        raise DistilError(f"by must be group, value or agent, not {by!r}")
    unknown_terms = [f for f in features if f not in FEATURES]
    if unknown_terms or "utility" not in features:
        raise DistilError(f"features must include utility and come from {', '.join(FEATURES)} (got {', '.join(features)})")
    if len(decisions) == 0:
        raise DistilError("there are no decisions to distil")
    if groups:
        known = set(decisions["group"].astype(str))
        missing = [g for g in groups if g not in known]
        if missing:
            raise DistilError(f"no group {missing[0]!r} in the decisions (groups: {', '.join(sorted(known))})")
        decisions = decisions.loc[decisions["group"].astype(str).isin(list(groups)).to_numpy()]
    if agents is not None:
        decisions = decisions.loc[np.isin(decisions["agent_id"].to_numpy(), np.asarray(agents))]
        if len(decisions) == 0:
            raise DistilError("none of the given agents has a decision")
    decisions = decisions.reset_index(drop=True)
    options = _menu_lookup(decisions, menus)
    from hvae.analysis.rationality import behavioural, first_shown

    usable = behavioural(decisions)
    first = first_shown(decisions)
    gave = _received_last(decisions, options)
    keys = _unit_keys(decisions, by)
    valid = decisions["valid"].to_numpy(dtype=bool) if "valid" in decisions else np.ones(len(decisions), bool)
    agent_ids = decisions["agent_id"].to_numpy()
    choice = decisions["choice"].to_numpy(dtype=np.int64)
    units: dict[str, PolicyUnit] = {}
    fits: dict[str, float] = {}
    for key in sorted(set(keys), key=lambda k: (float(k), k) if by != "group" else (0.0, k)):
        rows = keys == key
        fit_rows = np.flatnonzero(rows & usable)
        if len(fit_rows) < min_decisions:
            raise DistilError(f"{by} {key!r} has {len(fit_rows)} valid decisions; distilling needs at least {min_decisions}")
        data = _inputs([options[i] for i in fit_rows], choice[fit_rows], first[fit_rows], gave[fit_rows], agent_ids[fit_rows])
        units[key], fits[key] = _fit_unit(data, int(rows.sum()), int((rows & ~valid).sum()), tuple(features))
    provenance = {
        "decisions": int(sum(u.n_decisions for u in units.values())),
        "log_likelihood": float(sum(fits.values())),
        "log_likelihood_by_unit": fits,
        "hvae_version": _version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if groups:
        provenance["groups"] = list(groups)
    return SurrogatePolicy(by=by, features=tuple(features), units=units, provenance=provenance)


def _version() -> str:
    try:
        return metadata.version("hvae")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# --------------------------------------------------------------------------- sources


def evaluation_decisions(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An ``hvae evaluate`` folder's standard answers as a decisions table, and its menus table.

    One row per item answer; ``group`` is the model (``agent`` for rule deciders; ``… (fixed goal)``
    for the ablation without goal prompting), every repeat is an agent of its own, and the menus
    are the slider items. There are no partners: the reciprocity term is never identified here.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hvae.agents.svo import PRIMARY_ITEMS, SECONDARY_ITEMS
    from hvae.analysis.runfolder import NotARunFolder

    path = Path(folder) / "answers.parquet"
    if not path.is_file():
        raise NotARunFolder(f"{folder} is not an hvae evaluate folder (no answers.parquet)")
    try:
        answers = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise NotARunFolder(f"{path} is not a readable parquet table ({type(error).__name__})") from None
    if "probe" in answers:
        answers = answers[answers["probe"] == "standard"]
    model = answers["model"].astype(str) if "model" in answers else answers["agent"].astype(str)
    goal = answers["goal_prompting"] if "goal_prompting" in answers else pd.Series([None] * len(answers), index=answers.index)
    group = [m if g is None or pd.isna(g) or bool(g) else f"{m} (fixed goal)" for m, g in zip(model, goal)]
    cell = pd.Series(group, index=answers.index).astype(str) + "|" + answers["value"].astype(str)
    cluster = pd.factorize(cell + "|" + answers["repeat"].astype(str))[0]
    decisions = pd.DataFrame({
        "round": answers["item"].astype(np.int32), "agent_id": cluster.astype(np.int64), "group": group,
        "value_angle": answers["value_angle"].astype(float), "menu_id": answers["menu_id"].astype(str),
        "choice": answers["choice"].astype(np.int64), "valid": answers["valid"].astype(bool),
        "shown_order": answers["shown_order"] if "shown_order" in answers else None,
    })
    items = np.concatenate([PRIMARY_ITEMS, SECONDARY_ITEMS])
    menus = pd.DataFrame([
        {"menu_id": f"slider{i + 1}", "option": j, "self": s, "other": o}
        for i, item in enumerate(items) for j, (s, o) in enumerate(item)
    ])
    return decisions, menus


def distil_run(source: Any, *, by: By = "group", groups: list[str] | None = None, agents: Any = None,
               features: tuple[str, ...] = FEATURES, min_decisions: int = MIN_DECISIONS) -> SurrogatePolicy:
    """Distil a run folder, a run in memory or an ``hvae evaluate`` folder; the provenance names the source.

    Raises:
        DistilError: the source has no decisions, or as :func:`distil_decisions`.
        NotARunFolder: the path is neither a run folder nor an evaluation folder.
    """
    from hvae.analysis.rundata import as_run, is_run
    from hvae.analysis.runfolder import NotARunFolder

    source_info: dict[str, Any]
    if not is_run(source) and Path(source).is_dir() and (Path(source) / "answers.parquet").exists():
        decisions, menus = evaluation_decisions(source)
        source_info = {"source": str(source), "kind": "evaluation", "models": sorted(set(decisions["group"]))}
    else:
        run = as_run(source)
        try:
            decisions = run.decisions()
        except NotARunFolder:
            raise DistilError(f"{run.label} has no decisions to distil") from None
        menus = run.menus() if run.has_table("menus") else None
        source_info = {"source": run.label, "kind": "run", "seed": run.summary.get("seed"),
                       "models": _models(run.scenario, groups)}
    if len(decisions) == 0:
        raise DistilError(f"{source_info['source']} has no decisions to distil")
    policy = distil_decisions(decisions, by=by, groups=groups, agents=agents, menus=menus, features=features,
                              min_decisions=min_decisions)
    provenance = {**source_info, **policy.provenance, "by": by, "features": list(features)}
    return policy.model_copy(update={"provenance": provenance})


def _models(scenario: dict[str, Any], groups: list[str] | None) -> dict[str, str]:
    """Group → what decided for it (``llm: <backend> <model>``, or the rule decider's kind)."""
    backends = scenario.get("backends") or {}
    out = {}
    for group in scenario.get("population") or []:
        if not isinstance(group, dict) or (groups and group.get("name") not in groups):
            continue
        decider = group.get("decider")
        kind = decider.get("kind") if isinstance(decider, dict) else str(decider)
        label = str(kind)
        if kind == "llm" and isinstance(decider, dict):
            backend = decider.get("backend", "embedded")
            config = backends.get(backend) if isinstance(backends, dict) else None
            model = config.get("model") if isinstance(config, dict) else None
            label = one_line(f"llm: {backend}" + (f" {model}" if model else ""), 200)
        out[str(group.get("name"))] = label
    return out
