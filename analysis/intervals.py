"""The one t-interval of hvae: mean and two-sided Student-t interval of independent values.

Used across seeds (:mod:`hvae.analysis.population`, the report's bands) and across questionnaire
repeats (:mod:`hvae.analysis.evaluation`). The quantile comes from ``scipy.special.stdtrit`` — the
function ``scipy.stats.t.ppf`` itself calls — so a caller need not import all of ``scipy.stats``::

    >>> mean, low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    >>> mean, round(low, 4), round(high, 4)
    (2.0, -0.4841, 4.4841)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import stdtrit


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of ``values`` (NaNs ignored; NaN interval for n < 2)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, np.nan, np.nan
    half = float(stdtrit(values.size - 1, 0.5 + level / 2) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half
