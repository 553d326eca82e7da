"""The data behind a run's figures and report, computed once: :class:`Analysis`.

``Analysis.of(run_or_runs)`` reads one run folder, or several seeds of one scenario (checked by
:func:`check_same_scenario`, else :class:`ScenarioMismatch`), and computes per-round and per-agent
tables on first use; :mod:`hvae.analysis.plots` draws them and :mod:`hvae.analysis.report`
reuses them for its tables::

    analysis = Analysis.of(["runs/s1", "runs/s2"])
    analysis.rounds_group   # per round and group, means over seeds with 95% t-interval columns
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.analysis import games
from hvae.analysis import population as pop
from hvae.analysis.palette import group_colors, series_colors
from hvae.analysis.rundata import RunData, is_run
from hvae.analysis.summary import agent_summary


class ScenarioMismatch(ValueError):
    """Several run folders that are not seeds of one scenario."""


_IGNORED_KEYS = ("seed", "cache", "output")


def check_same_scenario(runs: Sequence[RunData]) -> None:
    """Raise :class:`ScenarioMismatch` unless all runs resolve to the same scenario but the seed."""
    first = {k: v for k, v in runs[0].scenario.items() if k not in _IGNORED_KEYS}
    for run in runs[1:]:
        other = {k: v for k, v in run.scenario.items() if k not in _IGNORED_KEYS}
        if other != first:
            keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
            raise ScenarioMismatch(
                f"{run.label} is not a seed of the same scenario as {runs[0].label} "
                f"(they differ in: {', '.join(keys)}); a multi-seed report needs runs that differ only in seed"
            )


@dataclass
class Analysis:
    """The data behind the figures and the report, computed once per set of runs.

    One run: per-round figures of that run; several runs: mean and 95% t-interval over seeds
    (columns ``<metric>_low`` / ``<metric>_high``; NaN for a single run).
    """

    runs: list[RunData]
    by: pop.Grouping = "group"
    drift_window: int | None = None

    @classmethod
    def of(cls, run_or_runs: RunData | str | Path | Sequence[RunData | str | Path], **options) -> Analysis:
        items = [run_or_runs] if is_run(run_or_runs) or isinstance(run_or_runs, (str, Path)) else list(run_or_runs)  # type: ignore[arg-type]
        if not items:
            raise ValueError("no run folders given")
        runs = [pop.as_run(r) for r in items]
        check_same_scenario(runs)
        return cls(runs, **options)

    @property
    def multi(self) -> bool:
        return len(self.runs) > 1

    @property
    def first(self) -> RunData:
        return self.runs[0]

    @cached_property
    def scenario(self) -> dict:
        return self.first.scenario

    @cached_property
    def seeds(self) -> list[int]:
        return [r.summary.get("seed") for r in self.runs]

    def order(self, by: pop.Grouping, present: Sequence[str]) -> list[str]:
        return pop.group_order(self.first, by, present)

    def colors(self, names: Sequence[str], by: pop.Grouping | None = None) -> dict[str, str]:
        """A colour per series: population groups by :func:`~hvae.analysis.palette.group_colors`
        (their category's colour when each starts in a category of its own), others by
        :func:`~hvae.analysis.palette.series_colors`."""
        by = by or self.by
        if by != "group":
            return series_colors(names, by)
        agents = self.first.agents()
        column = "initial_value_angle" if "initial_value_angle" in agents else "value_angle"
        group = agents["group"].astype(str)
        return group_colors({name: agents.loc[group == name, column].to_numpy(float) for name in names})

    @cached_property
    def played(self) -> bool:
        """Whether any run has at least one decided round."""
        return any(not r.rounds().empty for r in self.runs)

    # -------------------------------------------------------------- per round
    def _per_round(self, by: pop.Grouping | str) -> pd.DataFrame:
        metrics = ["mean_payoff", "welfare", "gini", "share", "mean_value_angle"]
        if self.multi:
            return pop.per_round_across_seeds(self.runs, by, metrics)
        frame = pop.per_round(self.first, by)
        for metric in metrics:
            frame[f"{metric}_low"] = np.nan
            frame[f"{metric}_high"] = np.nan
        return frame

    @cached_property
    def rounds_group(self) -> pd.DataFrame:
        return self._per_round(self.by)

    @cached_property
    def rounds_all(self) -> pd.DataFrame:
        return self._per_round("all")

    @cached_property
    def shares(self) -> pd.DataFrame:
        """Mean (over seeds) population share per round and value category, wide."""
        tables = [pop.value_shares(r, "value_category") for r in self.runs]
        stacked = pd.concat(tables, keys=range(len(tables))).fillna(0.0)
        mean = stacked.groupby(level=1).mean()
        return mean.reindex(columns=self.order("value_category", mean.columns))

    # -------------------------------------------------------------- revealed angles
    @cached_property
    def drift(self) -> pd.DataFrame:
        if self.multi:
            return pop.revealed_drift_across_seeds(self.runs, self.by, window=self.drift_window)
        frame = pop.revealed_drift(self.first, self.by, window=self.drift_window)
        return frame.assign(theta_low=frame["ci_low"], theta_high=frame["ci_high"])

    @cached_property
    def revealed_per_run(self) -> list[pd.DataFrame]:
        """Per run: revealed angle of each group's pooled decisions (with ``target``)."""
        return [pop.revealed_by(r, self.by) for r in self.runs]

    @cached_property
    def revealed_agents(self) -> pd.DataFrame:
        """Revealed angle per agent **and value it held** in the first run, with group and category.

        Under an update rule an agent's value can change during the run; each value it held gets
        its own fit from the decisions made under it, and ``target`` is that value (the value in
        force when the decisions were made). Agents that never decided have one row with their
        final value as ``target`` and no fit.
        """
        fits = pop.revealed_by(self.first, ["agent_id", "value_angle"]).drop(columns="value_angle")
        agents = self.first.agents()[["agent_id", "group", "decider", "value_category", "value_angle"]]
        merged = agents.merge(fits, on="agent_id", how="left")
        merged["target"] = merged["target"].fillna(merged["value_angle"])
        merged["identification"] = merged["identification"].fillna("none")
        return merged

    def revealed_agents_sample(self, limit: int, seed: int) -> tuple[pd.DataFrame, int]:
        """:attr:`revealed_agents`, or when it has more than ``limit`` rows, ``limit`` of its
        agent-values that made decisions, drawn with ``seed``; and how many rows there are to draw from.

        Only the drawn agent-values are fitted: a run that keeps 10,000 agents' decisions would
        otherwise fit all of them (minutes) to show a few hundred, and a million-agent run whose
        decisions are sampled would show mostly agents without any.
        """
        from hvae.analysis.rationality import behavioural

        decisions = self.first.decisions()
        decisions = decisions[behavioural(decisions)]
        held = decisions[["agent_id", "value_angle"]].drop_duplicates().sort_values(["agent_id", "value_angle"])
        agents = self.first.agents()[["agent_id", "group", "decider", "value_category", "value_angle"]]
        rows = agents.merge(held.rename(columns={"value_angle": "_held"}), on="agent_id", how="left")
        if len(rows) <= limit:
            return self.revealed_agents, len(rows)
        rows = rows.dropna(subset=["_held"])
        drawn = rows if len(rows) <= limit else rows.sample(limit, random_state=seed)
        pairs = drawn[["agent_id", "_held"]].rename(columns={"_held": "value_angle"})
        chosen = decisions.merge(pairs, on=["agent_id", "value_angle"], how="inner")
        fits = pop.revealed_of(chosen, self.first.menus(), ["agent_id", "value_angle"])
        fits = fits.rename(columns={"value_angle": "_held"}).astype({"_held": float})
        merged = drawn.merge(fits, on=["agent_id", "_held"], how="left").drop(columns="_held")
        merged.index = drawn.index
        merged["identification"] = merged["identification"].fillna("none")
        return merged, len(rows)

    # -------------------------------------------------------------- games
    @cached_property
    def pair_payoffs(self) -> pd.DataFrame:
        """Matrix of mean payoff per game (row group vs column group), mean over seeds."""
        longs = [games.pair_payoffs(r, self.by) for r in self.runs]
        longs = [x for x in longs if not x.empty]
        if not longs:
            return pd.DataFrame()
        stacked = pd.concat(longs)
        mean = stacked.groupby(["group", "partner_group"], as_index=False).agg(
            mean_payoff=("mean_payoff", "mean"), games=("games", "sum")
        )
        names = self.order(self.by, sorted(set(mean["group"]) | set(mean["partner_group"])))
        return games.pair_matrix(mean, names)

    @cached_property
    def reciprocity(self) -> pd.DataFrame:
        """Reciprocity index per group (single run) or mean over seeds with a t-interval."""
        tables = [games.reciprocity(r, self.by) for r in self.runs]
        if not self.multi:
            return tables[0]
        merged = pop.across_seeds(tables, ["group"], ["r"])
        merged = merged.rename(columns={"r_low": "ci_low", "r_high": "ci_high"})
        order = [*self.order(self.by, [g for g in merged["group"] if g != "all"]), "all"]
        return merged.set_index("group").reindex([g for g in order if g in set(merged["group"])]).reset_index()

    # -------------------------------------------------------------- value rationality
    @cached_property
    def agent_vr(self) -> list[pd.DataFrame]:
        return [agent_summary(r) for r in self.runs]

    @cached_property
    def group_vr(self) -> pd.DataFrame:
        """Per group: decision VR and slider VR with 95% intervals, chance, ceiling and the first-option reference.

        One run: the interval is a t-interval over the group's agents — or, for a group of fewer
        than 3 agents, the decision-level cluster bootstrap of
        :func:`hvae.analysis.summary.small_group_interval` (its method in ``interval_method``);
        several runs: over seeds (each seed contributes its group mean). VR lies in [0, 1], so
        intervals are clipped to it.
        """
        from hvae.analysis.summary import MIN_AGENTS_FOR_T, small_group_interval

        measures = ["decision_vr", "chance_vr", "ceiling_vr", "position_vr",
                    "slider_vr", "chance_slider_vr", "ceiling_slider_vr", "position_slider_vr"]
        per_run = []
        for table in self.agent_vr:
            present = [m for m in measures if m in table]
            per_run.append(table.groupby("group")[present].agg(list) if not self.multi
                           else table.groupby("group")[present].mean())
        rows = []
        groups = self.order("group", sorted({g for t in self.agent_vr for g in t["group"].astype(str)}))
        for group in groups:
            row: dict = {"group": group}
            for measure in measures:
                if self.multi:
                    values = [t.loc[group, measure] for t in per_run if measure in t and group in t.index]
                else:
                    t = per_run[0]
                    values = t.loc[group, measure] if (measure in t and group in t.index) else []
                mean, low, high = pop.t_interval(np.asarray(values, dtype=float))
                small = not self.multi and 0 < len(values) < MIN_AGENTS_FOR_T
                if small and measure in ("decision_vr", "slider_vr"):
                    low, high, row["interval_method"] = small_group_interval(self._per_agent_values(group, measure))
                elif small:
                    low = high = float("nan")  # (references: no interval shown)
                low, high = (float(np.clip(v, 0.0, 1.0)) if not np.isnan(v) else v for v in (low, high))
                row.update({measure: mean, f"{measure}_low": low, f"{measure}_high": high})
            row.setdefault("interval_method", "t over seeds" if self.multi else "t over agents")
            rows.append(row)
        return pd.DataFrame(rows)

    def _per_agent_values(self, group: str, measure: str) -> list[np.ndarray]:
        """One run's per-decision decision VR (or per-profile slider VR) of each agent of ``group``."""
        from hvae.analysis.rationality import decision_scores, slider_profiles, slider_scores

        run = self.runs[0]
        decisions = run.decisions()
        if measure == "decision_vr":
            scores = decision_scores(decisions, run.menus())["decision_vr"]
            frame = pd.DataFrame({"agent_id": decisions["agent_id"], "group": decisions["group"].astype(str),
                                  "value": scores})
        else:
            profiles = slider_profiles(decisions)
            groups = decisions.drop_duplicates("agent_id").set_index("agent_id")["group"].astype(str)
            frame = pd.DataFrame({"agent_id": profiles["agent_id"], "group": profiles["agent_id"].map(groups),
                                  "value": slider_scores(profiles)["slider_vr"] if len(profiles) else []})
        part = frame[frame["group"] == group]
        return [values.to_numpy(dtype=float) for _, values in part.groupby("agent_id")["value"]]
