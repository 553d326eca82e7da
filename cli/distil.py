"""``hvae distil``: fit a surrogate policy to a run's (or an evaluation's) LLM decisions.

::

    hvae distil runs/llm_demo --out policy.yaml                    # one unit per group
    hvae distil runs/llm_demo --out policy.yaml --group llm --by value
    hvae distil evaluations/gpt --out policy.yaml                  # an hvae evaluate folder

The model, the intervals and what is dropped are described in :mod:`hvae.analysis.distil`; the
policy file in :mod:`hvae.agents.surrogate`. A folder without decisions, an unknown group or a unit
with too few valid decisions is one line ``hvae: error: …`` with exit status 2, and no file is
written. The policy file is replaced atomically.
"""

from __future__ import annotations

from pathlib import Path

import click

from hvae.cli.errors import UserError, friendly_errors


@click.command("distil")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Policy file to write (YAML).")
@click.option("--group", "groups", multiple=True, help="Only this population group (repeatable; default: every group).")
@click.option("--by", type=click.Choice(["group", "value", "agent"]), default="group", show_default=True,
              help="One fitted unit per group, per value angle or per agent.")
@click.option("--no-position", is_flag=True, help="Fit without the first-position term (b = 0).")
@click.option("--no-reciprocity", is_flag=True, help="Fit without the reciprocity term (ρ = 0).")
@friendly_errors
def distil(source: Path, out_file: Path, groups: tuple[str, ...], by: str, no_position: bool, no_reciprocity: bool) -> None:
    """Fit a surrogate policy (logit choice model per unit) to SOURCE, a run or evaluation folder."""
    from hvae.agents.surrogate import PARAMETER_OF
    from hvae.analysis.distil import DistilError, distil_run
    from hvae.analysis.runfolder import NotARunFolder

    if not source.is_dir():
        raise UserError(f"{source}: no such run or evaluation folder")
    if not out_file.parent.is_dir():
        raise UserError(f"--out {out_file}: no folder {out_file.parent} to write the policy in")
    features = tuple(f for f, off in (("utility", False), ("position", no_position), ("reciprocity", no_reciprocity)) if not off)
    try:
        policy = distil_run(source, by=by, groups=list(groups) or None, features=features)  # type: ignore[arg-type]
    except (DistilError, NotARunFolder) as error:
        raise UserError(str(error)) from None
    policy.save(out_file)
    for key, unit in policy.units.items():
        terms = [t for t in policy.features if t not in unit.dropped]
        kept = ", ".join(f"{PARAMETER_OF[t]} {getattr(unit, PARAMETER_OF[t]):.3g}" for t in terms)
        dropped = "; ".join(f"{term} dropped: {why}" for term, why in unit.dropped.items())
        click.echo(f"{policy.by} {key}: θ {unit.theta:.1f}°, {kept}, invalid {unit.invalid_rate:.1%}, "
                   f"{unit.n_decisions} decisions" + (f" ({dropped})" if dropped else ""))
    click.echo(f"policy: {out_file}")
