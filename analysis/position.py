"""Position bias: does an agent pick an option for *where* it was shown rather than what it is?

LLM deciders see each menu's options in a counterbalanced order (``order: reverse_half`` or
``shuffle``), and every decision records ``chosen_position`` — where the chosen option stood in
the display (0 = the first, shown as "A"). A chooser without a position preference picks the
first shown option with probability 1/k on a k-option menu, whatever its value; a value-blind
model that always answers "A" picks it every time, and with counterbalancing its *choices* are
then spread over the menu by the display order alone — which is why its value rationality can
sit near chance rather than at zero.

:func:`position_bias` gives, per group of rows: ``n_valid`` (valid decisions with a recorded
position), ``first_share`` (share at the first position), ``first_expected`` (the mean of 1/k over
the same decisions: the share without a position preference) and ``p_value`` (a two-sided exact
test of "no position preference": binomial, or Poisson-binomial by convolution when menu sizes
differ; NaN without data).
Only valid decisions count: a random fallback's position says nothing about the model.

    from hvae.analysis.runfolder import RunFolder
    position_bias(RunFolder("runs/quickstart").decisions(), ["group"])
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def poisson_binomial_pmf(probabilities: np.ndarray) -> np.ndarray:
    """P(S = s) for s = 0..n, S the number of successes of independent Bernoulli(p_i) trials."""
    pmf = np.array([1.0])
    for p in np.asarray(probabilities, dtype=float):
        pmf = np.convolve(pmf, [1.0 - p, p])
    return pmf


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
    """First-position share per group beside its no-preference expectation (see the module doc)."""
    columns = [*by, "n_valid", "first_share", "first_expected", "p_value"]
    if "chosen_position" not in decisions or decisions.empty:
        return pd.DataFrame(columns=columns)
    valid = decisions["valid"].astype(bool) if "valid" in decisions else pd.Series(True, index=decisions.index)
    rows = decisions[valid & decisions["chosen_position"].notna() & (decisions["chosen_position"] >= 0)]
    sizes = rows["options_shown"].astype(str).str.count(r"\|") + 1
    out = []
    for key, members in rows.groupby(by, observed=True, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        k = sizes.loc[members.index].to_numpy(dtype=float)
        first = int((members["chosen_position"] == 0).sum())
        p_first = 1.0 / k
        out.append(
            {**dict(zip(by, key)), "n_valid": len(members), "first_share": first / len(members),
             "first_expected": float(p_first.mean()), "p_value": first_position_p_value(first, p_first)}
        )
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
