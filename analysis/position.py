"""Position bias: does an agent pick an option for *where* it was shown rather than what it is?

LLM deciders see each menu's options in a counterbalanced order (``order: reverse_half`` or
``shuffle``), and every decision records ``chosen_position`` — where the chosen option stood in
the display (0 = the first, shown as "A"). A chooser without a position preference picks the
first shown option with probability 1/k on a k-option menu, whatever its value; a value-blind
model that always answers "A" picks it every time, and with counterbalancing its *choices* are
then spread over the menu by the display order alone — which is why its value rationality can
sit near chance rather than at zero.

:func:`position_bias` gives, per group of rows: ``n_valid`` (valid decisions with a recorded
position), ``first_share`` (share at the first position), ``first_expected`` and ``p_value`` — the
**display-adjusted** expectation and exact two-sided test (:func:`display_adjusted_bias`: what the
same choices would give if the order shown did not change them), used wherever a first-position
share is judged (run summary, headline, report, leaderboard) — and, as context only,
``first_chance`` (the mean of 1/k: the share of a chooser indifferent to position *and* to the
options) with its test ``chance_p_value`` (binomial, or Poisson-binomial when menu sizes differ).
1/k is the wrong yardstick for a value-following chooser: the best option of a slider item sits at
an end of the menu and is shown first for half the counterbalanced displays, so a bias-free
value-rational chooser takes the first option far more than 1/9 of the time. Rows without the
canonical choice and display (``menu_id``, ``choice``, ``shown_order``) fall back to 1/k
(``adjusted`` False). Only valid decisions count: a random fallback's position says nothing about
the model.

    from hvae.analysis.runfolder import RunFolder
    position_bias(RunFolder("runs/quickstart").decisions(), ["group"])
"""

from __future__ import annotations

import numpy as np
import pandas as pd


#: Up to this many trials the Poisson-binomial pmf is built by exact convolution, one trial at a time.
EXACT_TRIALS = 2000


