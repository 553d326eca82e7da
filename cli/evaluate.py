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
@click.option("--backend", default="embedded", show_default=True, help="LLM backend name (built-in 'embedded' or one from --scenario).")
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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (must not exist or be empty).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON array on stdout.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the LLM response cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="LLM response cache folder.")
@friendly_errors
def evaluate(
    agents: str, backend: str, scenario_file: Path | None, values: str, goal_prompting: str, repeats: int,
    secondary: bool, order: str, baselines: bool, seed: int, out_dir: Path | None, as_json: bool,
    no_cache: bool, cache_dir: Path | None,
) -> None:
    """The HVAE protocol: fresh agents answer the SVO Slider under the paper's prompting pipeline."""
    from hvae.analysis.evaluation import json_rows
    from hvae.experiments.questionnaire import Evaluation, EvaluationPlan

    agent_list = [a.strip() for a in agents.split(",") if a.strip()]
    if baselines:
        agent_list += [a for a in ("oracle", "random") if a not in agent_list]
    backends, cache = _load_backends(scenario_file)
    known = {"embedded", *backends}
    if "llm" in agent_list and backend not in known:
        raise UserError(f"--backend {backend!r} is not defined (known: {', '.join(sorted(known))})")
    plan = EvaluationPlan(
        agents=agent_list,
        values=[v.strip() for v in values.split(",") if v.strip()],
        goal_prompting={"both": [True, False], "on": [True], "off": [False]}[goal_prompting],
        repeats=repeats, secondary=secondary, order=_ORDERS[order], backend=backend, backends=backends, seed=seed,
        cache_enabled=not no_cache and cache.get("enabled", True),
        cache_path=str(cache_dir) if cache_dir else cache.get("path"),
    )
    evaluation = Evaluation(plan)
    out_dir = out_dir or default_out_dir("evaluate")

    bar, task = (ProgressBar(transient=True), None) if sys.stderr.isatty() else (None, None)

    def progress(done: int, total: int) -> None:
        nonlocal task
        if bar is not None:
            task = task if task is not None else bar.add("evaluate", total=total, unit="items answered")
            bar.update(task, completed=done)

    try:
        path = evaluation.run(out_dir, on_item=progress)
    finally:
        if bar is not None:
            bar.stop()
    import pandas as pd

    table = pd.read_parquet(path / "evaluation_summary.parquet")
    if as_json:
        click.echo(json.dumps(json_rows(table)))
        return
    print_evaluation_table(table, "llm" in agent_list and _backend_is_embedded(backend, backends))
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


def print_evaluation_table(table, embedded: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title="HVAE evaluation: slider answers per agent, value and goal prompting",
                caption="slider VR: 1 = the angle the value-rational oracle reaches; chance = uniform random answers.")
    for header in ("agent", "model", "value", "goal", "n", "angle (95% CI)", "target", "categories", "transitive",
                   "decision VR", "chance", "slider VR", "chance", "invalid"):
        out.add_column(header)
    for _, row in table.iterrows():
        shares = ", ".join(f"{k[:3]} {v:.0%}" for k, v in row["category_shares"].items() if v)
        ci = "" if row["angle_ci_low"] != row["angle_ci_low"] else f" ({row['angle_ci_low']:.1f}, {row['angle_ci_high']:.1f})"
        out.add_row(
            row["agent"], row["model"] if row["model"] != row["agent"] else "", str(row["value"]),
            _goal_text(row["goal_prompting"]), str(row["repeats"]), f"{row['angle_mean']:.1f}{ci}",
            f"{row['attainable_angle']:.1f}", shares, f"{row['transitive_rate']:.0%}", f"{row['decision_vr']:.3f}",
            f"{row['chance_vr']:.3f}", f"{row['slider_vr']:.3f}", f"{row['chance_slider_vr']:.3f}", f"{row['invalid_rate']:.0%}",
        )
    console = Console() if Console().is_terminal else Console(width=220)
    console.print(out)
    if embedded:
        console.print(VALUE_BLIND_NOTE)
