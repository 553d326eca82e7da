"""``hvae evaluate``: the HVAE questionnaire for any decider, its table and its figures.

The protocol is :class:`hvae.experiments.questionnaire.Evaluation`; this command builds its plan
from the options, runs it with a progress line, prints the summary table and draws the radar and
ring figures (:mod:`hvae.analysis.evaluation`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hvae.cli.errors import UserError, friendly_errors
from hvae.cli.options import default_out_dir
from hvae.cli.tables import VALUE_BLIND_NOTE
from hvae.scenarios.errors import ScenarioError
from hvae.simulation.progress import ProgressBar

_ORDERS = {"fixed": "fixed", "reversed": "reverse_half", "shuffled": "shuffle"}


def _load_backends(path: Path | None) -> tuple[dict, dict]:
    """``backends`` and ``cache`` sections of a scenario file (the rest is ignored)."""
    if path is None:
        return {}, {}
    from pydantic import TypeAdapter, ValidationError

    from hvae.agents.llm.backends import BackendConfig
    from hvae.scenarios.loader import format_validation_error, read_yaml, resolve_scenario_path

    file_path = resolve_scenario_path(path)
    data, node = read_yaml(file_path)
    try:
        backends = TypeAdapter(dict[str, BackendConfig]).validate_python(data.get("backends") or {})
    except ValidationError as error:
        raise ScenarioError(format_validation_error(error, str(file_path), None).replace(": ", ": backends.", 1)) from None
    return backends, data.get("cache") or {}


@click.command()
@click.option("--agent", "agents", default="llm", show_default=True, help="Comma list of llm, oracle, random, reciprocal.")
@click.option("--backend", default="embedded", show_default=True,
              help="LLM backend name(s), comma-separated (built-in 'embedded' or ones from --scenario): one leaderboard row each.")
@click.option("--scenario", "scenario_file", type=click.Path(path_type=Path), help="Scenario file whose 'backends' (and 'cache') sections configure the LLM.")
@click.option("--values", default="altruistic,prosocial,individualistic,competitive", show_default=True, help="Comma list of category names and/or angles.")
@click.option("--goal-prompting", type=click.Choice(["both", "on", "off"]), default="both", show_default=True)
@click.option("--repeats", type=int, default=10, show_default=True, help="Fresh agents per (agent, value, goal prompting).")
@click.option("--secondary", is_flag=True, help="Also ask the nine secondary items (prosocial subtypes).")
@click.option(
    "--order", type=click.Choice(list(_ORDERS)), default="reversed", show_default=True,
    help="Option order shown to LLMs: fixed, reversed for a random half, or shuffled.",
)
@click.option("--baselines", is_flag=True, help="Add the random (chance) and oracle (ceiling) rows.")
@click.option("--paraphrases", is_flag=True, help="Probe: three more wordings of each category value (VR spread across wordings).")
@click.option("--placement", is_flag=True, help="Probe: the value in the system message instead of the first user turn.")
@click.option("--disguised", is_flag=True, help="Probe: slider items with moved numbers in another order (contamination indicator).")
@click.option("--dictator", is_flag=True, help="Probe: split 100 coins, beside human reference figures.")
@click.option("--validity", is_flag=True, help="All four probes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (must not exist or be empty).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON array on stdout.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the LLM response cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="LLM response cache folder.")
@click.option("--dry-run", is_flag=True, help="Validate, build every cell's prompts and print LLM calls, tokens and cost; run nothing.")
@click.option("--price-in", type=click.FloatRange(min=0), help="With --dry-run: price per million prompt tokens.")
@click.option("--price-out", type=click.FloatRange(min=0), help="With --dry-run: price per million completion tokens.")
@friendly_errors
def evaluate(
    agents: str, backend: str, scenario_file: Path | None, values: str, goal_prompting: str, repeats: int,
    secondary: bool, order: str, baselines: bool, paraphrases: bool, placement: bool, disguised: bool, dictator: bool,
    validity: bool, seed: int, out_dir: Path | None, as_json: bool, no_cache: bool, cache_dir: Path | None,
    dry_run: bool = False, price_in: float | None = None, price_out: float | None = None,
) -> None:
    """The HVAE protocol: fresh agents answer the SVO Slider under the paper's prompting pipeline."""
    from hvae.analysis.evaluation import json_rows
    from hvae.experiments.questionnaire import Evaluation, EvaluationPlan

    agent_list = [a.strip() for a in agents.split(",") if a.strip()]
    if baselines:
        agent_list += [a for a in ("oracle", "random") if a not in agent_list]
    backends, cache = _load_backends(scenario_file)
    known = {"embedded", *backends}
    models = list(dict.fromkeys(b.strip() for b in backend.split(",") if b.strip()))
    if (paraphrases or placement or disguised or dictator or validity) and "llm" not in agent_list:
        raise UserError("the validity probes (--paraphrases, --placement, --disguised, --dictator, --validity) need --agent llm")
    if "llm" in agent_list:
        if not models:
            raise UserError("--backend: give at least one backend name")
        for name in models:
            if name not in known:
                raise UserError(f"--backend {name!r} is not defined (known: {', '.join(sorted(known))})")
    plan = EvaluationPlan(
        agents=agent_list,
        values=[v.strip() for v in values.split(",") if v.strip()],
        goal_prompting={"both": [True, False], "on": [True], "off": [False]}[goal_prompting],
        repeats=repeats, secondary=secondary, order=_ORDERS[order], backend=models[0] if models else "embedded",
        backends=backends, llm_backends=models, seed=seed,
        probes=[name for name, on in (("paraphrases", paraphrases), ("placement", placement), ("disguised", disguised),
                                      ("dictator", dictator)) if on or validity],
        cache_enabled=not no_cache and cache.get("enabled", True),
        cache_path=str(cache_dir) if cache_dir else cache.get("path"),
    )
    evaluation = Evaluation(plan)
    from hvae.cli.dry_run import estimate_evaluation, estimate_vs_actual

    if dry_run:  # what the evaluation will cost (hvae.agents.llm.estimate); nothing runs
        try:
            for line in estimate_evaluation(evaluation, price_in, price_out).lines():
                click.echo(line)
        finally:
            evaluation.close()
        return
    estimate = estimate_evaluation(evaluation).to_json() if "llm" in agent_list else None
    out_dir = out_dir or default_out_dir("evaluate")

    bar, task = (ProgressBar(transient=True), None) if sys.stderr.isatty() else (None, None)

    def progress(done: int, total: int) -> None:
        nonlocal task
        if bar is not None:
            task = task if task is not None else bar.add("evaluate", total=total, unit="items answered")
            bar.update(task, completed=done)

    try:
        path = evaluation.run(out_dir, on_item=progress, estimate=estimate)
    finally:
        if bar is not None:
            bar.stop()
    import pandas as pd

    table = pd.read_parquet(path / "evaluation_summary.parquet")
    if as_json:
        click.echo(json.dumps(json_rows(table)))
        return
    if "probe" in table:  # the probe cells are summarised in the validity tables below
        table = table[table["probe"] == "standard"]
    print_evaluation_table(table, "llm" in agent_list and any(_backend_is_embedded(m, backends) for m in models))
    board = pd.read_parquet(path / "leaderboard.parquet")
    print_leaderboard(board)
    if (path / "validity.csv").exists():
        print_validity(pd.read_csv(path / "validity.csv"), pd.read_csv(path / "dictator.csv"))
    summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    if line := estimate_vs_actual(summary):
        click.echo(line)
    click.echo(f"leaderboard: {path / 'leaderboard.md'} (also .csv, .parquet, .html)")
    click.echo(f"per-model tables: {path / 'models'}; figures: {path / 'figures'}")
    click.echo(f"evaluation folder: {path}")