def poisson_binomial_pmf(probabilities: np.ndarray) -> np.ndarray:
    """P(S = s) for s = 0..n, S the number of successes of independent Bernoulli(p_i) trials.

    Up to :data:`EXACT_TRIALS` trials: convolution, one trial at a time (O(n²)). Beyond, the
    characteristic-function method (Hong 2013, "On computing the distribution function for the
    Poisson binomial distribution", the method of R's ``poibin``): the pmf is the inverse discrete
    Fourier transform of ``∏ (1 − p + p·e^{iω})`` over the trials, evaluated once per distinct
    probability (a run's decisions share a few hundred at most) on the window of ±40 standard
    deviations that holds the distribution. Its error is absolute, about 1e-12 (tested against the
    exact convolution): p-values are exact to that, and a probability below it reads as that
    noise, never as a smaller number.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.size <= EXACT_TRIALS:
        pmf = np.array([1.0])
        for q in p:
            pmf = np.convolve(pmf, [1.0 - q, q])
        return pmf
    distinct, counts = np.unique(p, return_counts=True)
    n = p.size
    # Outside mean ± h the pmf is below 1e-60 (Bernstein's inequality), so a transform of length
    # L = 2h + 1 holds it without wrapping: the window [start, start + L) is read back in place.
    mean, variance = float(p.sum()), float((p * (1.0 - p)).sum())
    half = int(np.ceil(40.0 * np.sqrt(variance) + 100.0))
    length = min(n + 1, 2 * half + 1)
    start = min(max(0, int(np.floor(mean)) - half), n + 1 - length)
    omega = 2.0 * np.pi * np.arange(length // 2 + 1) / length  # the frequencies an rfft of this length uses
    shift = np.exp(-1j * omega)  # numpy's forward transform: Σ_s pmf(s)·e^{−iωs}
    log_cf = np.zeros(omega.size, dtype=complex)
    for q, m in zip(distinct.tolist(), counts.tolist()):
        log_cf += m * np.log((1.0 - q) + q * shift)  # exp(Σ log) is the product, whatever the branch
    wrapped = np.clip(np.fft.irfft(np.exp(log_cf), length), 0.0, None)  # entry j: P(S ≡ j mod length)
    pmf = np.zeros(n + 1)
    pmf[start:start + length] = wrapped[np.arange(start, start + length) % length]
    return pmf / pmf.sum()


def first_position_p_value(successes: int, probabilities: np.ndarray) -> float:
    """Two-sided exact test: the probability of an outcome no more likely than ``successes``."""
    probabilities = np.asarray(probabilities, dtype=float)
    if len(probabilities) == 0:
        return float("nan")
    if np.ptp(probabilities) == 0:  # one menu size: the ordinary exact binomial test
        from scipy.stats import binomtest

        return float(binomtest(successes, len(probabilities), probabilities[0]).pvalue)
    pmf = poisson_binomial_pmf(probabilities)
    observed = pmf[successes]
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-9)].sum()))


def position_bias(decisions: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """First-position share per group beside its display-adjusted expectation (see the module doc)."""
    columns = [*by, "n_valid", "first_share", "first_expected", "p_value", "adjusted", "first_chance", "chance_p_value"]
    if "chosen_position" not in decisions or decisions.empty:
        return pd.DataFrame(columns=columns)
    valid = decisions["valid"].astype(bool) if "valid" in decisions else pd.Series(True, index=decisions.index)
    rows = decisions[valid & decisions["chosen_position"].notna() & (decisions["chosen_position"] >= 0)]
    from hvae.analysis.rationality import first_shown

    sizes = rows["options_shown"].astype(str).str.count(r"\|") + 1
    adjustable = all(c in rows for c in ("menu_id", "choice", "shown_order"))
    out = []
    for key, members in rows.groupby(by, observed=True, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        k = sizes.loc[members.index].to_numpy(dtype=float)
        first = int((members["chosen_position"] == 0).sum())
        p_first = 1.0 / k
        row = {**dict(zip(by, key)), "n_valid": len(members), "first_share": first / len(members),
               "first_chance": float(p_first.mean()), "chance_p_value": first_position_p_value(first, p_first)}
        shown = first_shown(members)
        if adjustable and (shown >= 0).all():
            items = members["menu_id"].astype(str)
            if "value_angle" in members:  # the same item under another value is another choice problem
                items = items + "|" + members["value_angle"].astype(str)
            adjusted = display_adjusted_bias(items.to_numpy(), members["choice"].to_numpy(dtype=np.int64), shown)
            row.update(first_expected=adjusted["first_expected"], p_value=adjusted["p_value"], adjusted=True)
        else:
            row.update(first_expected=row["first_chance"], p_value=row["chance_p_value"], adjusted=False)
        out.append(row)
    return pd.DataFrame(out, columns=columns)


def display_adjusted_bias(items: np.ndarray, choices: np.ndarray, first: np.ndarray) -> dict[str, float]:
    """First-position share against what the *same* choices would give if the display did not matter.

    ``items`` (which menu), ``choices`` (canonical option chosen) and ``first`` (canonical option
    shown first) per valid decision. The 1/k expectation of :func:`position_bias` assumes a chooser
    indifferent to the options too; a value-rational one takes the first option often as well (on
    a slider item the best option sits at an end of the menu, shown first for half of the
    counterbalanced displays). Here, under "the display order does not change what is chosen", each
    decision takes the option shown first with probability p̂ᵢ(first) — the share of that item's
    decisions (all displays pooled) that chose that option — so ``first_expected`` is the mean of
    those probabilities and ``p_value`` the exact two-sided Poisson-binomial test of the observed
    count. Returns ``n``, ``first_share``, ``first_expected``, ``p_value`` (NaN without data).
    """
    items, choices, first = map(np.asarray, (items, choices, first))
    n = len(choices)
    if n == 0:
        return {"n": 0, "first_share": float("nan"), "first_expected": float("nan"), "p_value": float("nan")}
    frame = pd.DataFrame({"item": items, "choice": choices, "first": first})
    shares = frame.groupby(["item", "choice"]).size() / frame.groupby("item").size()
    keys = pd.MultiIndex.from_arrays([frame["item"], frame["first"]])
    p = shares.reindex(keys).fillna(0.0).to_numpy(dtype=float)
    observed = int((choices == first).sum())
    p_value = first_position_p_value(observed, np.clip(p, 0.0, 1.0))
    return {"n": n, "first_share": observed / n, "first_expected": float(p.mean()), "p_value": p_value}
