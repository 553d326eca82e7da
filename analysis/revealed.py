"""Revealed angles of a run's decisions, group by group, and the text form of a fit.

The estimator itself (the logit choice model on the SVO ring, its profile-likelihood interval and
the identification of each fit) is :func:`hvae.agents.revealed.fit_revealed_angle`; this module
applies it to a run folder's ``decisions`` and ``menus`` tables and formats the result the same way
everywhere (terminal, HTML report)::

    from hvae.analysis.runfolder import RunFolder
    run = RunFolder("runs/demo")
    revealed_angles(run.decisions(), run.menus(), by=["group"])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hvae.agents.revealed import POINT_WIDTH, fit_revealed_angle


def revealed_angles(decisions: pd.DataFrame, menus: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One revealed-angle fit per group of ``by`` columns of a run's decisions.

    Columns: ``*by``, ``theta``, ``beta``, ``ci_low``, ``ci_high``, ``n``, ``identification``
    (``point``/``set``/``none``, see :mod:`hvae.agents.revealed`), ``consistent`` (True: the
    interval is the exact consistency set of an exact maximiser, not a 95% interval),
    ``position`` (the fitted first-position bonus b; 0 where no display order was recorded) and
    ``target_angle`` (the mean value in force when the decisions were made). Where the order shown
    was recorded (``shown_order``, LLM deciders) the first-position term is fitted with the angle.
    Only behaviour is fitted: decisions without a choice and invalid replies (whose choice came
    from a fallback) are skipped.
    """
    from hvae.analysis.rationality import behavioural, first_shown, menu_codes, menu_options

    options_by_menu = menu_options(menus)
    mask = behavioural(decisions)
    codes, names = menu_codes(decisions)
    columns = list(dict.fromkeys([*by, "choice", "value_angle"]))
    usable = decisions.loc[mask, columns].assign(_first=first_shown(decisions)[mask], _menu=codes[mask])
    # one options array per menu, shared by all its decisions (the estimator then converts each menu once)
    options_of = np.empty(len(names), dtype=object)
    for code in np.unique(codes[mask]):
        options_of[code] = options_by_menu[names[code]]
    rows = []
    for key, part in usable.groupby(by, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        fit = fit_revealed_angle(list(options_of[part["_menu"].to_numpy()]), part["choice"].to_numpy(),
                                 part["_first"].to_numpy())
        rows.append(
            {
                **dict(zip(by, key)),
                "theta": fit.theta,
                "beta": fit.beta,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "n": fit.n,
                "identification": fit.identification,
                "consistent": fit.consistent,
                "position": fit.position,
                "target_angle": float(part["value_angle"].mean()),
            }
        )
    columns = [*by, "theta", "beta", "ci_low", "ci_high", "n", "identification", "consistent", "position",
               "target_angle"]
    return pd.DataFrame(rows, columns=columns)


def _decimals(low: float, high: float) -> int:
    """1 decimal, or 2 when one decimal would print both ends of a narrow interval the same."""
    return 1 if f"{low:.1f}" != f"{high:.1f}" else 2


def _angle(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # never "-0.0"


def format_revealed(theta: float, low: float, high: float, identification: str | None = None) -> str:
    """The revealed angle as text, the same in the terminal, the HTML report and anywhere else.

    ``45.0 (44.8, 45.2)`` — point-identified, with its 95% interval; ``45.0 (exact)`` — the
    consistency set of an exact maximiser is this one angle; ``bounded [-90.0, -30.0]`` — only a
    set is identified (the consistency set, or a 95% set that reaches an end of the legal range; no
    point is shown); ``n/i`` — not identified.
    """
    if identification is None:  # tables written before identification was recorded
        identification = "none" if pd.isna(low) else "point"
    if identification == "none" or pd.isna(low) or pd.isna(high):
        return "n/i"
    if identification == "point" and high - low < POINT_WIDTH:  # the one angle an exact maximiser can have
        return f"{_angle(theta, 1)} (exact)"
    d = _decimals(low, high)
    if identification == "set" or pd.isna(theta):
        return f"bounded [{_angle(low, d)}, {_angle(high, d)}]"
    return f"{_angle(theta, d)} ({_angle(low, d)}, {_angle(high, d)})"