def _backend_is_embedded(name: str, backends: dict) -> bool:
    config = backends.get(name)
    return (config is None and name == "embedded") or (
        config is not None and config.kind == "embedded" and not config.model_path
    )


def _goal_text(goal: Any) -> str:
    """``on``/``off`` for LLM cells; ``–`` for rule deciders, which have no prompt."""
    if goal is None or goal != goal:  # None or NaN
        return "–"
    return "on" if goal else "off"


def _console(width: int = 100):
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=width)


def _cell(value: float, fmt: str | None) -> str:
    if fmt is None:  # a flag column: "≈" where set
        return "≈" if value is True or value == 1 else ""
    return "–" if value is None or value != value else format(value, fmt)


def print_evaluation_table(table, embedded: bool) -> None:
    """The per-cell tables, one per model, in 100 columns (categories, transitivity, ceilings: in the CSV)."""
    from rich import box
    from rich.table import Table

    from hvae.cli.tables import _two_lines

    console = _console()
    for model in dict.fromkeys(table["model"]):
        out = Table(title=f"HVAE evaluation of {model}: slider answers per value and goal prompting", box=box.SIMPLE_HEAD,
                    pad_edge=False, padding=(0, 1, 0, 0))
        for header, right in (("value", False), ("goal", False), ("n", True), ("angle\n(95% CI)", False),
                              ("target\nangle", True), ("decision VR\n/ chance", True), ("slider VR\n/ chance", True),
                              ("1st-only\nVR", True), ("in-\nvalid", True)):
            out.add_column(header, justify="right" if right else "left", no_wrap=True)
        for _, row in table[table["model"] == model].iterrows():
            ci = "" if row["angle_ci_low"] != row["angle_ci_low"] else f" ({row['angle_ci_low']:.1f}, {row['angle_ci_high']:.1f})"
            angle = "–" if row["angle_mean"] != row["angle_mean"] else f"{row['angle_mean']:.1f}{ci}"
            out.add_row(
                str(row["value"]), _goal_text(row["goal_prompting"]), str(row["repeats"]), _two_lines(angle, 10),
                f"{row['attainable_angle']:.1f}", f"{_cell(row['decision_vr'], '.3f')} / {row['chance_vr']:.3f}",
                f"{_cell(row['slider_vr'], '.3f')} / {row['chance_slider_vr']:.3f}",
                _cell(row.get("position_vr", float("nan")), ".3f"), f"{row['invalid_rate']:.0%}",
            )
        console.print(out)
    console.print(
        "decision VR: 1 = always the best option for the value (the oracle); slider VR: 1 = the angle the oracle "
        "reaches; chance = uniform random answers on the same items; 1st-only VR = a value-blind chooser always "
        "taking the option shown first, same displays; invalid = unusable after re-asks. Categories, transitivity "
        "and ceilings: evaluation_summary.csv.", style="dim", highlight=False,
    )
    if embedded:
        console.print(VALUE_BLIND_NOTE)


