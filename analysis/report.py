"""The report: one self-contained HTML page per run (or per set of seeds of one scenario).

::

    from hvae.analysis.report import write_report
    write_report([Path("runs/demo")], Path("runs/demo/report.html"))
    write_report([Path("runs/s1"), Path("runs/s2"), Path("runs/s3")], Path("runs/seeds.html"))

or from the shell: ``hvae report runs/demo`` (``hvae run`` writes one at the end of every run).

The page holds, in order: the scenario's settings (seeds, rounds, agents, network, matching,
menus, groups with their decider and value); each run's status, with a warning when a run is not
``complete`` (its tables then cover only the rounds it finished); a caveat whenever an LLM group
runs the embedded SmolLM2-135M-Instruct model, which is value-blind; whenever a surrogate played,
the fidelity of its policy (the record ``hvae fidelity`` keeps beside the policy file,
:mod:`hvae.analysis.fidelity`; "unmeasured" and a warning without one); the value-rationality table
(decision VR beside chance and ceiling, slider VR beside chance); the revealed angle per group;
the reciprocity index; LLM accounting from ``summary.json``; and the figures of
:mod:`hvae.analysis.plots`. Figures are embedded as base64 PNG, so the file can be mailed or
archived on its own; the PNG and SVG files are also kept in ``<report stem>_figures/`` beside it.

Several run folders make a multi-seed report: they must be seeds of one scenario (anything but
``seed``, ``cache`` and ``output`` equal), and every figure and table then shows the mean over
seeds with a 95% t-interval.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from hvae.agents.deciders import DISPLAYING_DECIDERS
from hvae.analysis import population as pop
from hvae.analysis import report_page as page
from hvae.analysis.dataset import Analysis, check_same_scenario
from hvae.analysis.games import MIN_BOOTSTRAP_AGENTS, plays_every_edge
from hvae.analysis.figure_tools import save_figure
from hvae.analysis.plots import FIGURES, fig_value_shares, small_group_note
from hvae.analysis.revealed import format_revealed
from hvae.analysis.rundata import RunData, is_run
from hvae.analysis.runfolder import NotARunFolder, RunFolder
from hvae.analysis.summary import group_summary, played_slider
from hvae.files.atomic import write_bytes_atomic

LLM_ACCOUNTING = (
    ("llm_calls", "LLM calls"), ("llm_cache_hits", "cache hits"), ("llm_invalid", "invalid replies"),
    ("tokens_in", "tokens in"), ("tokens_out", "tokens out"), ("llm_retries", "retries"),
    ("llm_errors", "errors"), ("llm_reasks", "re-asks"), ("llm_fallbacks", "fallbacks"),
    ("llm_setup_failures", "setup failures"),
)

VALUE_BLIND_CAVEAT = (
    "The embedded SmolLM2-135M-Instruct model is value-blind: it picks the first option whatever value it "
    "is given. The rows of {groups} show that the pipeline runs; they are <strong>not evidence about "
    "values</strong>. Point a backend at a real model for experiments (docs/llm.md: Backends)."
)


class ReportError(ValueError):
    """The report cannot be made from what was given."""


# ---------------------------------------------------------------------------------- facts
def value_blind_groups(scenario: dict[str, Any]) -> list[str]:
    """Names of LLM groups that run the embedded model without a custom ``model_path``."""
    backends = {"embedded": {"kind": "embedded"}, **(scenario.get("backends") or {})}
    names = []
    for group in scenario.get("population", []):
        decider = group.get("decider", {})
        if isinstance(decider, dict) and decider.get("kind") == "llm":
            backend = backends.get(decider.get("backend", "embedded")) or {}
            if backend.get("kind") == "embedded" and not backend.get("model_path"):
                names.append(str(group.get("name")))
    return names


def has_data(run: RunData) -> bool:
    """Whether the run folder has any decision rows (a run stopped before round 1 has none)."""
    try:
        return run.table("decisions").num_rows > 0
    except NotARunFolder:
        return False


def _status_note(summary: dict[str, Any]) -> str | None:
    """A sentence for a run that is not complete, else None."""
    status = summary.get("status", "unknown")
    done, planned = summary.get("rounds_completed", 0), summary.get("rounds_planned", "?")
    if status == "complete":
        return None
    if status == "complete_with_warnings":
        return f"complete, with a warning: {'; '.join(summary.get('warnings') or ['see summary.json'])}"
    if status == "interrupted":
        return f"interrupted (Ctrl-C) after {done} of {planned} rounds: results cover only those rounds."
    if status == "failed":
        return f"failed after {done} of {planned} rounds ({summary.get('error', 'no error recorded')}): results cover only those rounds."
    if status == "running":
        return (f"not complete: summary.json still says 'running' ({done} of {planned} rounds flushed). The run is "
                "either still going or was killed before it could finish; this report reads the rows written so far.")
    return f"status '{status}': not a complete run."


# ---------------------------------------------------------------------------------- sections
def _settings_section(runs: list[RunData]) -> str:
    scenario = runs[0].scenario
    summaries = [r.summary for r in runs]
    seeds = ", ".join(str(s.get("seed")) for s in summaries)
    rows = [
        ("scenario", scenario.get("name", "?")),
        ("description", scenario.get("description", "")),
        ("seed" if len(runs) == 1 else f"seeds ({len(runs)} runs)", seeds),
        ("rounds planned", scenario.get("rounds")),
        ("agents", summaries[0].get("n_agents")),
        ("network", page.params(scenario.get("network", {}))),
        ("matching", "— (public goods: every group plays)" if plays_every_edge(scenario) and scenario.get("matching") != "all_edges"
         else scenario.get("matching")),
        ("menus", page.params(scenario.get("menus", {}))),
        ("history length", (scenario.get("history") or {}).get("length")),
    ]
    settings = page.table(["setting", "value"], rows, numeric_from=99, cls="settings")
    agents = runs[0].agents() if runs[0].has_table("agents") else pd.DataFrame()
    counts = agents["group"].value_counts() if not agents.empty else pd.Series(dtype=int)
    group_rows = []
    for group in scenario.get("population", []):
        size = group.get("count") if group.get("count") is not None else f"share {group.get('share')}"
        group_rows.append((group.get("name"), counts.get(group.get("name"), size), page.value_text(group.get("value")),
                           page.decider_text(group.get("decider"), scenario)))
    groups = page.table(["group", "agents", "value", "decider"], group_rows, numeric_from=99)
    return f"<h2>Settings</h2>{settings}<h3>Groups</h3>{groups}"


def _status_section(runs: list[RunData]) -> str:
    rows, notes = [], []
    for run in runs:
        summary = run.summary
        status = summary.get("status", "unknown")
        badge = page.Raw(f'<span class="status {page.esc(status)}">{page.esc(status)}</span>')
        rows.append((run.label, summary.get("seed"), badge,
                     f"{summary.get('rounds_completed', 0)} / {summary.get('rounds_planned', '?')}",
                     summary.get("n_decisions", "–"), summary.get("started_at", "–"), summary.get("finished_at") or "–"))
        note = _status_note(summary)
        if note:
            notes.append(f"<li><code>{page.esc(run.label)}</code>: {page.esc(note)}</li>")
    table = page.table(["run folder", "seed", "status", "rounds done", "decisions", "started", "finished"], rows, numeric_from=99)
    warning = ""
    if notes:
        unfinished = any(run.summary.get("status") not in ("complete", "complete_with_warnings") for run in runs)
        headline = "Not every run is complete." if unfinished else "Every run is complete, but with a warning."
        warning = (f'<div class="warning"><strong>{headline}</strong><ul>' + "".join(notes) + "</ul></div>")
    return f"<h2>Status</h2>{warning}{table}"


def _caveat_section(scenario: dict[str, Any]) -> str:
    return _value_blind_caveat(scenario) + _sampled_records_note(scenario)


def _value_blind_caveat(scenario: dict[str, Any]) -> str:
    groups = value_blind_groups(scenario)
    if not groups:
        return ""
    names = ", ".join(f"<code>{page.esc(g)}</code>" for g in groups)
    return f'<div class="caveat"><strong>Caveat — value-blind model.</strong> {VALUE_BLIND_CAVEAT.format(groups=names)}</div>'


def _sampled_records_note(scenario: dict[str, Any]) -> str:
    """Where a run kept the decisions of a sample of agents (``records: {decisions: sample}``), say so."""
    records = scenario.get("records") or {}
    if records.get("decisions") != "sample":
        return ""
    return (
        f'<div class="caveat"><strong>Decisions of a sample.</strong> This run kept every decision of '
        f'{int(records.get("sample_agents", 0)):,} agents drawn from its seed (<code>records: {{decisions: sample}}</code>): '
        "value rationality, revealed angles, first-position shares and the group table below are estimated "
        "from them. Value shares, payoffs and Gini cover every agent; <code>choice_counts.parquet</code> counts "
        "every decision.</div>"
    )


def _headline_section(runs: list[RunData], population: str | None = None) -> str:
    """What a newcomer should read first: the population result (under dynamics), ceiling, chance, the
    LLM rows and their position bias."""
    from hvae.analysis.headline import headline_lines
    from hvae.analysis.position import position_bias

    summaries = pd.concat([group_summary(r) for r in runs])
    numeric = summaries.groupby("group", sort=False).mean(numeric_only=True)
    labels = summaries.groupby("group", sort=False)[["decider", "value"]].first()
    groups = labels.join(numeric).reset_index()
    decisions = pd.concat([r.decisions() for r in runs], ignore_index=True)
    bias = position_bias(decisions, ["group"])
    bias = bias[bias["group"].isin(groups.loc[groups["decider"].isin(DISPLAYING_DECIDERS), "group"])]
    lines = ([population] if population else []) + headline_lines(groups, bias)
    if not lines:
        return ""
    parts = ["<h2>What this run shows</h2><ul>", *(f"<li>{page.esc(line)}</li>" for line in lines), "</ul>"]
    if not bias.empty:
        if "first_chance" not in bias:  # (a frame without the context column)
            bias = bias.assign(first_chance=float("nan"))
        rows = [[g, page.fmt(n, ".0f"), page.fmt(share, ".1%"), page.fmt(expected, ".1%"), page.fmt(p, ".2g"),
                 page.fmt(chance, ".1%")]
                for g, n, share, expected, p, chance in
                bias[["group", "n_valid", "first_share", "first_expected", "p_value", "first_chance"]].itertuples(index=False)]
        parts.append('<p class="note">Position bias of the LLM groups: the share of valid decisions that took the option '
                     "shown first, beside the share the <em>same choices</em> would give if the order shown did not "
                     "matter (display-adjusted: each decision takes the option shown first with the probability that "
                     "its item's decisions, all displays pooled, chose that option), and the exact two-sided test of "
                     "that. The order shown is counterbalanced and recorded per decision. 1/k (a chooser indifferent "
                     "to the options too) is context only: a value-following chooser takes the first option more often, "
                     "because the best option of a slider item sits at an end of the menu.</p>")
        parts.append(page.table(["group", "valid decisions", "first shown", "expected (display-adjusted)", "p-value",
                                 "1/k (context)"], rows, numeric_from=1))
    return "".join(parts)


def _vr_section(analysis: Analysis, runs: list[RunData]) -> str:
    summaries = [group_summary(r) for r in runs]
    slider = played_slider(runs[0])
    intro = ("<p>Only <strong>valid decisions</strong> are measured (the fallback choices of unusable LLM replies are "
             "excluded and counted as invalid), each scored against the value the agent held when it decided. "
             "<strong>Decision VR</strong>: on each menu the chosen option scores (U(c) − min U)/(max U − min U) "
             "for the agent's own assigned angle; 1 = always the best option for its value. <strong>Chance</strong> = "
             "a uniform random chooser on the same menus; <strong>ceiling</strong> = the value-rational oracle.")
    if slider:
        intro += (" <strong>Slider VR</strong> = the mean over answer profiles of 1 − |θ̂ − θ_att| / 77.65° against "
                  "the attainable slider target, beside the chance and ceiling levels of the same per-profile score "
                  "(a uniform random answerer; the oracle, whose random tie-breaks keep it below 1 where items tie).")
    intro += "</p>"
    headers = ["group", "decider", "agents", "value", "mean payoff", "valid decisions", "invalid", "decision VR",
               "95% CI", "chance", "ceiling"]
    if slider:
        headers += ["profiles", "slider θ̂", "target θ_att", "slider VR", "95% CI ", "chance ", "ceiling "]
    vr = analysis.group_vr.set_index("group")
    merged = pd.concat(summaries).groupby("group", sort=False)
    means = merged.mean(numeric_only=True)
    first = summaries[0].set_index("group")
    rows = []
    for group in analysis.order("group", list(means.index)):
        m, f = means.loc[group], first.loc[group] if group in first.index else None
        ci = vr.loc[group] if group in vr.index else None
        row = [group, f["decider"] if f is not None else "", page.fmt(m.get("n_agents"), ".0f"), f["value"] if f is not None else "",
               page.fmt(m.get("mean_payoff"), ".2f"), page.fmt(m.get("n_valid"), ",.0f"), page.fmt(m.get("invalid_rate"), ".1%"),
               page.fmt(m.get("decision_vr"), ".3f"),
               page.interval(ci["decision_vr_low"], ci["decision_vr_high"], ".3f") if ci is not None else "–",
               page.fmt(m.get("chance_vr"), ".3f"), page.fmt(m.get("ceiling_vr"), ".2f")]
        if slider:
            row += [page.fmt(m.get("n_profiles"), ",.0f"), page.fmt(m.get("slider_angle"), ".1f"), page.fmt(m.get("attainable_angle"), ".1f"),
                    page.fmt(m.get("slider_vr"), ".3f"),
                    page.interval(ci.get("slider_vr_low"), ci.get("slider_vr_high"), ".3f") if ci is not None else "–",
                    page.fmt(m.get("chance_slider_vr"), ".3f"), page.fmt(m.get("ceiling_slider_vr"), ".3f")]
        rows.append(row)
    scope = (f"mean over {len(runs)} seeds (counts: mean per seed); 95% CI = t-interval over seeds" if analysis.multi
             else "95% CI = t-interval over the group's agents")
    scope += ", clipped to [0, 1]" + small_group_note(analysis.group_vr)
    return f'<h2 id="vr">Value rationality</h2>{intro}<p class="note">{scope}.</p>' + page.table(headers, rows, numeric_from=2, cls="vr", text_columns=(3,))


def _revealed_section(analysis: Analysis) -> str:
    frames = [f for f in analysis.revealed_per_run if not f.empty]
    if not frames:
        return ""
    intro = ("<p>The <strong>revealed angle</strong> θ̂ is the maximum-likelihood SVO angle of a logit chooser "
             "P(c) ∝ exp(β·U_θ(c)) fitted to all of a group's decisions; β is its inverse temperature (0 = random). "
             "Compare θ̂ (in brackets: its 95% profile-likelihood interval) with the group's mean assigned angle. "
             "<em>bounded [a, b]</em>: the choices fit every angle "
             "in a range equally well (e.g. an oracle on menus that cannot tell nearby values apart), so only the "
             "95% set is shown, no point; <em>n/i</em>: the decisions identify no angle.</p>")
    if analysis.multi:
        # only point-identified angles are averaged: a set's middle or an unidentified fit is no estimate
        points = [f.assign(theta=f["theta"].where(f["identification"] == "point")) for f in frames]
        table = pop.across_seeds(points, ["group"], ["theta", "target", "beta"])
        n = pd.concat(frames).groupby("group")["n"].sum()
        identified = pd.concat(points).groupby("group")["theta"].count()
        rows = [(r["group"], page.fmt(r["target"], ".1f"), "n/i" if pd.isna(r["theta"]) else f"{r['theta']:.1f}",
                 page.interval(r["theta_low"], r["theta_high"]), f"{int(identified.get(r['group'], 0))} of {len(frames)}",
                 page.fmt(r["beta"], ".3g"), int(n.get(r["group"], 0))) for _, r in table.iterrows()]
        headers = ["group", "assigned angle (mean)", "revealed θ̂ (mean over seeds)", "95% t-interval over seeds",
                   "seeds with a point estimate", "β (mean)", "decisions"]
    else:
        table = frames[0]
        rows = [(r["group"], page.fmt(r["target"], ".1f"), format_revealed(r["theta"], r["ci_low"], r["ci_high"], r["identification"]),
                 _IDENTIFICATION_TEXT[r["identification"]], page.fmt(r["beta"], ".3g"), int(r["n"])) for _, r in table.iterrows()]
        headers = ["group", "assigned angle (mean)", "revealed θ̂", "identified", "β (1/coin)", "decisions"]
    order = {g: i for i, g in enumerate(analysis.order("group", [r[0] for r in rows]))}
    rows.sort(key=lambda r: order.get(r[0], 99))
    return f"<h2>Revealed angle per group</h2>{intro}" + page.table(headers, rows, cls="revealed")


_IDENTIFICATION_TEXT = {
    "point": "point",
    "set": "only a set (the choices fit every angle in a range)",
    "none": "not identified",
}


def _reciprocity_section(analysis: Analysis) -> str:
    table = analysis.reciprocity
    if table.empty:
        return ""
    intro = ("<p><strong>Reciprocity index</strong>: the correlation between how generous an agent's partners were to it "
             "in one game (centred on what that menu usually gets) and how generous it is in its next game (centred on "
             "its own habit on that menu); generosity = where the amount given sits in the menu's range of 'other' "
             "amounts. +1 = gives back in proportion, 0 = no link; – = undefined: the agent acts the same on each menu "
             "every time (a history-blind oracle without ties), so it neither reciprocates nor fails to. History-blind "
             "agents that vary only by chance (random choosers, oracles breaking ties) score near 0. ")
    intro += ("Mean over seeds, 95% t-interval over seeds.</p>" if analysis.multi
              else f"95% interval: cluster bootstrap over agents (only with ≥ {MIN_BOOTSTRAP_AGENTS} agents).</p>")
    rows = []
    for _, r in table.iterrows():
        size = int(r["n_seeds"]) if analysis.multi else int(r["pairs"])
        rows.append((r["group"], page.fmt(r["r"], ".3f"), page.interval(r["ci_low"], r["ci_high"], ".3f"), size))
    headers = ["group", "reciprocity r", "95% CI", "seeds" if analysis.multi else "game pairs"]
    return f"<h2>Reciprocity</h2>{intro}" + page.table(headers, rows)


def surrogate_policies(scenario: dict[str, Any]) -> dict[str, str]:
    """Group name → policy file of every group a surrogate played (``decider: {kind: surrogate}``)."""
    return {
        g["name"]: str(g["decider"].get("policy"))
        for g in scenario.get("population", [])
        if isinstance(g.get("decider"), dict) and g["decider"].get("kind") == "surrogate"
    }


def _surrogate_section(scenario: dict[str, Any]) -> str:
    """Fidelity of every surrogate that played: the record ``hvae fidelity`` left beside its policy."""
    from hvae.analysis.fidelity import read_record

    policies = surrogate_policies(scenario)
    if not policies:
        return ""
    intro = ("<p>Surrogate groups play a policy distilled from LLM decisions (<code>hvae distil</code>). Their rows "
             "are evidence about the LLM only as far as the surrogate keeps its behaviour: <code>hvae fidelity POLICY "
             "RUN_DIR</code> measures that on three levels (decisions, agents, population; docs/fidelity.md), and a "
             "surrogate failing any of them is <strong>failing</strong>.</p>")
    rows = []
    warnings = []
    for policy in sorted(set(policies.values())):
        groups = ", ".join(g for g, p in policies.items() if p == policy)
        record, why = read_record(policy)
        if record is None:
            rows.append((groups, policy, "unmeasured", "–", "–", "–"))
            warnings.append(f"{policy}: fidelity not measured ({why}); run hvae fidelity {policy} <LLM run folder>")
            continue
        verdicts = {c["name"]: c for c in record.get("checks", [])}
        cells = [page.Raw(f'<span title="{page.esc(verdicts[n]["criterion"])}">{page.esc(verdicts[n]["verdict"])}</span>')
                 if n in verdicts else "–" for n in ("decisions", "agents", "population")]
        rows.append((groups, policy, str(record.get("label", "?")), *cells))
        if record.get("label") != "passing":
            warnings.append(f"{policy} is {record.get('label')}: its groups' rows may be artefacts of the surrogate")
    box = "".join(f'<div class="warning">{page.esc(w)}</div>' for w in warnings)
    headers = ["groups", "policy", "fidelity", "decisions", "agents", "population"]
    return "<h2>Surrogate fidelity</h2>" + intro + box + page.table(headers, rows, numeric_from=6)


def _llm_section(runs: list[RunData]) -> str:
    summaries = [r.summary for r in runs]
    llm_groups = any(
        isinstance(g.get("decider"), dict) and g["decider"].get("kind") == "llm" for g in runs[0].scenario.get("population", [])
    )
    if not llm_groups and not any(s.get("llm_calls") for s in summaries):
        return ""
    if not any("llm_calls" in s for s in summaries):
        return ""
    headers = ["seed", *[label for _, label in LLM_ACCOUNTING]]
    rows = [(s.get("seed"), *[page.fmt(s.get(key, 0), ",") for key, _ in LLM_ACCOUNTING]) for s in summaries]
    return ("<h2>LLM accounting</h2><p>From <code>summary.json</code>: tokens are those the backends processed in this run "
            "(cached replies cost none).</p>" + page.table(headers, rows))


def _figures_section(analysis: Analysis, figures_dir: Path, shown: frozenset[str] = frozenset()) -> str:
    parts = ["<h2>Figures</h2>"]
    for stem, build, caption in FIGURES:
        if stem in shown:  # already drawn higher up
            continue
        fig = build(analysis)
        if fig is not None:
            parts.append(_figure_html(fig, stem, caption, figures_dir))
    return "".join(parts)


def _figure_html(fig, stem: str, caption: str, figures_dir: Path) -> str:
    """One figure, saved beside the report and embedded in it."""
    png, _svg = save_figure(fig, figures_dir, stem)
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{stem}"><img alt="{page.esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{page.esc(caption)} <span class=\"files\">({page.esc(stem)}.png / .svg in "
        f"{page.esc(figures_dir.name)}/)</span></figcaption></figure>"
    )


def population_sentence(analysis: Analysis) -> str | None:
    """Value shares first → last round played (the ``value_shares`` figure's ends), or None without dynamics."""
    from hvae.analysis.summary import share_changes

    rule = (analysis.scenario.get("dynamics") or {}).get("rule", "none")
    shares = analysis.shares
    if rule == "none" or shares.empty:
        return None
    note = " (mean over seeds)" if analysis.multi else ""
    first, last = shares.iloc[0].to_dict(), shares.iloc[-1].to_dict()
    return (f"Population result ({rule}): value shares among the agents that act on their value, by the value held "
            f"while deciding, round {int(shares.index[0]) + 1} → round {int(shares.index[-1]) + 1}{note}: "
            f"{share_changes(first, last)}.")


def _population_section(analysis: Analysis, figures_dir: Path) -> str:
    """A dynamics run's result, first: value shares before → after and their figure."""
    sentence = population_sentence(analysis)
    fig = fig_value_shares(analysis) if sentence else None
    if fig is None:
        return ""
    caption = next(c for stem, _, c in FIGURES if stem == "value_shares")
    return f"<h2>Population result</h2><p>{page.esc(sentence)}</p>" + _figure_html(fig, "value_shares", caption, figures_dir)


def default_report_path(run_dirs: Sequence[Path]) -> Path:
    """``RUN_DIR/report.html`` for one run; ``<common parent>/report.html`` for several."""
    dirs = [Path(d).resolve() for d in run_dirs]
    if len(set(dirs)) < len(dirs):
        raise ReportError("a run folder is given more than once")
    if len(dirs) == 1:
        return dirs[0] / "report.html"
    common = Path(os.path.commonpath(dirs))
    if common in dirs or common == Path(common.anchor):
        raise ReportError("several run folders without a common parent folder: give the report path with --out")
    return common / "report.html"


def write_report(run_dirs: Sequence[RunData | Path | str], out: Path | str) -> Path:
    """Write a self-contained HTML report of one run, or of several seeds of one scenario.

    Each run is a run folder's path or run data (:mod:`hvae.analysis.rundata`: a folder or a run
    in memory).

    Raises:
        NotARunFolder: a folder is missing or is not an hvae run folder.
        ScenarioMismatch: several folders that are not seeds of one scenario.
        ReportError: no folders given.
    """
    if not run_dirs:
        raise ReportError("no run folders given")
    for d in run_dirs:
        if not is_run(d) and not Path(d).is_dir():  # type: ignore[arg-type]
            raise NotARunFolder(f"no such run folder: {d}")
    runs: list[RunData] = [d if is_run(d) else RunFolder(d) for d in run_dirs]  # type: ignore[misc,arg-type]
    for run in runs:
        if isinstance(run, RunFolder) and not (run.path / "scenario.yaml").is_file():
            raise NotARunFolder(f"{run.path} is not an hvae run folder (no scenario.yaml)")
    check_same_scenario(runs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scenario = runs[0].scenario
    analysed = [r for r in runs if has_data(r)]
    seeds = ", ".join(str(r.summary.get("seed")) for r in runs)
    title = f"hvae report — {scenario.get('name', '?')} ({'seed' if len(runs) == 1 else 'seeds'} {seeds})"
    sections = [
        f"<h1>{page.esc(title)}</h1>",
        f'<p class="note">{page.esc(scenario.get("description", ""))}</p>',
        _caveat_section(scenario),
        _surrogate_section(scenario),
        _status_section(runs),
        _settings_section(runs),
    ]
    if analysed:
        analysis = Analysis(analysed)
        if len(analysed) < len(runs):
            sections.append(f'<div class="warning">{len(runs) - len(analysed)} run(s) have no decisions yet and are left out '
                            "of the tables and figures below.</div>")
        figures_dir = out.parent / f"{out.stem}_figures"
        population = _population_section(analysis, figures_dir)
        sections.insert(3, _headline_section(analysed, population_sentence(analysis) if population else None))
        sections.insert(3, population)  # a dynamics run leads with its population result
        sections += [
            _vr_section(analysis, analysed),
            _revealed_section(analysis),
            _reciprocity_section(analysis),
            _llm_section(runs),
            _figures_section(analysis, figures_dir, frozenset({"value_shares"}) if population else frozenset()),
        ]
    else:
        sections += ['<div class="warning">No round was completed in any run: there is nothing to analyse yet.</div>',
                     _llm_section(runs)]
    versions = runs[0].summary.get("versions", {})
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    footer = (f"<footer>Generated {generated} by hvae {page.esc(versions.get('hvae', ''))} from "
              f"{', '.join(f'<code>{page.esc(r.label)}</code>' for r in runs)}. Versions of the run: "
              f"{page.esc(', '.join(f'{k} {v}' for k, v in versions.items()))}.</footer>")
    document = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{page.esc(title)}</title><style>{page.CSS}</style></head><body>"
            + "\n".join(s for s in sections if s) + footer + "</body></html>\n")
    write_bytes_atomic(out, document.encode("utf-8"))
    return out
