"""The talk comparison's report: tables and figures of talk vs. no talk (paired arms, same seed).

::

    from hvae.analysis.talk_report import write_talk_report
    write_talk_report(Path("runs/talk"))        # the folder holding no_talk/ and talk/

writes into that folder ``talk_groups``, ``talk_value_pairs`` and ``talk_promises`` (each as
``.parquet`` and ``.csv``; see :mod:`hvae.analysis.talk` for the columns) and ``report.html``
with the figures (PNG and SVG also in ``report_figures/``):

* ``talk_vr`` — decision VR per group, no talk beside talk, with each group's chance level
  (a uniform random chooser on the same menus) and the ceiling (1.0, the value-rational oracle);
* ``talk_value_pairs`` — change of mean generosity (talk − no talk) per value pair;
* ``talk_promises`` — per group, the share of stated intentions kept beside its baseline (the paired
  no-talk arm's matching choices) and the difference, the effect of talk on keeping.

Every arm also keeps its own ordinary report (``no_talk/report.html``, ``talk/report.html``).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.analysis import report_page as page
from hvae.analysis.figure_tools import _new_figure, save_figure
from hvae.analysis.report import VALUE_BLIND_CAVEAT, value_blind_groups
from hvae.analysis.runfolder import RunFolder
from hvae.analysis.talk import ARMS, comparison_tables
from hvae.files.atomic import replaced_atomically, write_bytes_atomic

ARM_LABELS = {"no_talk": "no talk", "talk": "talk"}
ARM_COLORS = {"no_talk": "#8c8c8c", "talk": "#1f77b4"}


def fig_vr(groups: pd.DataFrame):
    names = list(dict.fromkeys(groups["group"]))
    fig, ax = _new_figure((max(6.0, 1.4 * len(names) + 3), 4.6))
    x = np.arange(len(names))
    width = 0.38
    for k, arm in enumerate(ARMS):
        part = groups[groups["arm"] == arm].set_index("group").reindex(names)
        ax.bar(x + (k - 0.5) * width, part["decision_vr"], width, color=ARM_COLORS[arm], label=ARM_LABELS[arm])
        ax.scatter(x + (k - 0.5) * width, part["chance_vr"], marker="_", s=260, color="black", zorder=3,
                   label="chance (uniform random chooser)" if k == 0 else None)
    ax.axhline(1.0, color="#2ca02c", lw=1, ls="--", label="ceiling (value-rational oracle)")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("decision VR")
    ax.set_title("Decision VR without and with talk (same seed, same games)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def fig_value_pairs(pairs: pd.DataFrame):
    from hvae.agents.svo import CATEGORY_ORDER

    if pairs.empty or pairs["delta_generosity"].isna().all():
        return None
    rows = [c for c in CATEGORY_ORDER if c in set(pairs["value_category"])]
    cols = [c for c in CATEGORY_ORDER if c in set(pairs["partner_category"])]
    grid = pairs.pivot(index="value_category", columns="partner_category", values="delta_generosity").reindex(index=rows, columns=cols)
    fig, ax = _new_figure((1.6 * len(cols) + 3.5, 1.1 * len(rows) + 2.2))
    limit = max(0.05, float(np.nanmax(np.abs(grid.to_numpy()))))
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="RdBu", vmin=-limit, vmax=limit)
    for i in range(len(rows)):
        for j in range(len(cols)):
            value = grid.iloc[i, j]
            ax.text(j, i, "–" if pd.isna(value) else f"{value:+.2f}", ha="center", va="center", fontsize=10)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("partner's value")
    ax.set_ylabel("own value")
    ax.grid(False)
    ax.set_title("Change of generosity with talk (talk − no talk)")
    fig.colorbar(image, ax=ax, label="Δ generosity (0 = least, 1 = most generous option)")
    return fig


def fig_promises(promises: pd.DataFrame):
    part = promises[promises["n_stated"] > 0]
    if part.empty:
        return None
    fig, ax = _new_figure((max(6.0, 1.3 * len(part) + 3), 4.2))
    x = np.arange(len(part))
    ax.bar(x - 0.15, part["kept_rate"], 0.3, color=ARM_COLORS["talk"], label="stated intention kept (talk)")
    ax.bar(x + 0.15, part["baseline_kept_rate"], 0.3, color=ARM_COLORS["no_talk"],
           label="baseline: the same agent's choice without talk matches it")
    ax.scatter(x, part["chance_kept_rate"], marker="_", s=300, color="black", zorder=3, label="1/k (context)")
    for xi, (n, total) in enumerate(zip(part["n_stated"], part["n_decisions"])):
        ax.text(xi, 1.02, f"{n}/{total} stated", ha="center", fontsize=8)
    ax.set_xticks(x, part["group"], rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of stated intentions kept")
    ax.set_title("Promise keeping: stated option vs. choice")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _write_table(folder: Path, stem: str, table: pd.DataFrame) -> None:
    with replaced_atomically(folder / f"{stem}.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with replaced_atomically(folder / f"{stem}.csv") as tmp:
        table.to_csv(tmp, index=False)


def _figure_html(fig, folder: Path, stem: str, caption: str) -> str:
    if fig is None:
        return ""
    png, _svg = save_figure(fig, folder, stem)
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{stem}"><img alt="{page.esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{page.esc(caption)}</figcaption></figure>")


def _groups_html(groups: pd.DataFrame) -> str:
    rows = []
    for group, part in groups.groupby("group", sort=False):
        by_arm = part.set_index("arm")
        first = by_arm.iloc[0]
        cells = [group, first["decider"]]
        for arm in ARMS:
            row = by_arm.loc[arm]
            cells += [page.fmt(row["decision_vr"], ".3f"), page.fmt(row["revealed_theta"], ".1f"),
                      page.fmt(row["generosity"], ".2f"), page.fmt(row["game_payoff"], ".1f")]
        cells += [page.fmt(first["chance_vr"], ".3f"),
                  page.fmt(first["delta_decision_vr"], "+.3f") + " " + page.interval(first["delta_decision_vr_low"], first["delta_decision_vr_high"], ".3f"),
                  page.fmt(first["delta_generosity"], "+.2f") + " " + page.interval(first["delta_generosity_low"], first["delta_generosity_high"], ".2f")]
        rows.append(cells)
    headers = ["group", "decider", "VR no talk", "revealed θ no talk", "generosity no talk", "payoff/game no talk",
               "VR talk", "revealed θ talk", "generosity talk", "payoff/game talk", "chance VR",
               "Δ VR [95% CI]", "Δ generosity [95% CI]"]
    return page.table(headers, rows, numeric_from=2)


def write_talk_report(folder: Path | str) -> Path:
    """Write the comparison tables and ``report.html`` into a talk comparison ``folder``; return the report path."""
    folder = Path(folder)
    no_talk, talk = RunFolder(folder / "no_talk"), RunFolder(folder / "talk")
    tables = comparison_tables(no_talk, talk)
    for stem, table in tables.items():
        _write_table(folder, stem, table)
    scenario = talk.scenario
    figures_dir = folder / "report_figures"
    blind = value_blind_groups(scenario)
    turns = (scenario.get("communication") or {}).get("turns")
    promises = tables["talk_promises"]
    sections = [
        f"<h1>hvae talk comparison — {page.esc(scenario.get('name', '?'))} (seed {page.esc(talk.summary.get('seed'))})</h1>",
        f'<p class="note">{page.esc(scenario.get("description", ""))}</p>',
        f'<div class="warning">{VALUE_BLIND_CAVEAT.format(groups=page.esc(", ".join(blind)))}</div>' if blind else "",
        "<p>Two runs of one scenario from the same seed: <strong>no talk</strong> (<code>no_talk/</code>) and "
        f"<strong>talk</strong> (<code>talk/</code>, up to {page.esc(turns)} messages per pair before each choice). "
        "Talk draws nothing from the random streams, so both arms play the same pairs on the same menus with the same "
        "option orders; each Δ is talk − no talk, the mean of per-agent differences with a 95% t-interval over the "
        "group's agents.</p>",
        "<h2>Per group</h2>", _groups_html(tables["talk_groups"]),
        _figure_html(fig_vr(tables["talk_groups"]), figures_dir, "talk_vr",
                     "Decision VR per group without and with talk; black ticks: chance; dashed: ceiling."),
        "<h2>Per value pair</h2>",
        page.table(["own value", "partner's value", "games", "generosity no talk", "generosity talk", "Δ generosity", "Δ payoff/game"],
                   [[r.value_category, r.partner_category, int(r.talk_n_games) if pd.notna(r.talk_n_games) else "–",
                     page.fmt(r.no_talk_generosity, ".2f"), page.fmt(r.talk_generosity, ".2f"),
                     page.fmt(r.delta_generosity, "+.2f"), page.fmt(r.delta_game_payoff, "+.1f")]
                    for r in tables["talk_value_pairs"].itertuples()], numeric_from=2),
        _figure_html(fig_value_pairs(tables["talk_value_pairs"]), figures_dir, "talk_value_pairs",
                     "Change of mean generosity with talk, by own and partner's value category."),
        "<h2>Promise keeping</h2>",
        "<p>A stated intention is the option an LLM agent named by its two amounts (its own first) in its messages of "
        "the round; it is kept when the agent's valid decision chose it. A value-following agent takes the option its "
        "value ranks first whether or not it talked, so keeping is judged against the <strong>baseline</strong>: how "
        "often the same agent's choice in the same round of the no-talk arm matches the option it stated. "
        "Δ = kept − baseline (the effect of talk on keeping), with a 95% t-interval over the group's agents. "
        "1/k (a uniform random chooser) is context only.</p>",
        page.table(["group", "decisions after talk", "stated an option", "kept", "baseline", "Δ kept", "95% CI", "1/k"],
                   [[r.group, r.n_decisions, r.n_stated, page.fmt(r.kept_rate, ".2f"),
                     f"{page.fmt(r.baseline_kept_rate, '.2f')} ({r.baseline})" if r.baseline else "–",
                     page.fmt(r.delta_kept, "+.2f"), page.interval(r.delta_kept_low, r.delta_kept_high, "+.2f"),
                     page.fmt(r.chance_kept_rate, ".2f")]
                    for r in promises.itertuples()]) if len(promises) else "<p>No LLM agent spoke.</p>",
        _figure_html(fig_promises(promises), figures_dir, "talk_promises",
                     "Share of stated intentions kept per group (talk) beside the no-talk baseline; black ticks: 1/k."),
        "<p>Each arm's own report: <code>no_talk/report.html</code>, <code>talk/report.html</code>; the conversations: "
        "<code>talk/messages.parquet</code> and <code>talk/transcripts.jsonl</code>.</p>",
    ]
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>hvae talk comparison</title>'
                f"<style>{page.CSS}</style></head><body>" + "\n".join(s for s in sections if s)
                + f"<footer>Generated {generated} from <code>{page.esc(folder)}</code>.</footer></body></html>\n")
    out = folder / "report.html"
    write_bytes_atomic(out, document.encode("utf-8"))
    return out
