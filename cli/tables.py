"""What ``hvae run`` and ``hvae summary`` print: the per-group table, its headline and the dynamics line.

The table is the analysis layer's :func:`~hvae.analysis.summary.group_summary` with display
columns added (:func:`summary_table_data`); :func:`print_run_summary` renders it with rich in a
100-column terminal (``wide``: every column) with the caption that defines each column.
"""

from __future__ import annotations

from pathlib import Path

VALUE_BLIND_NOTE = (
    "[bold yellow]Note:[/] the embedded SmolLM2-135M-Instruct model is value-blind (it picks the first "
    "option whatever value it is given). These LLM rows show that the pipeline runs; they are not "
    "evidence about values."
)

#: Columns of the wide per-group table: (key, header, format).
WIDE_COLUMNS: list[tuple[str, str, str | None]] = [
    ("group", "group", None), ("decider", "decider", None), ("n_agents", "n", None), ("value", "value", None),
    ("revealed", "revealed θ\n(set or 95% CI)", None), ("mean_payoff", "\npayoff", ".1f"), ("n_valid", "\nvalid", ".0f"),
    ("invalid_rate", "\ninvalid", ".0%"), ("decision_vr", "decision\nVR", ".3f"), ("chance_vr", "\nchance", ".3f"),
    ("ceiling_vr", "\nceiling", ".2f"), ("position_vr", "1st-only\nVR", ".3f"), ("n_profiles", "\nprofiles", ".0f"), ("slider_angle", "slider\nθ̂", ".1f"),
    ("attainable_angle", "\ntarget", ".1f"), ("slider_vr", "slider\nVR", ".3f"), ("chance_slider_vr", "\nchance", ".3f"),
    ("ceiling_slider_vr", "\nceiling", ".2f"), ("position_slider_vr", "1st-only\nslider VR", ".3f"), ("first_share", "1st\nshown", ".0%"),
]

#: Columns of the compact table (fits 100 columns): VR and its chance level share a cell.
COMPACT_COLUMNS: list[tuple[str, str, str | None]] = [
    ("group", "group", None), ("n_agents", "n", None), ("value", "value", None),
    ("decision_pair", "decision VR\n/ chance", None), ("slider_pair", "slider VR\n/ chance", None),
    ("revealed", "revealed θ\n(set or 95% CI)", None), ("invalid_rate", "in-\nvalid", ".0%"), ("first_share", "1st\nshown", ".0%"),
]

SLIDER_COLUMNS = ("slider_pair", "n_profiles", "slider_angle", "attainable_angle", "slider_vr", "chance_slider_vr", "ceiling_slider_vr")

#: Width of the revealed-angle column: longer cells put their interval on a second line.
REVEALED_WIDTH = 14

SUMMARY_CAPTION = (
    "Figures use valid decisions only (fallback choices of unusable replies are excluded), scored against the "
    "value in force when decided. decision VR: 1 = always the best option for the agent's own value (the "
    "ceiling, reached by the value-rational oracle); chance = a uniform random chooser on the same menus. "
    "slider VR: mean per-profile score against the attainable target, beside the chance (and, with --wide, "
    "the ceiling) of the same score. revealed θ: where some angle makes every choice a best option (ties "
    "included), the set of all such angles — bounded [a, b], or θ (exact) when it is one angle; otherwise the "
    "maximum-likelihood angle of a logit choice model (with a first-position term where the order shown was "
    "recorded) with its 95% interval; n/i = not identified. 1st-only VR (with --wide): a value-blind chooser that always takes the option shown first, on "
    "the same decisions and displays. 1st shown: share of valid decisions that took the option shown first (LLM groups; the order "
    "shown is counterbalanced); judged against what the same choices give when the order shown does not matter "
    "(display-adjusted test), not 1/k."
)


def _pair(value: float, chance: float) -> str:
    return "–" if value != value else f"{value:.3f} / {chance:.3f}"


def _two_lines(text: str, width: int = REVEALED_WIDTH) -> str:
    """A long revealed-angle cell broken before its interval, never inside it."""
    if len(text) <= width:
        return text
    for mark in (" (", " ["):
        if mark in text:
            head, tail = text.split(mark, 1)
            return f"{head}\n{mark.strip()}{tail}"
    return text


