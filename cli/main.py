"""The ``hvae`` command line.

::

    hvae run SCENARIO.yaml [--out DIR] [--set key.path=value ...] [--seed N] [--no-report] [--keep-going]
    hvae run --resume RUN_DIR [--keep-going] [--trust-backends]   (also a talk comparison's folder)
    hvae sweep SWEEP.yaml [--workers N | --scheduler ADDRESS] [--out DIR]
    hvae evaluate [--agent llm,oracle,...] [--values ...] [--repeats N] [--baselines] [--json]
    hvae report RUN_DIR [RUN_DIR ...] [--out FILE]
    hvae summary RUN_DIR [--json]
    hvae validate SCENARIO.yaml [--set ...]
    hvae scenarios
    hvae dashboard SCENARIO [--port PORT] [--host HOST] [--set ...]
    hvae slider --choices AIAAII [--json]
    hvae serve-oracle [--port 8765] [--beta B] [--position-bias P] [--invalid-rate R] [--seed S]
    hvae distil RUN_OR_EVALUATION_DIR --out policy.yaml [--group G] [--by value|group|agent]

User errors (a bad file, argument or value, a folder another process is writing) print one line
``hvae: error: …`` to stderr and exit with status 2, without a traceback and without leaving a run
folder that looks complete. Every error line is one line (escape sequences and newlines quoted
from backends or files are removed, see :func:`~hvae.cli.errors.error_line`). A run stopped because an LLM backend is unavailable (see
:mod:`hvae.agents.llm.health`) prints one line naming the backend and its error and exits 1; so
does a failure inside hvae itself (set ``HVAE_DEBUG=1`` for the traceback). Credentials in URLs
are masked in every line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from hvae.agents.llm.health import BackendUnhealthy
from hvae.agents.llm.oracle_server import start_hint as oracle_start_hint
from hvae.cli.dashboard import dashboard
from hvae.cli.errors import EXIT_USER_ERROR, UserError, error_line, friendly_errors
from hvae.cli.distil import distil
from hvae.cli.evaluate import evaluate
from hvae.cli.oracle import serve_oracle
from hvae.cli.options import SET_HELP, cache_overrides, default_out_dir
from hvae.cli.sweep import sweep
from hvae.cli.tables import print_run_summary
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
        click.echo(error_line(f"hvae: error: {error.format_message()}") + f" (try '{command} --help')", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("hvae: aborted", err=True)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


@cli.command()
@click.argument("scenario", required=False)
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help="Continue the interrupted or killed run in this folder.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder (must not exist or be empty).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help=SET_HELP)
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the LLM response cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="LLM response cache folder (default $HVAE_CACHE_DIR or ~/.cache/hvae).")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.option("--no-report", is_flag=True, help="Do not write RUN_DIR/report.html at the end.")
@click.option("--wide", is_flag=True, help="Show every column of the summary table (needs about 170 columns).")
@click.option("--keep-going", is_flag=True, help="Go on with fallbacks when an LLM backend is unreachable or failing (default: stop the run as failed).")
@click.option("--trust-backends", is_flag=True, help=(
    "With --resume: use the backends in the folder's scenario.yaml although they read environment variables "
    "(API keys); without it the resume names the hosts and variables and stops."))
@click.option("--dry-run", is_flag=True, help="Validate, build the first round's prompts and print LLM calls, tokens and cost; run nothing.")
@click.option("--price-in", type=click.FloatRange(min=0), help="With --dry-run: price per million prompt tokens.")
@click.option("--price-out", type=click.FloatRange(min=0), help="With --dry-run: price per million completion tokens.")
@friendly_errors
def run(
    scenario: str | None, resume_dir: Path | None, out_dir: Path | None, overrides: tuple[str, ...],
    seed: int | None, no_cache: bool, cache_dir: Path | None, quiet: bool, no_report: bool, wide: bool,
    keep_going: bool, trust_backends: bool, dry_run: bool = False, price_in: float | None = None,
    price_out: float | None = None,
) -> None:
    """Run SCENARIO (a YAML file or a shipped scenario's name) into a run folder, or --resume one."""
    from hvae.cli import talk as talk_cli
    from hvae.experiments.runs import resume_run
    from hvae.experiments.talk import is_comparison
    from hvae.simulation.runner import RunFailed, RunInterrupted

    progress = not quiet and sys.stderr.isatty()
    config = None
    try:
        if resume_dir is not None:
            if scenario or overrides or seed is not None or out_dir is not None or dry_run:
                raise UserError("--resume continues a run as it was configured: give only the run folder")
            if is_comparison(resume_dir):  # a talk comparison (hvae.experiments.talk): both arms
                talk_cli.resume(resume_dir, progress=progress, quiet=quiet, wide=wide, trust_backends=trust_backends)
                return
            result = resume_run(resume_dir, progress=progress, keep_going=keep_going, trust_backends=trust_backends)
        else:
            if trust_backends:
                raise UserError("--trust-backends goes with --resume (a new run uses the backends of your own scenario)")
            if not scenario:
                raise UserError("give a SCENARIO to run (or --resume RUN_DIR)")
            overrides = overrides + cache_overrides(no_cache, cache_dir)
            if keep_going:
                overrides += ("backend_errors.keep_going=true",)
            config = load_scenario(scenario, overrides, seed=seed)
            if dry_run:  # what the run will cost (hvae.agents.llm.estimate); nothing runs
                from hvae.cli.dry_run import estimate_run

                for line in estimate_run(config, price_in, price_out).lines():
                    click.echo(line)
                return
            if config.communication.compare:  # talk vs. no talk, same seed (hvae.experiments.talk)
                talk_cli.run(config, out_dir or default_out_dir(config.name), progress=progress, quiet=quiet, wide=wide)
                return
            result = _run_with_estimate(config, out_dir or default_out_dir(config.name), progress)
    except RunInterrupted as stopped:
        click.echo(error_line(f"hvae: {stopped}"), err=True)
        sys.exit(130)
    except RunFailed as failed:
        hint = " (or add --keep-going to go on with fallbacks)" if isinstance(failed.cause, BackendUnhealthy) else ""
        start = oracle_start_hint(config.backends) if config is not None and "cannot be reached" in str(failed) else None
        hint = f"; {start}" if start else hint
        click.echo(error_line(f"hvae: error: {failed}") + hint, err=True)
        sys.exit(1)
    if not quiet:
        print_run_summary(result.path, wide=wide)
    for line in backend_warnings(result.summary):
        click.echo(line, err=True)
    if not quiet:
        from hvae.cli.dry_run import estimate_vs_actual

        if line := estimate_vs_actual(result.summary):
            click.echo(line)
    click.echo(f"run folder: {result.path}")
    if not no_report:
        _report_after_run(result.path)


def _run_with_estimate(config: Any, out_dir: Path, progress: bool) -> Any:
    """Run ``config``; an LLM run first counts its calls and tokens (kept in summary.json as llm_estimate)."""
    from hvae.cli.dry_run import estimate_run
    from hvae.experiments.runs import run_to_folder
    from hvae.simulation.model import HvaeModel

    if not config.uses_llm:
        return run_to_folder(config, out_dir, progress=progress)
    model = HvaeModel(config)
    return run_to_folder(config, out_dir, progress=progress, model=model, estimate=estimate_run(config, model=model).to_json())


def _report_after_run(run_dir: Path) -> None:
    """Write the run's report; a failure here is a warning, since the run itself succeeded."""
    from hvae.analysis.report import write_report

    try:
        path = write_report([run_dir], run_dir / "report.html")
    except Exception as error:  # noqa: BLE001 - the run is done; never fail it over its report
        if os.environ.get("HVAE_DEBUG"):
            raise
        click.echo(
            error_line(
                f"hvae: warning: the report could not be written ({type(error).__name__}: {error}); "
                f"retry with 'hvae report {run_dir}'"
            ),
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
    from hvae.analysis.dataset import ScenarioMismatch
    from hvae.analysis.report import ReportError, default_report_path, write_report
    from hvae.analysis.runfolder import NotARunFolder

    try:
        for run_dir in run_dirs:
            if not run_dir.is_dir():
                raise NotARunFolder(f"no such run folder: {run_dir}")
        if len(run_dirs) == 1 and out_file is None and (run_dirs[0] / "comparison.json").is_file():
            from hvae.analysis.talk_report import write_talk_report  # a talk comparison folder

            click.echo(f"report: {write_talk_report(run_dirs[0])}")
            return
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


def backend_warnings(summary: dict[str, Any]) -> list[str]:
    """One warning line per LLM backend that had failed calls in a run that went on, and one per run warning."""
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
        lines.append(error_line(line))
    lines += [error_line(f"hvae: warning: {warning}") for warning in summary.get("warnings") or []]  # e.g. a low valid share
    return lines


@cli.command()
@click.argument("scenario")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help=SET_HELP)
@friendly_errors
def validate(scenario: str, overrides: tuple[str, ...]) -> None:
    """Check SCENARIO without running it (schema, network, menus, deciders)."""
    from hvae.simulation.model import HvaeModel

    config = load_scenario(scenario, overrides)
    model = HvaeModel(config)
    model.close()
    click.echo(
        f"{scenario}: ok — {_count(model.n_agents, 'agent')} in {_count(len(config.population), 'group')}, "
        f"{_count(config.rounds, 'round')}, {config.network.kind} network, {config.menus.kind} menus"
    )


def _count(n: int, noun: str) -> str:
    """``1 agent``, ``2 agents``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
    from hvae.agents import slider_checks, svo

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
        "transitive": slider_checks.is_transitive(indices),
        "allocations": svo.primary_allocations(indices).tolist(),
    }
    if secondary_indices is not None:
        result["secondary_distances"] = slider_checks.secondary_distances(secondary_indices)
        result["prosocial_subtype"] = slider_checks.prosocial_subtype(secondary_indices)
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


cli.add_command(evaluate)
cli.add_command(sweep)
cli.add_command(dashboard)
cli.add_command(serve_oracle)
cli.add_command(distil)


if __name__ == "__main__":  # pragma: no cover
    main()
