"""The ``hvae`` command line.

::

    hvae run SCENARIO.yaml [--out DIR] [--set key.path=value ...] [--seed N] [--no-report] [--keep-going]
    hvae run --resume RUN_DIR [--keep-going]
    hvae sweep SWEEP.yaml [--workers N | --scheduler ADDRESS] [--out DIR]
    hvae evaluate [--agent llm,oracle,...] [--values ...] [--repeats N] [--baselines] [--json]
    hvae report RUN_DIR [RUN_DIR ...] [--out FILE]
    hvae summary RUN_DIR [--json]
    hvae validate SCENARIO.yaml [--set ...]
    hvae scenarios
    hvae slider --choices AIAAII [--json]

User errors (a bad file, argument or value, a folder another process is writing) print one line
``hvae: error: …`` to stderr and exit with status 2, without a traceback and without leaving a run
folder that looks complete. A run stopped because an LLM backend is unavailable (see
:mod:`hvae.agents.llm.health`) prints one line naming the backend and its error and exits 1; so
does a failure inside hvae itself (set ``HVAE_DEBUG=1`` for the traceback). Credentials in URLs
are masked in every line.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from hvae.cli.errors import EXIT_USER_ERROR, UserError, friendly_errors
from hvae.agents.llm.health import BackendUnhealthy
from hvae.agents.llm.secrets import redact_text
from hvae.cli.sweep import sweep
from hvae.scenarios.errors import ScenarioError
from hvae.scenarios.loader import load_scenario, shipped_scenarios

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hvae")
def cli() -> None:
    """hvae: heterogeneous value alignment experiments with populations of SVO agents."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click's usage errors become one line and exit status 2."""
    try:
        code = cli.main(args=argv, prog_name="hvae", standalone_mode=False)
    except click.exceptions.UsageError as error:
        command = error.ctx.command_path if error.ctx else "hvae"
        click.echo(f"hvae: error: {error.format_message()} (try '{command} --help')", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("hvae: aborted", err=True)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


def default_out_dir(scenario_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{scenario_name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


VALUE_BLIND_NOTE = (
    "[bold yellow]Note:[/] the embedded SmolLM2-135M-Instruct model is value-blind (it picks the first "
    "option whatever value it is given). These LLM rows show that the pipeline runs; they are not "
    "evidence about values."
)

_SET_HELP = "Override a scenario value, e.g. --set rounds=12 --set population.0.count=5 (repeatable)."


@cli.command()
@click.argument("scenario", required=False)
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help="Continue the interrupted or killed run in this folder.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder (must not exist or be empty).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help=_SET_HELP)
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the LLM response cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="LLM response cache folder (default $HVAE_CACHE_DIR or ~/.cache/hvae).")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.option("--no-report", is_flag=True, help="Do not write RUN_DIR/report.html at the end.")
@click.option("--wide", is_flag=True, help="Show every column of the summary table (needs about 170 columns).")
@click.option("--keep-going", is_flag=True, help="Go on with fallbacks when an LLM backend is unreachable or failing (default: stop the run as failed).")
@friendly_errors
def run(
    scenario: str | None, resume_dir: Path | None, out_dir: Path | None, overrides: tuple[str, ...],
    seed: int | None, no_cache: bool, cache_dir: Path | None, quiet: bool, no_report: bool, wide: bool,
    keep_going: bool,
) -> None:
    """Run SCENARIO (a YAML file or a shipped scenario's name) into a run folder, or --resume one."""
    from hvae.experiments.runs import resume_run, run_scenario
    from hvae.simulation.runner import RunFailed, RunInterrupted

    progress = not quiet and sys.stderr.isatty()
    try:
        if resume_dir is not None:
            if scenario or overrides or seed is not None or out_dir is not None:
                raise UserError("--resume continues a run as it was configured: give only the run folder")
            result = resume_run(resume_dir, progress=progress, keep_going=keep_going)
        else:
            if not scenario:
                raise UserError("give a SCENARIO to run (or --resume RUN_DIR)")
            overrides = overrides + cache_overrides(no_cache, cache_dir)
            if keep_going:
                overrides += ("backend_errors.keep_going=true",)
            config = load_scenario(scenario, overrides, seed=seed)
            result = run_scenario(config, out_dir or default_out_dir(config.name), progress=progress)
    except RunInterrupted as stopped:
        click.echo(f"hvae: {stopped}", err=True)
        sys.exit(130)
    except RunFailed as failed:
        hint = " (or add --keep-going to go on with fallbacks)" if isinstance(failed.cause, BackendUnhealthy) else ""
        click.echo(f"hvae: error: {redact_text(str(failed))}{hint}", err=True)
        sys.exit(1)
    if not quiet:
        print_run_summary(result.path, wide=wide)
    for line in backend_warnings(result.summary):
        click.echo(line, err=True)
    click.echo(f"run folder: {result.path}")
    if not no_report:
        _report_after_run(result.path)


def _report_after_run(run_dir: Path) -> None:
    """Write the run's report; a failure here is a warning, since the run itself succeeded."""
    from hvae.analysis.report import write_report

    try:
        path = write_report([run_dir], run_dir / "report.html")
    except Exception as error:  # noqa: BLE001 - the run is done; never fail it over its report
        if os.environ.get("HVAE_DEBUG"):
            raise
        click.echo(
            f"hvae: warning: the report could not be written ({type(error).__name__}: {error}); "
            f"retry with 'hvae report {run_dir}'",
            err=True,
        )
        return
    click.echo(f"report: {path}")


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Report file (default RUN_DIR/report.html; for several runs, report.html in their common parent).")
@friendly_errors
def report(run_dirs: tuple[Path, ...], out_file: Path | None) -> None:
    """Write an HTML report of RUN_DIR, or of several seeds of one scenario (with 95% CI bands)."""
    from hvae.analysis.plots import ScenarioMismatch
    from hvae.analysis.report import ReportError, default_report_path, write_report
    from hvae.analysis.runfolder import NotARunFolder

    try:
        for run_dir in run_dirs:
            if not run_dir.is_dir():
                raise NotARunFolder(f"no such run folder: {run_dir}")
        path = write_report(list(run_dirs), out_file or default_report_path(run_dirs))
    except (NotARunFolder, ScenarioMismatch, ReportError) as error:
        raise UserError(str(error)) from None
    click.echo(f"report: {path}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, one object per group (null = not defined).")
@click.option("--wide", is_flag=True, help="Show every column of the table (needs about 170 columns).")
@friendly_errors
def summary(run_dir: Path, as_json: bool, wide: bool) -> None:
    """Print RUN_DIR's per-group table (the one 'hvae run' prints and writes to groups.parquet)."""
    from hvae.analysis.runfolder import NotARunFolder, RunFolder
    from hvae.analysis.summary import group_records, group_summary

    try:
        if not run_dir.is_dir():
            raise NotARunFolder(f"no such run folder: {run_dir}")
        run = RunFolder(run_dir)
        if run.summary.get("kind") == "evaluation":
            raise UserError(f"{run_dir} is an evaluation folder: its table is evaluation_summary.csv")
        if not (run.path / "scenario.yaml").is_file():
            raise NotARunFolder(f"{run_dir} is not an hvae run folder (no scenario.yaml)")
        table = group_summary(run)
    except NotARunFolder as error:
        raise UserError(str(error)) from None
    if as_json:
        click.echo(json.dumps(group_records(table)))
        return
    print_run_summary(run.path, table, wide=wide)


def cache_overrides(no_cache: bool, cache_dir: Path | None) -> tuple[str, ...]:
    """``--no-cache`` / ``--cache-dir`` as scenario overrides (so the run folder records them)."""
    extra: tuple[str, ...] = ()
    if no_cache:
        extra += ("cache.enabled=false",)
    if cache_dir is not None:
        extra += (f"cache.path={json.dumps(str(cache_dir.resolve()))}",)
    return extra


def backend_warnings(summary: dict[str, Any]) -> list[str]:
    """One warning line per LLM backend that had failed calls in a run that went on."""
    lines = []
    for report in (summary.get("backend_health") or {}).values():
        if not report.get("failed"):
            continue
        line = (
            f"hvae: warning: backend {report['backend']}: {report['failed']} of {report['calls']} calls failed "
            f"(last error: {report.get('last_error')}); the run has {summary.get('llm_invalid', 0)} invalid LLM "
            f"decisions ({summary.get('llm_fallbacks', 0)} random fallbacks) and "
            f"{summary.get('llm_setup_failures', 0)} agents set up without an answer"
        )
        if report.get("tripped"):
            line += f" — it went on (keep_going) although the backend {report['tripped']}"
        lines.append(redact_text(line))
    return lines


#: Columns of the wide per-group table: (key, header, format).
WIDE_COLUMNS: list[tuple[str, str, str | None]] = [
    ("group", "group", None), ("decider", "decider", None), ("n_agents", "n", None), ("value", "value", None),
    ("revealed", "revealed θ\n(95% CI)", None), ("mean_payoff", "\npayoff", ".1f"), ("n_valid", "\nvalid", ".0f"),
    ("invalid_rate", "\ninvalid", ".0%"), ("decision_vr", "decision\nVR", ".3f"), ("chance_vr", "\nchance", ".3f"),
    ("ceiling_vr", "\nceiling", ".2f"), ("n_profiles", "\nprofiles", ".0f"), ("slider_angle", "slider\nθ̂", ".1f"),
    ("attainable_angle", "\ntarget", ".1f"), ("slider_vr", "slider\nVR", ".3f"), ("chance_slider_vr", "\nchance", ".3f"),
    ("ceiling_slider_vr", "\nceiling", ".2f"), ("first_share", "1st\nshown", ".0%"),
]

#: Columns of the compact table (fits 100 columns): VR and its chance level share a cell.
COMPACT_COLUMNS: list[tuple[str, str, str | None]] = [
    ("group", "group", None), ("n_agents", "n", None), ("value", "value", None),
    ("decision_pair", "decision VR\n/ chance", None), ("slider_pair", "slider VR\n/ chance", None),
    ("revealed", "revealed θ\n(95% CI)", None), ("invalid_rate", "in-\nvalid", ".0%"), ("first_share", "1st\nshown", ".0%"),
]

SLIDER_COLUMNS = ("slider_pair", "n_profiles", "slider_angle", "attainable_angle", "slider_vr", "chance_slider_vr", "ceiling_slider_vr")

SUMMARY_CAPTION = (
    "Figures use valid decisions only (fallback choices of unusable replies are excluded), scored against the "
    "value in force when decided. decision VR: 1 = always the best option for the agent's own value (the "
    "ceiling, reached by the value-rational oracle); chance = a uniform random chooser on the same menus. "
    "slider VR: mean per-profile score against the attainable target, beside the chance (and, with --wide, "
    "the ceiling) of the same score. revealed θ: maximum-likelihood angle of a logit choice model over the "
    "group's decisions with its 95% interval; bounded [a, b] = only a set of angles is identified; n/i = not "
    "identified. 1st shown: share of valid decisions that took the option shown first (LLM groups; the order "
    "shown is counterbalanced)."
)


def _pair(value: float, chance: float) -> str:
    return "–" if value != value else f"{value:.3f} / {chance:.3f}"


def summary_table_data(run_dir: Path, table=None):
    """(run, the per-group table with the display-only columns added, the LLM groups' position bias)."""
    from hvae.analysis.position import position_bias
    from hvae.analysis.revealed import format_revealed
    from hvae.analysis.runfolder import RunFolder
    from hvae.analysis.summary import group_summary

    run = RunFolder(run_dir)
    table = (group_summary(run) if table is None else table).copy()
    if "revealed_theta" in table:
        table["revealed"] = [
            # a no-break space inside the brackets: a narrow cell wraps before "(", never inside
            format_revealed(t, lo, hi, ident).replace(", ", ",\u00a0")
            for t, lo, hi, ident in zip(table["revealed_theta"], table["revealed_ci_low"],
                                        table["revealed_ci_high"], table["revealed_identification"])
        ]
    else:
        table["revealed"] = "–"
    bias = position_bias(run.decisions(), ["group"])
    bias = bias[bias["group"].isin(set(table.loc[table["decider"] == "llm", "group"]))]
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
    from hvae.analysis.report import value_blind_groups
    from hvae.analysis.summary import played_slider

    run, table_data, bias = summary_table_data(run_dir, table_data)
    summary = run.summary
    columns = [c for c in (WIDE_COLUMNS if wide else COMPACT_COLUMNS) if c[0] in table_data]
    if not played_slider(run):
        columns = [c for c in columns if c[0] not in SLIDER_COLUMNS]
    if table_data["first_share"].isna().all():
        columns = [c for c in columns if c[0] != "first_share"]
    table = Table(
        title=f"{summary['scenario']}: {summary['rounds_completed']} rounds, {summary['n_agents']} agents "
        f"(status: {summary['status']})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for key, header, fmt in columns:
        right = fmt is not None or key.endswith("_pair")
        table.add_column(header, justify="right" if right else "left", no_wrap=key != "revealed",
                         min_width=10 if key == "revealed" else None)
    for _, row in table_data.iterrows():
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            if fmt is None:
                cells.append(escape(str(value)))  # "[a, b]" is text, not rich markup
            elif value is None or value != value:  # NaN
                cells.append("–")
            else:
                cells.append(format(value, fmt))
        table.add_row(*cells)
    console = Console()
    if not console.is_terminal:
        console = Console(width=100 if not wide else 200)
    console.print(table)
    console.print(escape(SUMMARY_CAPTION), style="dim", highlight=False)
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
    """Under value dynamics: how many values changed and the value shares before and after."""
    from hvae.analysis.summary import dynamics_summary

    dynamics = dynamics_summary(run)
    if dynamics is None:
        return
    shares = ", ".join(
        f"{name} {dynamics['initial_shares'][name]:.0%} → {dynamics['final_shares'][name]:.0%}"
        for name in dynamics["initial_shares"]
        if dynamics["initial_shares"][name] or dynamics["final_shares"][name]
    )
    console.print(
        f"Value dynamics ({dynamics['rule']}, every {dynamics['every']} rounds): {dynamics['changes']} value changes "
        f"in {dynamics['agents_changed']} agents. Value shares (agents acting on their value), first round → after "
        f"the last update: {shares or 'none'}.",
        highlight=False,
    )


@cli.command()
@click.argument("scenario")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help=_SET_HELP)
@friendly_errors
def validate(scenario: str, overrides: tuple[str, ...]) -> None:
    """Check SCENARIO without running it (schema, network, menus, deciders)."""
    from hvae.simulation.model import HvaeModel

    config = load_scenario(scenario, overrides)
    model = HvaeModel(config)
    model.close()
    click.echo(
        f"{scenario}: ok — {model.n_agents} agents in {len(config.population)} groups, "
        f"{config.rounds} rounds, {config.network.kind} network, {config.menus.kind} menus"
    )


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


@cli.command()
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
    from hvae.analysis.evaluation import json_rows, radar_chart, ring_plot
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

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(f"\ritems answered: {done}/{total}", err=True, nl=done == total)

    path = evaluation.run(out_dir, on_item=progress)
    import pandas as pd

    table = pd.read_parquet(path / "evaluation_summary.parquet")
    repeats_table = pd.read_parquet(path / "evaluation.parquet")
    figures = path / "figures"
    radar_chart(table, figures, "slider_vr")
    radar_chart(table, figures, "decision_vr")
    ring_plot(repeats_table, figures)
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


@cli.command()
@friendly_errors
def scenarios() -> None:
    """List the scenarios shipped with hvae, one line each."""
    import yaml

    for name, path in shipped_scenarios().items():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        description = str(data.get("description", "")).strip().splitlines()
        click.echo(f"{name:<24} {description[0] if description else ''}")


@cli.command()
@click.option("--choices", required=True, help="Six letters A-I, the answers to primary items 1..6.")
@click.option("--secondary", help="Nine letters A-I, answers to secondary items 7..15 (optional).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@friendly_errors
def slider(choices: str, secondary: str | None, as_json: bool) -> None:
    """Score one set of SVO Slider answers: angle, category, transitivity."""
    from hvae.agents import svo

    try:
        indices = svo.parse_choices(choices)
        secondary_indices = svo.parse_choices(secondary, n_items=9) if secondary else None
    except ValueError as error:
        option = "--secondary" if choices and _valid_letters(choices) else "--choices"
        raise UserError(f"{option}: {error}") from None
    angle = svo.slider_angle(indices)
    result: dict[str, Any] = {
        "choices": choices.upper(),
        "angle": round(angle, 4),
        "category": svo.category(angle),
        "transitive": svo.is_transitive(indices),
        "allocations": svo.primary_allocations(indices).tolist(),
    }
    if secondary_indices is not None:
        result["secondary_distances"] = svo.secondary_distances(secondary_indices)
        result["prosocial_subtype"] = svo.prosocial_subtype(secondary_indices)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"angle: {angle:.2f}°  category: {result['category']}  transitive: {result['transitive']}")
    if secondary_indices is not None:
        click.echo(f"prosocial subtype: {result['prosocial_subtype'] or 'undefined'}")


def _valid_letters(text: str) -> bool:
    from hvae.agents import svo

    try:
        svo.parse_choices(text)
    except ValueError:
        return False
    return True


cli.add_command(sweep)


if __name__ == "__main__":  # pragma: no cover
    main()
