"""Fidelity: how much behaviour a surrogate policy loses against the LLM decisions it stands in for.

A surrogate (:mod:`hvae.agents.surrogate`, distilled by :mod:`hvae.analysis.distil`) replaces LLM
agents with a fitted choice model. Its results mean something only if the model keeps what the
LLM did, so fidelity is measured on three levels, each with a verdict (``pass``, ``fail`` or
``untested`` with the reason) and its criterion printed beside it. A surrogate that fails any of
the three is **failing**; one that passes all three is **passing**; anything else is
**incomplete** (a check could not be made: too few agents or seeds, say which).

**Decisions** (:func:`decisions_check`) — the LLM's valid decisions are split by agent into
``folds`` parts (default 2: split halves; agents drawn at random with ``seed``). For each part the
surrogate is refitted on the other parts' agents (:func:`hvae.analysis.distil.distil_decisions`
with the policy's own ``by`` and ``features``) and predicts the held-out agents' decisions. Three
held-out log-likelihoods per decision are reported on the same decisions:

* ``surrogate`` — log P(observed choice) under the refitted policy (same menu, same option shown
  first, the partner's last generosity);
* ``uniform`` — ``−log k`` on a k-option menu (the value-blind, position-blind chooser);
* ``split-half`` — **the LLM's own split-half agreement**: log P(observed choice) when the
  prediction is the other part's agents' choice shares on the same *cell* — same policy unit
  (group, value or agent key), same menu, same option shown first — smoothed by adding ½ to every
  option's count (Jeffreys; a cell the other part never saw predicts the uniform chooser). It is
  what the LLM's other agents say about this one, with no model at all: a surrogate that keeps
  the LLM's behaviour predicts held-out agents about as well.

Intervals are 95% percentile cluster bootstraps over agents of the per-decision means (the fits
are held fixed). **Calibration** per item: for each menu, option shown first and option (the
display kept apart: pooled over counterbalanced displays a pull to the first position cancels
out), the observed share of the
held-out choices beside the predicted share (mean held-out probability) with the 95% range of the
observed share under the model (normal approximation, ``± 1.96 √Σp(1−p) / n``); the test is
Pearson's X² over every item, its p-value from a parametric bootstrap (choices redrawn
from the predicted probabilities, ``n_sim`` times), so small expected counts need no χ² table.
Criterion: the surrogate beats the uniform chooser (interval of surrogate − uniform above 0), is
not worse than the split-half agreement (interval of surrogate − split-half reaches 0 or above),
and calibration is not rejected (p ≥ 0.01).

**Agents** (:func:`agents_check`) — the policy plays the LLM's own displays
(:func:`replay`: every valid LLM decision's menu, display order and partner's last generosity,
with the choice drawn from the policy), and three figures per group are compared, each with the
estimator the rest of hvae uses: decision VR (:func:`hvae.analysis.rationality.decision_scores`),
the revealed angle (:func:`hvae.analysis.revealed.revealed_angles`) and the first-position share
(:func:`hvae.analysis.position.position_bias`). Differences of decision VR and first-position
share (surrogate − LLM) get cluster-bootstrap intervals over agents (paired: an agent's LLM and
surrogate decisions are resampled together) at a **family-wise** 95% level (Bonferroni over the
2 × groups comparisons); revealed angles are compared by their own 95% intervals. Criterion: every
difference interval contains 0 and every pair of angle intervals overlaps.

**Population** (:func:`population_check`) — the scenario played by the LLM agents (one run per
seed) and by their surrogates (:func:`hvae.experiments.fidelity.surrogate_runs`). Compared per
seed: each value category's share at the last round and averaged over rounds, and each group's
mean payoff averaged over rounds; per side the mean over seeds with its 95% t-interval
(:func:`hvae.analysis.population.across_seeds`, the report's bands), per round too. The test is
one **two-sample permutation test** of the largest standardised difference of means among those
figures (each difference divided by its pooled standard deviation over all runs; exact over every
assignment of the runs to the two sides, or 9,999 random ones when there are more), which keeps
the family-wise error at ``alpha`` without a Bonferroni penalty. Criterion: p ≥ 0.05. With too few
seeds to ever reach p < 0.05 the check is ``untested`` (the smallest attainable p is shown).

Use :func:`fidelity` for all three; ``hvae fidelity POLICY RUN_DIR`` prints it::

    from hvae.agents.surrogate import load_policy
    from hvae.analysis.runfolder import RunFolder
    result = fidelity(load_policy("policy.yaml"), [RunFolder("runs/llm")])
    print(result.text())
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hvae.analysis.rationality import behavioural, decision_scores, first_shown, menu_options
from hvae.analysis.rundata import RunData
from hvae.files.atomic import write_bytes_atomic
from hvae.files.untrusted import one_line, read_regular

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hvae.agents.surrogate import SurrogatePolicy

Verdict = Literal["pass", "fail", "untested"]
LEVEL = 0.95
CALIBRATION_ALPHA = 0.01  #: calibration is rejected below this p-value
POPULATION_ALPHA = 0.05  #: the population test's level
SMOOTHING = 0.5  #: added to every option's count in the split-half prediction (Jeffreys)
MIN_AGENTS = 4  #: fewer agents than this: no cross-validation by agent (each part needs two)
_PERMUTATIONS = 9999
ITEMS_SHOWN = 12  #: calibration items outside the model's range printed by :meth:`Fidelity.text`
#: Tables of a check's ``extra`` kept in the record: calibration per item, value shares over time per side.
RECORDED_TABLES = ("calibration", "llm", "surrogate")


@dataclass(frozen=True)
class Check:
    """One level of fidelity: its verdict, the criterion it was judged by, and the figures behind it."""

    name: str
    verdict: Verdict
    criterion: str
    table: pd.DataFrame
    figures: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Fidelity:
    """The three checks of one policy against one set of LLM runs."""

    checks: tuple[Check, ...]
    policy: str
    runs: tuple[str, ...]

    @property
    def label(self) -> str:
        """``failing`` if any check fails, ``passing`` if all three pass, else ``incomplete``."""
        verdicts = [c.verdict for c in self.checks]
        if "fail" in verdicts:
            return "failing"
        if len(verdicts) == 3 and all(v == "pass" for v in verdicts):
            return "passing"
        return "incomplete"

    def check(self, name: str) -> Check:
        """The check called ``name`` (``decisions``, ``agents`` or ``population``)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def text(self) -> str:
        """Plain-text form (``hvae fidelity`` prints it)."""
        lines = [f"surrogate {self.policy}: {self.label.upper()}", f"LLM runs: {', '.join(self.runs)}"]
        for check in self.checks:
            lines += ["", f"{check.name}: {check.verdict.upper()}", f"  criterion: {check.criterion}"]
            lines += [f"  {name}: {_number(value)}" for name, value in check.figures.items()]
            lines += [f"  note: {note}" for note in check.notes]
            if not check.table.empty:
                lines += ["  " + line for line in _table_text(check.table)]
            items = check.extra.get("calibration")
            if items is not None and len(items):
                observed = items["observed"].to_numpy(dtype=float)
                outside = items.loc[(observed < items["low"].to_numpy(dtype=float)) | (observed > items["high"].to_numpy(dtype=float))]
                lines.append(f"  calibration: {len(outside)} of {len(items)} items (menu, option shown first, option) observed outside the "
                             f"model's 95% range{':' if len(outside) else ''}")
                shown = _table_text(outside.head(ITEMS_SHOWN)) if len(outside) else []
                lines += ["    " + line for line in shown]
                if len(outside) > ITEMS_SHOWN:
                    lines.append(f"    … {len(outside) - ITEMS_SHOWN} more in the record (JSON)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (verdicts, criteria, figures, tables as records)."""
        return {
            "policy": self.policy, "runs": list(self.runs), "label": self.label,
            "checks": [{"name": c.name, "verdict": c.verdict, "criterion": c.criterion,
                        "figures": {k: _json_number(v) for k, v in c.figures.items()}, "notes": list(c.notes),
                        "table": _records(c.table),
                        **{name: _records(frame) for name, frame in c.extra.items() if name in RECORDED_TABLES}}
                       for c in self.checks],
        }


def _table_text(frame: pd.DataFrame) -> list[str]:
    """A table's lines as printed: numbers to 4 significant digits, "–" for undefined."""
    shown = frame.apply(lambda column: column.map(_number) if column.dtype.kind == "f" else column)
    return shown.to_string(index=False).splitlines()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _json_number(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _number(value: float) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _json_number(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ---------------------------------------------------------------------------------- predictions
def unit_keys(policy: SurrogatePolicy, decisions: pd.DataFrame) -> np.ndarray:
    """Per decision, the key of the policy unit that decides it (group name, value angle or agent id)."""
    column = {"group": "group", "value": "value_angle", "agent": "agent_id"}[policy.by]
    values = decisions[column].to_numpy()
    if policy.by == "value":
        return np.array([f"{float(v):g}" for v in values], dtype=object)
    return np.array([str(v) for v in values], dtype=object)


def _unit(policy: SurrogatePolicy, key: str):
    if policy.by == "group":
        return policy.unit_for(group=key)
    if policy.by == "value":
        return policy.unit_for(theta=float(key))
    return policy.unit_for(agent_id=int(key))


def probabilities(policy: SurrogatePolicy, decisions: pd.DataFrame, menus: pd.DataFrame) -> np.ndarray:
    """``(n, K)`` choice probabilities of the policy for each decision row (K the largest menu; 0-padded).

    Each row uses its unit's parameters, the row's canonical menu, the option shown first
    (``shown_order``) and what the current partner gave the agent last time
    (:func:`hvae.analysis.distil.partner_gave`).
    """
    from hvae.agents.surrogate import choice_probabilities
    from hvae.analysis.distil import partner_gave

    options_by_menu = menu_options(menus)
    menu_ids = decisions["menu_id"].astype(str).to_numpy()
    width = max((len(options_by_menu[m]) for m in set(menu_ids)), default=1)
    out = np.zeros((len(decisions), width))
    if decisions.empty:
        return out
    keys = unit_keys(policy, decisions)
    first = first_shown(decisions)
    gave = np.nan_to_num(np.asarray(partner_gave(decisions, menus), dtype=float))
    units = {key: _unit(policy, key) for key in set(keys)}
    params = np.array([[units[k].theta, units[k].beta, units[k].position, units[k].reciprocity] for k in keys], dtype=float)
    for menu_id in set(menu_ids):
        rows = np.flatnonzero(menu_ids == menu_id)
        options = options_by_menu[menu_id]
        p = choice_probabilities(params[rows, 0], params[rows, 1], params[rows, 2], params[rows, 3], options,
                                 first[rows], gave[rows])
        out[rows, : len(options)] = p
    return out


def menu_sizes(decisions: pd.DataFrame, menus: pd.DataFrame) -> np.ndarray:
    """Options per decision's menu."""
    sizes = {m: len(o) for m, o in menu_options(menus).items()}
    return np.array([sizes[m] for m in decisions["menu_id"].astype(str)], dtype=np.int64)


# ---------------------------------------------------------------------------------- bootstrap
def _cluster_means(numerators: np.ndarray, denominators: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates ``(n_boot, m)`` of ratio-of-sums means, agents resampled with replacement.

    ``numerators`` is ``(agents, m)`` (per-agent sums of m figures), ``denominators`` ``(agents,)`` or
    ``(agents, m)`` (per-agent counts).
    """
    agents = numerators.shape[0]
    counts = rng.multinomial(agents, np.full(agents, 1.0 / agents), size=n_boot).astype(float)
    denominators = denominators if denominators.ndim == 2 else denominators[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ numerators) / (counts @ denominators)


def _percentile(replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 50 * (1 - level)
    return np.nanpercentile(replicates, tail, axis=0), np.nanpercentile(replicates, 100 - tail, axis=0)


# ---------------------------------------------------------------------------------- decisions
def _share_inside(items: pd.DataFrame) -> float:
    """Share of calibration items whose observed share lies in the model's 95% range."""
    observed, low, high = (items[c].to_numpy(dtype=float) for c in ("observed", "low", "high"))
    return float(((observed >= low) & (observed <= high)).mean()) if len(items) else math.nan


def agent_folds(agent_ids: Sequence[Any], folds: int, seed: int) -> dict[Any, int]:
    """Agents assigned at random (``seed``) to ``folds`` parts of (nearly) equal size."""
    agents = sorted(set(agent_ids), key=str)
    order = np.random.default_rng(seed).permutation(len(agents))
    return {agents[j]: int(i % folds) for i, j in enumerate(order)}


def held_out(policy: SurrogatePolicy, decisions: pd.DataFrame, menus: pd.DataFrame, *, folds: int = 2,
             seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Held-out log-likelihoods per valid decision (module docstring), and the held-out probabilities.

    Returns a frame (``agent_id``, ``fold``, ``menu_id``, ``choice``, ``k``, ``ll_surrogate``,
    ``ll_uniform``, ``ll_split``) over the behavioural rows and their ``(n, K)`` predicted
    probabilities under the refitted policy.
    """
    from hvae.analysis.distil import distil_decisions

    rows = decisions.loc[behavioural(decisions)].reset_index(drop=True)
    fold_of = agent_folds(rows["agent_id"].tolist(), folds, seed)
    fold = np.array([fold_of[a] for a in rows["agent_id"]], dtype=np.int64)
    k = menu_sizes(rows, menus)
    choice = rows["choice"].to_numpy(dtype=np.int64)
    cells = pd.Series(unit_keys(policy, rows)).astype(str) + "|" + rows["menu_id"].astype(str) + "|" + pd.Series(
        first_shown(rows)).astype(str)
    width = int(k.max()) if len(k) else 1
    predicted = np.zeros((len(rows), width))
    split = np.zeros(len(rows))
    for part in range(folds):
        test = fold == part
        train_ids = sorted({a for a, f in fold_of.items() if f != part}, key=str)
        train_rows = decisions.loc[decisions["agent_id"].isin(train_ids).to_numpy()]
        refit = distil_decisions(train_rows, by=policy.by, agents=train_ids, menus=menus, features=tuple(policy.features))
        predicted[test] = probabilities(refit, rows.loc[test], menus)[:, :width]
        counts = pd.crosstab(cells[~test], choice[~test])
        table = counts.reindex(columns=range(width), fill_value=0)
        seen = cells[test].isin(table.index).to_numpy()
        got = np.zeros(test.sum())
        total = np.zeros(test.sum())
        if seen.any():
            sub = table.loc[cells[test][seen]].to_numpy(dtype=float)
            got[seen] = sub[np.arange(seen.sum()), choice[test][seen]]
            total[seen] = sub.sum(axis=1)
        split[test] = np.log((got + SMOOTHING) / (total + SMOOTHING * k[test]))
    with np.errstate(divide="ignore"):
        ll = np.log(predicted[np.arange(len(rows)), choice])
    out = pd.DataFrame({"agent_id": rows["agent_id"].to_numpy(), "fold": fold, "menu_id": rows["menu_id"].astype(str),
                        "shown_first": first_shown(rows), "choice": choice, "k": k, "ll_surrogate": ll,
                        "ll_uniform": -np.log(k), "ll_split": split})
    return out, predicted


def pearson_x2(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's X² of counts (cells with expectation 0 and no observation add nothing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (observed - expected) ** 2 / np.where(expected > 0, expected, 1),
                         np.where(observed > 0, np.inf, 0.0))
    return float(terms.sum())


def calibration(predicted: np.ndarray, frame: pd.DataFrame, *, n_sim: int = 999,
                seed: int = 0) -> tuple[pd.DataFrame, float, float]:
    """Observed vs predicted choice shares per menu, option shown first and option (module
    docstring), X² and its p-value. Cells keep the display apart: pooled over counterbalanced
    displays, a chooser's pull to the first position cancels out and a surrogate without it
    would look calibrated."""
    menu_ids = frame["menu_id"].to_numpy()
    shown = frame["shown_first"].to_numpy(dtype=np.int64) if "shown_first" in frame else np.full(len(frame), -1)
    choice = frame["choice"].to_numpy(dtype=np.int64)
    rows, observed, expected = [], [], []
    index = {cell: np.flatnonzero((menu_ids == cell[0]) & (shown == cell[1]))
             for cell in sorted(set(zip(menu_ids.tolist(), shown.tolist())))}
    for (menu_id, first), at in index.items():
        k = int(frame["k"].to_numpy()[at[0]])
        p = predicted[at, :k]
        obs = np.bincount(choice[at], minlength=k).astype(float)
        exp = p.sum(axis=0)
        sd = np.sqrt((p * (1 - p)).sum(axis=0))
        n = len(at)
        for option in range(k):
            rows.append({"menu_id": menu_id, "shown_first": first, "option": option, "n": n, "observed": obs[option] / n,
                         "predicted": exp[option] / n, "low": (exp[option] - 1.96 * sd[option]) / n,
                         "high": (exp[option] + 1.96 * sd[option]) / n})
        observed.append(obs)
        expected.append(exp)
    table = pd.DataFrame(rows, columns=["menu_id", "shown_first", "option", "n", "observed", "predicted", "low", "high"])
    if not rows:
        return table, math.nan, math.nan
    x2 = sum(pearson_x2(o, e) for o, e in zip(observed, expected))
    rng = np.random.default_rng(seed)
    simulated = np.zeros(n_sim)
    for at, exp in zip(index.values(), expected):
        k = len(exp)
        p = predicted[at, :k]
        cumulative = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        draws = (rng.random((n_sim, len(at), 1)) > cumulative[None]).sum(axis=2)  # inverse-cdf draws
        draws = np.minimum(draws, k - 1)
        counts = np.stack([np.bincount(d, minlength=k) for d in draws])
        with np.errstate(divide="ignore", invalid="ignore"):
            simulated += np.where(exp > 0, (counts - exp) ** 2 / np.where(exp > 0, exp, 1), 0.0).sum(axis=1)
    p_value = float((1 + (simulated >= x2 - 1e-9).sum()) / (n_sim + 1))
    return table, x2, p_value


def decisions_check(policy: SurrogatePolicy, decisions: pd.DataFrame, menus: pd.DataFrame, *, folds: int = 2,
                    seed: int = 0, n_boot: int = 2000, n_sim: int = 999) -> Check:
    """Held-out log-likelihood against uniform and split-half, and calibration (module docstring)."""
    criterion = (f"held-out log-likelihood per decision ({folds}-fold by agent) above the uniform chooser's and not "
                 f"below the LLM's split-half agreement ({LEVEL:.0%} cluster-bootstrap intervals); calibration "
                 f"X² p ≥ {CALIBRATION_ALPHA}")
    agents = len(set(decisions.loc[behavioural(decisions), "agent_id"].tolist()))
    if policy.by == "agent":
        return Check("decisions", "untested", criterion, pd.DataFrame(),
                     notes=("a per-agent policy has no unit for a held-out agent: it cannot be cross-validated by agent",))
    if agents < max(MIN_AGENTS, 2 * folds):
        return Check("decisions", "untested", criterion, pd.DataFrame(),
                     notes=(f"{agents} agents with valid decisions: cross-validation by agent needs {max(MIN_AGENTS, 2 * folds)}",))
    from hvae.analysis.distil import DistilError

    try:
        frame, predicted = held_out(policy, decisions, menus, folds=folds, seed=seed)
    except DistilError as error:  # a part too small to refit a unit on
        return Check("decisions", "untested", criterion, pd.DataFrame(), notes=(f"refit on a part failed: {error}",))
    per_agent = frame.groupby("agent_id").agg(surrogate=("ll_surrogate", "sum"), uniform=("ll_uniform", "sum"),
                                              split=("ll_split", "sum"), n=("ll_uniform", "size"))
    n = per_agent["n"].to_numpy(dtype=float)
    sums = per_agent[["surrogate", "uniform", "split"]].to_numpy(dtype=float)
    sums = np.column_stack([sums, sums[:, 0] - sums[:, 1], sums[:, 0] - sums[:, 2]])
    point = sums.sum(axis=0) / n.sum()
    low, high = _percentile(_cluster_means(sums, n, n_boot, np.random.default_rng(seed)), LEVEL)
    names = ["surrogate", "uniform", "split-half", "surrogate − uniform", "surrogate − split-half"]
    table = pd.DataFrame({"log-likelihood per decision": names, "value": point, "low": low, "high": high})
    cal, x2, p_value = calibration(predicted, frame, n_sim=n_sim, seed=seed)
    ok = bool(low[3] > 0) and bool(high[4] >= 0) and not (p_value < CALIBRATION_ALPHA)
    figures = {"held-out decisions": float(len(frame)), "agents": float(agents), "calibration X²": x2,
               "calibration p": p_value,
               "items within the model's 95% range": _share_inside(cal)}
    notes = []
    if not np.isfinite(point[0]):
        notes.append("the refitted surrogate gives probability 0 to an observed choice")
    return Check("decisions", "pass" if ok else "fail", criterion, table, figures, tuple(notes), {"calibration": cal})


# ---------------------------------------------------------------------------------- agents
def replay(policy: SurrogatePolicy, decisions: pd.DataFrame, menus: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The policy's decisions on the LLM's own displays: each valid LLM decision with its choice redrawn.

    Menu, display order (``shown_order``, ``options_shown``), partner and value are the LLM's; the
    choice is drawn from :func:`probabilities`, and ``chosen_position``, ``self_amount`` and
    ``other_amount`` follow from it. Every row is valid (the LLM's invalid replies have no display
    to replay a behaviour on).
    """
    rows = decisions.loc[behavioural(decisions)].reset_index(drop=True)
    p = probabilities(policy, rows, menus)
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(p, axis=1)
    choice = np.minimum((rng.random((len(rows), 1)) * cumulative[:, -1:] > cumulative).sum(axis=1), p.shape[1] - 1)
    options_by_menu = menu_options(menus)
    amounts = np.array([options_by_menu[m][c] for m, c in zip(rows["menu_id"].astype(str), choice)]).reshape(-1, 2)
    position = np.array([
        ([int(x) for x in str(order).split(",")].index(int(c)) if isinstance(order, str) and order else int(c))
        for order, c in zip(rows["shown_order"] if "shown_order" in rows else [None] * len(rows), choice)
    ], dtype=np.int64)
    out = rows.assign(choice=choice, chosen_position=position, self_amount=amounts[:, 0], other_amount=amounts[:, 1],
                      valid=True)
    return out


def _per_agent_sums(frame: pd.DataFrame, column: str, groups: pd.Series) -> pd.DataFrame:
    values = frame[column].astype(float)
    defined = values.notna()
    table = pd.DataFrame({"group": groups, "agent_id": frame["agent_id"], "sum": values.where(defined, 0.0),
                          "n": defined.astype(float)})
    return table.groupby(["group", "agent_id"]).agg(sum=("sum", "sum"), n=("n", "sum"))


def agents_check(policy: SurrogatePolicy, decisions: pd.DataFrame, menus: pd.DataFrame, *, seed: int = 0,
                 n_boot: int = 2000) -> Check:
    """Decision VR, revealed angle and first-position share of the surrogate vs the LLM (module docstring)."""
    from hvae.analysis.position import position_bias
    from hvae.analysis.revealed import format_revealed, revealed_angles

    llm = decisions[behavioural(decisions)].reset_index(drop=True)
    criterion = ("per group: the surrogate − LLM differences of decision VR and first-position share have "
                 f"{LEVEL:.0%} family-wise cluster-bootstrap intervals (Bonferroni) containing 0, and the "
                 "revealed angles' 95% intervals overlap")
    if llm.empty:
        return Check("agents", "untested", criterion, pd.DataFrame(), notes=("no valid LLM decisions",))
    llm = llm.assign(group=llm["group"].astype(str))
    surrogate = replay(policy, llm, menus, seed=seed)
    groups = sorted(llm["group"].unique())
    level = 1 - (1 - LEVEL) / (2 * len(groups))
    sides = {"llm": llm, "surrogate": surrogate}
    vr = {name: frame.assign(vr=decision_scores(frame, menus)["decision_vr"]) for name, frame in sides.items()}
    first = {name: frame.assign(first=(frame["chosen_position"] == 0).astype(float).where(frame["chosen_position"] >= 0))
             for name, frame in sides.items()}
    rng = np.random.default_rng(seed)
    rows = []
    ok = True
    untested = []
    fits = {name: revealed_angles(frame, menus, ["group"]).set_index("group") for name, frame in sides.items()}
    shares = {name: position_bias(frame, ["group"]).set_index("group") for name, frame in sides.items()}
    for group in groups:
        row: dict[str, Any] = {"group": group, "agents": int(llm.loc[llm["group"] == group, "agent_id"].nunique())}
        for label, data, column in (("decision VR", vr, "vr"), ("first share", first, "first")):
            a = _per_agent_sums(data["llm"][data["llm"]["group"] == group], column, data["llm"]["group"])
            b = _per_agent_sums(data["surrogate"][data["surrogate"]["group"] == group], column, data["surrogate"]["group"])
            both = pd.concat([a.add_suffix("_llm"), b.add_suffix("_sur")], axis=1).fillna(0.0)
            num = both[["sum_llm", "sum_sur"]].to_numpy()
            den = both[["n_llm", "n_sur"]].to_numpy()
            if den[:, 0].sum() == 0:
                row.update({f"{label} LLM": math.nan, f"{label} surrogate": math.nan, f"{label} diff low": math.nan,
                            f"{label} diff high": math.nan})
                continue
            reps = _cluster_means(num, den, n_boot, rng)
            low, high = _percentile(reps[:, 1] - reps[:, 0], level)
            llm_value, sur_value = num.sum(axis=0) / den.sum(axis=0)
            row.update({f"{label} LLM": llm_value, f"{label} surrogate": sur_value,
                        f"{label} diff low": float(low), f"{label} diff high": float(high)})
            if np.isfinite(low) and not (low <= 0 <= high):
                ok = False
        fit_l, fit_s = fits["llm"].loc[group], fits["surrogate"].loc[group]
        row["revealed LLM"] = format_revealed(fit_l["theta"], fit_l["ci_low"], fit_l["ci_high"], fit_l["identification"])
        row["revealed surrogate"] = format_revealed(fit_s["theta"], fit_s["ci_low"], fit_s["ci_high"], fit_s["identification"])
        if pd.isna(fit_l["ci_low"]) or pd.isna(fit_s["ci_low"]):
            untested.append(f"{group}: revealed angle not identified on one side")
        elif fit_l["ci_high"] < fit_s["ci_low"] or fit_s["ci_high"] < fit_l["ci_low"]:
            ok = False
        for name in sides:
            row[f"first share p ({name})"] = float(shares[name].loc[group, "p_value"]) if group in shares[name].index else math.nan
        rows.append(row)
    verdict: Verdict = "pass" if ok else "fail"
    return Check("agents", verdict, criterion, pd.DataFrame(rows), {"decisions replayed": float(len(surrogate))},
                 tuple(untested), {"replay": surrogate})


# ---------------------------------------------------------------------------------- population
def population_figures(run: RunData) -> dict[str, float]:
    """Per run: each category's final and mean share, each group's mean payoff over rounds."""
    from hvae.analysis.population import per_round, value_shares

    out: dict[str, float] = {}
    shares = value_shares(run)
    for category in shares.columns:
        column = shares[category].to_numpy(dtype=float)
        out[f"final share {category}"] = float(column[-1])
        out[f"mean share {category}"] = float(column.mean())
    payoffs = per_round(run, "group")
    for group, part in payoffs.groupby("group", sort=True):
        out[f"mean payoff {group}"] = float(part["mean_payoff"].to_numpy(dtype=float).mean())
    return out


def max_t_permutation(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> tuple[float, float, float]:
    """Two-sample permutation test of the largest standardised difference of column means.

    ``a`` and ``b`` are ``(runs, figures)``. Statistic: ``max_j |mean_a,j − mean_b,j| / sd_j`` with
    ``sd_j`` the standard deviation of column j over all runs (invariant under relabelling; columns
    with sd 0 are left out unless their means differ, which makes the statistic infinite). Exact
    over all assignments when there are at most :data:`_PERMUTATIONS` of them, else that many random
    ones (p counts the observed assignment). Returns ``(statistic, p_value, smallest attainable p)``.
    """
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    pooled = np.vstack([a, b])
    n, na = len(pooled), len(a)
    sd = pooled.std(axis=0, ddof=1) if n > 1 else np.zeros(pooled.shape[1])
    scale = np.where(sd > 0, sd, 1.0)

    def statistic(first: np.ndarray) -> np.ndarray:
        mask = np.zeros((len(first), n), dtype=bool)
        np.put_along_axis(mask, first, True, axis=1)
        mean_a = (mask[:, :, None] * pooled[None]).sum(1) / na
        mean_b = (~mask[:, :, None] * pooled[None]).sum(1) / (n - na)
        diff = np.abs(mean_a - mean_b) / scale
        diff = np.where(sd > 0, diff, np.where(diff > 1e-12, np.inf, 0.0))
        return diff.max(axis=1)

    total = math.comb(n, na)
    observed = float(statistic(np.arange(na)[None])[0])
    if total <= _PERMUTATIONS:
        assignments = np.array(list(itertools.combinations(range(n), na)))
        values = statistic(assignments)
        p_value = float((values >= observed - 1e-12).mean())
        smallest = 2.0 / total if na * 2 == n else 1.0 / total
        return observed, p_value, smallest
    rng = np.random.default_rng(seed)
    assignments = np.sort(np.argsort(rng.random((_PERMUTATIONS, n)), axis=1)[:, :na], axis=1)
    values = statistic(assignments)
    return observed, float((1 + (values >= observed - 1e-12).sum()) / (_PERMUTATIONS + 1)), 1.0 / (_PERMUTATIONS + 1)


def _long_shares(wide: pd.DataFrame) -> pd.DataFrame:
    """``round`` × category shares (wide) as rows of ``round``, ``category``, ``share``."""
    return pd.DataFrame([{"round": r, "category": str(c), "share": float(v)}
                         for r, row in zip(wide.index, wide.to_numpy(dtype=float)) for c, v in zip(wide.columns, row)],
                        columns=["round", "category", "share"])


def population_check(llm_runs: Sequence[RunData], surrogate_runs: Sequence[RunData], *, seed: int = 0) -> Check:
    """Value shares and payoffs of the LLM's runs vs the surrogates' runs (module docstring)."""
    from hvae.analysis.population import across_seeds, value_shares

    criterion = (f"two-sample permutation test of the largest standardised difference (final and mean value shares, "
                 f"mean payoff by group) over seeds: p ≥ {POPULATION_ALPHA}")
    if not llm_runs or not surrogate_runs:
        return Check("population", "untested", criterion, pd.DataFrame(), notes=("no runs on one side",))
    per_run = {"llm": [population_figures(r) for r in llm_runs], "surrogate": [population_figures(r) for r in surrogate_runs]}
    names = sorted(set().union(*[set(f) for side in per_run.values() for f in side]))
    matrix = {side: np.array([[f.get(name, 0.0) for name in names] for f in runs]) for side, runs in per_run.items()}
    rows = []
    from hvae.analysis.intervals import t_interval

    for j, name in enumerate(names):
        row: dict[str, Any] = {"figure": name}
        for side in ("llm", "surrogate"):
            mean, low, high = t_interval(matrix[side][:, j])
            row.update({f"{side}": mean, f"{side} low": low, f"{side} high": high})
        rows.append(row)
    statistic, p_value, smallest = max_t_permutation(matrix["llm"], matrix["surrogate"], seed=seed)
    figures = {"LLM seeds": float(len(llm_runs)), "surrogate seeds": float(len(surrogate_runs)),
               "largest standardised difference": statistic, "p": p_value, "smallest attainable p": smallest}
    over_time = {}
    for side, runs in (("llm", llm_runs), ("surrogate", surrogate_runs)):
        frames = [_long_shares(value_shares(r)) for r in runs]
        over_time[side] = across_seeds(frames, ["round", "category"], ["share"])
    if smallest >= POPULATION_ALPHA:
        return Check("population", "untested", criterion, pd.DataFrame(rows), figures,
                     (f"{len(llm_runs)} LLM and {len(surrogate_runs)} surrogate seeds: the test cannot reach "
                      f"p < {POPULATION_ALPHA} (smallest attainable p {smallest:.3g}); play more seeds",), over_time)
    verdict: Verdict = "fail" if p_value < POPULATION_ALPHA else "pass"
    return Check("population", verdict, criterion, pd.DataFrame(rows), figures, (), over_time)


# ---------------------------------------------------------------------------------- all three
def fidelity(policy: SurrogatePolicy, llm_runs: Sequence[RunData], surrogate_runs: Sequence[RunData] = (), *,
             policy_label: str = "policy", folds: int = 2, seed: int = 0, n_boot: int = 2000) -> Fidelity:
    """The three checks of ``policy`` against ``llm_runs`` (decisions and agents pooled over the runs).

    With several LLM runs (seeds) their agents are told apart by run (``agent_id`` becomes
    ``"<run>:<id>"`` for the decisions and agents checks). ``surrogate_runs`` are the same scenario
    played by the surrogates (:func:`hvae.experiments.fidelity.surrogate_runs`); without them the
    population check is ``untested``.
    """
    decisions, menus = pooled_decisions(llm_runs)
    decisions = decisions.loc[covered(policy, decisions)]
    checks = (
        decisions_check(policy, decisions, menus, folds=folds, seed=seed, n_boot=n_boot),
        agents_check(policy, decisions, menus, seed=seed, n_boot=n_boot),
        population_check(llm_runs, surrogate_runs, seed=seed),
    )
    return Fidelity(checks, policy_label, tuple(r.label for r in llm_runs))


def covered(policy: SurrogatePolicy, decisions: pd.DataFrame) -> np.ndarray:
    """Mask of the decisions the surrogate stands in for: the LLM's (``decider == "llm"``; every row
    when no LLM decided, e.g. a run of another model-free stand-in) of the units the policy has.

    A run mixes LLM groups with rule groups (oracles, reciprocal agents); those are not the
    surrogate's to reproduce.
    """
    mask = np.ones(len(decisions), dtype=bool)
    if "decider" in decisions:
        llm = (decisions["decider"].astype(str) == "llm").to_numpy()
        if llm.any():
            mask &= llm
    if policy.by != "value":
        keys = unit_keys(policy, decisions)
    else:
        from hvae.agents.surrogate import value_key

        keys = np.array([value_key(float(v)) for v in decisions["value_angle"]], dtype=object)
    return mask & np.isin(keys.astype(str), list(policy.units))


def pooled_decisions(runs: Sequence[RunData]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs' decisions stacked and their menus; with several runs, agent ids are made distinct per run.

    Run ``i``'s agent (and partner) ids are shifted by ``i × (largest id + 1)``, so one agent of two
    seeds counts as two agents (clusters) and partners stay within their run.
    """
    if not runs:
        raise ValueError("fidelity needs at least one LLM run")
    menus = runs[0].menus()
    frames = [run.decisions() for run in runs]
    if len(frames) == 1:
        return frames[0], menus
    stride = 1 + max(int(f["agent_id"].to_numpy().max()) for f in frames if len(f))
    shifted = []
    for i, frame in enumerate(frames):
        partner = frame["partner_id"].to_numpy()
        shifted.append(frame.assign(agent_id=frame["agent_id"] + i * stride,
                                    partner_id=np.where(partner >= 0, partner + i * stride, partner),
                                    group=frame["group"].astype(str), menu_id=frame["menu_id"].astype(str),
                                    decider=frame["decider"].astype(str), value_category=frame["value_category"].astype(str),
                                    options_shown=frame["options_shown"].astype(str)))
    return pd.concat(shifted, ignore_index=True), menus


# ---------------------------------------------------------------------------------- the record beside the policy
RECORD_FORMAT = "hvae-fidelity/1"
MAX_RECORD_BYTES = 16 << 20  #: largest fidelity record read (the calibration table of a big policy stays far below)


def record_path(policy_path: str | Path) -> Path:
    """Where ``hvae fidelity`` keeps its result for a policy: ``policy.yaml`` → ``policy.fidelity.json``."""
    policy_path = Path(policy_path)
    return policy_path.with_name(f"{policy_path.stem}.fidelity.json")


def policy_digest(policy_path: str | Path) -> str:
    """SHA-256 of the policy file's bytes (a record applies only to the exact policy it measured)."""
    from hvae.agents.surrogate import MAX_POLICY_BYTES

    return hashlib.sha256(read_regular(policy_path, "policy file", MAX_POLICY_BYTES)).hexdigest()


def save_record(result: Fidelity, policy_path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``result`` as JSON (default: :func:`record_path`), tied to the policy file by its digest."""
    target = Path(out) if out is not None else record_path(policy_path)
    data = {"format": RECORD_FORMAT, "policy_sha256": policy_digest(policy_path), **result.to_dict()}
    write_bytes_atomic(target, json.dumps(data, indent=1, allow_nan=False).encode("utf-8"))
    return target


def read_record(policy_path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """The fidelity record of a policy file, or None and why (none yet, another policy's, unreadable)."""
    path = record_path(policy_path)
    if not path.exists():
        return None, f"no fidelity record ({path.name}) beside the policy"
    try:
        data = json.loads(read_regular(path, "fidelity record", MAX_RECORD_BYTES).decode("utf-8"))
        digest = policy_digest(policy_path)
    except (OSError, ValueError) as error:  # UnsafeFile, JSON and Unicode errors are ValueErrors
        return None, f"{path.name}: unreadable ({one_line(error, 160)})"
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        return None, f"{path.name} is not a fidelity record"
    if data.get("policy_sha256") != digest:
        return None, f"{path.name} measured another version of the policy (the file changed since)"
    return data, ""


# ---------------------------------------------------------------------------------- the figure
def population_figure(check: Check) -> Figure | None:
    """Value shares over time, LLM beside surrogate: mean over seeds with 95% t-interval bands.

    None when the population check has no per-round shares (no runs, or no agent acts on its value).
    """
    from matplotlib.figure import Figure

    from hvae.analysis.figure_tools import _lines_with_bands, _round_axis, _style
    from hvae.analysis.palette import CATEGORY_COLORS

    over_time = {side: frame for side, frame in check.extra.items() if side in ("llm", "surrogate") and not frame.empty}
    if len(over_time) < 2:
        return None
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=(12.0, 4.4))
        axes = fig.subplots(1, 2, sharey=True)
    for axis, (side, frame) in zip(axes, over_time.items()):
        frame = frame.rename(columns={"category": "group"})
        names = [n for n in CATEGORY_COLORS if n in set(frame["group"])]
        _lines_with_bands(axis, frame, "share", names, {n: CATEGORY_COLORS[n] for n in names})
        seeds = int(frame["n_seeds"].to_numpy().max()) if len(frame) else 0
        axis.set_title(f"{'LLM agents' if side == 'llm' else 'their surrogates'} ({seeds} seeds)", fontsize=10.5)
        axis.set_ylim(0, 1)
        axis.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        _round_axis(axis)
    axes[0].set_ylabel("value share (agents that act on their value)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="category")
    fig.suptitle(f"Population fidelity: value shares over time, mean over seeds with 95% t-interval bands — "
                 f"{check.verdict.upper()} (p = {_number(check.figures.get('p', math.nan))})", fontsize=11)
    return fig
