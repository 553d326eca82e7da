"""``hvae fidelity POLICY RUN_DIR [RUN_DIR ...]``: how much behaviour a surrogate loses (:mod:`hvae.analysis.fidelity`).

::

    hvae fidelity policy.yaml runs/llm                     # one LLM run: decisions, agents; population untested
    hvae fidelity policy.yaml runs/llm-s1 runs/llm-s2 runs/llm-s3 runs/llm-s4 --seeds 8
    hvae fidelity policy.yaml runs/llm --llm-seeds 4 --json fidelity.json

RUN_DIRs are LLM runs of one scenario (different seeds); their decisions are pooled for the
decision and agent checks. The population check plays the first run's scenario with its LLM groups
replaced by the surrogate over ``--seeds`` seeds (in memory) and compares them with the LLM runs
given, plus ``--llm-seeds`` more runs of the LLM scenario played now (real LLM calls: meant for a
local server such as ``hvae serve-oracle``). Prints each check's verdict and criterion and the
surrogate's label (``PASSING``, ``FAILING`` or ``INCOMPLETE``), and keeps the result beside the policy
(``policy.fidelity.json``, tied to the policy file by its SHA-256), where the report of any run the
surrogate plays finds it, with the value shares of both sides over time
(``policy.fidelity_figures/value_shares.png`` and ``.svg``). Exit status 0 whatever the verdict, 2 for bad input (an unreadable policy,
a folder that is not a run).
"""

from __future__ import annotations

from pathlib import Path

import click

from hvae.cli.errors import UserError, friendly_errors


@click.command("fidelity")
@click.argument("policy", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--seeds", type=click.IntRange(0, 1000), default=6, show_default=True,
              help="Seeds the surrogates play the scenario on (0: no population check).")
@click.option("--llm-seeds", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="More seeds of the LLM scenario to play now (real LLM calls).")
@click.option("--folds", type=click.IntRange(2, 20), default=2, show_default=True,
              help="Parts the agents are split into for cross-validation (2: split halves).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the folds, bootstraps and replay.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the record (verdicts, criteria, figures as JSON; default: POLICY's stem + .fidelity.json).")
@friendly_errors
def fidelity(policy: Path, run_dirs: tuple[Path, ...], seeds: int, llm_seeds: int, folds: int, seed: int,
             json_path: Path | None) -> None:
    """Measure a surrogate POLICY against the LLM run(s) RUN_DIR: decisions, agents, population."""
    from hvae.agents.surrogate import PolicyError, load_policy
    from hvae.analysis import fidelity as measure
    from hvae.analysis.runfolder import NotARunFolder, RunFolder
    from hvae.experiments.fidelity import llm_runs, surrogate_runs

    try:
        surrogate = load_policy(policy)
    except PolicyError as error:
        raise UserError(str(error)) from None
    try:
        runs = []
        for run_dir in run_dirs:
            if not (run_dir / "scenario.yaml").is_file():
                raise NotARunFolder(f"{run_dir} is not an hvae run folder (no scenario.yaml)")
            runs.append(RunFolder(run_dir))
        scenario = runs[0].scenario
        extra = llm_runs(scenario, range(1000, 1000 + llm_seeds)) if llm_seeds else []
        played = surrogate_runs(scenario, policy, range(seeds), by_group=surrogate.by == "group") if seeds else []
    except (NotARunFolder, ValueError) as error:
        raise UserError(str(error)) from None
    result = measure.fidelity(surrogate, [*runs, *extra], played, policy_label=str(policy), folds=folds, seed=seed)
    click.echo(result.text())
    record = measure.save_record(result, policy, json_path)
    click.echo(f"record: {record}")
    figure = measure.population_figure(result.check("population"))
    if figure is not None:
        from hvae.analysis.figure_tools import save_figure

        paths = save_figure(figure, record.with_name(f"{record.stem}_figures"), "value_shares")
        click.echo(f"figure: {paths[0]}")