def summary_table_data(run_dir: Path, table=None):
    """(run, the per-group table with the display-only columns added, the LLM groups' position bias)."""
    from hvae.agents.deciders import DISPLAYING_DECIDERS
    from hvae.analysis.position import position_bias
    from hvae.analysis.revealed import format_revealed
    from hvae.analysis.runfolder import RunFolder
    from hvae.analysis.summary import group_summary

    run = RunFolder(run_dir)
    table = (group_summary(run) if table is None else table).copy()
    if "revealed_theta" in table:
        table["revealed"] = [
            _two_lines(format_revealed(t, lo, hi, ident))
            for t, lo, hi, ident in zip(table["revealed_theta"], table["revealed_ci_low"],
                                        table["revealed_ci_high"], table["revealed_identification"])
        ]
    else:
        table["revealed"] = "–"
    bias = position_bias(run.decisions(), ["group"])
    bias = bias[bias["group"].isin(set(table.loc[table["decider"].isin(DISPLAYING_DECIDERS), "group"]))]
    table = table.merge(bias[["group", "first_share", "first_expected", "p_value"]], on="group", how="left")
    table["decision_pair"] = [_pair(v, c) for v, c in zip(table["decision_vr"], table["chance_vr"])]
    if "slider_vr" in table:
        table["slider_pair"] = [_pair(v, c) for v, c in zip(table["slider_vr"], table["chance_slider_vr"])]
    return run, table, bias


def print_run_summary(run_dir: Path, table_data=None, wide: bool = False) -> None:
    """Print the per-group table (fits 100 columns; ``wide`` shows every column) and the headline."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from hvae.analysis.headline import headline_lines
    from hvae.files.untrusted import one_line
    from hvae.analysis.report import value_blind_groups
    from hvae.analysis.summary import played_slider

    run, table_data, bias = summary_table_data(run_dir, table_data)
    summary = run.summary
    columns = [c for c in (WIDE_COLUMNS if wide else COMPACT_COLUMNS) if c[0] in table_data]
    if not played_slider(run):
        columns = [c for c in columns if c[0] not in SLIDER_COLUMNS]
    if table_data["first_share"].isna().all():
        columns = [c for c in columns if c[0] != "first_share"]
    all_valid = not (table_data["invalid_rate"].fillna(0) > 0).any()
    if not wide and all_valid:
        columns = [c for c in columns if c[0] != "invalid_rate"]  # all 0%: said below the table
    table = Table(
        title=escape(one_line(  # summary.json may come from anyone: quoted, never terminal control
            f"{summary['scenario']}: {summary['rounds_completed']} rounds, {summary['n_agents']} agents "
            f"(status: {summary['status']})", limit=200)),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for key, header, fmt in columns:
        right = fmt is not None or key.endswith("_pair")
        table.add_column(header, justify="right" if right else "left", no_wrap=key != "revealed",
                         min_width=REVEALED_WIDTH if key == "revealed" else None)
    for _, row in table_data.iterrows():
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            if fmt is None:
                # quoted from the folder, never terminal control; each line of a two-line cell kept;
                # "[a, b]" is text, not rich markup
                cells.append(escape("\n".join(one_line(part, limit=200) for part in str(value).split("\n"))))
            elif value is None or value != value:  # NaN
                cells.append("–")
            else:
                cells.append(format(value, fmt))
        table.add_row(*cells)
    console = Console()
    if not console.is_terminal:
        console = Console(width=100 if not wide else 200)
    console.print(table)
    caption = SUMMARY_CAPTION + (" Every decision was valid (no unusable replies)." if all_valid else "")
    console.print(escape(caption), style="dim", highlight=False)
    for line in headline_lines(table_data, bias):
        console.print(escape(line), highlight=False)
    if any(decider == "llm" for decider in table_data["decider"]):
        console.print(
            f"LLM calls: {summary.get('llm_calls', 0)}, cache hits: {summary.get('llm_cache_hits', 0)}, "
            f"invalid replies: {summary.get('llm_invalid', 0)}, tokens in/out: {summary.get('tokens_in', 0)}/"
            f"{summary.get('tokens_out', 0)}",
            highlight=False,
        )
    _print_dynamics(console, run)
    if value_blind_groups(run.scenario):
        console.print(VALUE_BLIND_NOTE)


def _print_dynamics(console, run) -> None:
    """Under value dynamics: how many values changed and the value shares, first → last round played."""
    from hvae.analysis.summary import dynamics_summary, share_changes

    dynamics = dynamics_summary(run)
    if dynamics is None:
        return
    line = (
        f"Value dynamics ({dynamics['rule']}, every {dynamics['every']} rounds): {dynamics['changes']} value changes "
        f"in {dynamics['agents_changed']} agents. Value shares (agents acting on their value, by the value held "
        f"while deciding; the value_shares figure), round {_round(dynamics['first_round'])} → round "
        f"{_round(dynamics['last_round'])}: {share_changes(dynamics['initial_shares'], dynamics['final_shares'])}."
    )
    if dynamics["after_update_shares"] != dynamics["final_shares"] and dynamics["after_update_shares"]:
        line += (" After the update that followed the last round (values no round played): "
                 f"{share_changes(dynamics['final_shares'], dynamics['after_update_shares'])}.")
    console.print(line, highlight=False)


def _round(index: int | None) -> str:
    return "–" if index is None else str(index + 1)