def print_leaderboard(board) -> None:
    """The leaderboard in 100 columns (every column is in leaderboard.csv)."""
    from rich import box
    from rich.table import Table

    import pandas as pd

    from hvae.analysis.leaderboard import LEADERBOARD_NOTE

    out = Table(title="Leaderboard (sorted by score; reference rows in italics)", box=box.SIMPLE_HEAD, pad_edge=False,
                padding=(0, 1, 0, 0))
    columns = [("rank", "#", None), ("model", "model", None), ("score", "score", ".3f"),
               ("score_low", "95%\nfrom", ".3f"), ("score_high", "\nto", ".3f"), ("tied_with_next", "≈\nnext", None),
               ("fit_position", "1st\nbonus b", "+.1f"), ("raw_score", "raw\nscore", ".3f"),
               ("position_vr", "1st-only\nVR", ".3f"), ("first_share", "1st\nshown", ".0%"), ("first_expected", "\nexp.", ".0%"),
               ("invalid_rate", "in-\nvalid", ".0%")]
    for key, header, _ in columns:
        out.add_column(header, justify="left" if key == "model" else "right", no_wrap=key != "model",
                       max_width=26 if key == "model" else None, overflow="fold")
    for _, row in board.iterrows():
        cells = ["" if pd.isna(row["rank"]) else str(row["rank"]), str(row["model"])]
        cells += [_cell(row.get(key), fmt) for key, _, fmt in columns[2:]]
        out.add_row(*cells, style="italic dim" if row["kind"] == "reference" else None)
    console = _console()
    console.print(out)
    console.print(LEADERBOARD_NOTE, style="dim", highlight=False, markup=False)  # "[i shown first]" is text


def print_validity(table, dictator) -> None:
    """The probes' headline figures per model (mean over values; per value in validity.csv), in 100 columns."""
    from rich import box
    from rich.table import Table

    out = Table(title="Validity probes (mean over values; per value: validity.csv)", box=box.SIMPLE_HEAD, pad_edge=False,
                padding=(0, 1, 0, 0))
    columns = [("model", "model", None), ("vr_standard", "VR\nstandard", ".3f"), ("wording_spread", "wording\nspread", ".3f"),
               ("placement_effect", "system −\nuser", "+.3f"), ("contamination", "original −\ndisguised", "+.3f"),
               ("contamination_slider", "same,\nslider VR", "+.3f")]
    for key, header, _ in columns:
        out.add_column(header, justify="left" if key == "model" else "right", overflow="fold", max_width=30 if key == "model" else None)
    for _, row in table[table["value"] == "all"].iterrows():
        out.add_row(str(row["model"]), *[_cell(row.get(key), fmt) for key, _, fmt in columns[1:]])
    console = _console()
    console.print(out)
    console.print(
        "wording spread: max − min decision VR over the standard wording and three paraphrases; system − user: VR "
        "with the value in the system message minus in the first user turn; original − disguised: VR on the "
        "published slider items minus on items with moved numbers (a contamination indicator). Near 0 = robust.",
        style="dim", highlight=False,
    )
    if not dictator.empty:
        small = Table(title="Dictator probe: split 100 coins (humans: no value given)", box=box.SIMPLE_HEAD, pad_edge=False,
                      padding=(0, 1, 0, 0))
        for header in ("who", "value", "n", "mean given", "give 0", "give half"):
            small.add_column(header, justify="left" if header in ("who", "value") else "right", overflow="fold",
                             max_width=30 if header == "who" else None)
        for _, r in dictator.iterrows():
            small.add_row(str(r["source"]), str(r["value"]), str(int(r["n"])), f"{r['mean_given_share']:.1%}",
                          f"{r['share_give_nothing']:.1%}", f"{r['share_give_half']:.1%}")
        console.print(small)
