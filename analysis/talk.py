"""What talk does: a run with pre-play talk against its paired run without, and promise keeping.

A **talk comparison** (:mod:`hvae.experiments.talk`) plays one scenario twice from the same seed:
the ``no_talk`` arm (``communication.turns: 0``) and the ``talk`` arm. Talk draws nothing from the
random streams, so the two arms match the same pairs on the same menus, show every LLM agent the
same option order and give rule deciders the same draws: the only difference is the
conversation. That makes the comparison **paired** — the same agent in the same games, with and
without talk — and every difference below is talk − no talk.

:func:`compare_groups` — per population group and arm: decision VR beside chance and ceiling
(:mod:`hvae.analysis.rationality`), the revealed angle with its interval
(:mod:`hvae.analysis.revealed`), mean generosity and mean payoff per game; and the paired change of
decision VR, generosity and payoff over the group's agents (mean of per-agent differences with a
95% t-interval; no interval with fewer than two agents).

:func:`compare_value_pairs` — per (own value category, partner's value category) and arm: mean
generosity and mean game payoff, from :func:`hvae.analysis.games.games` (both sides chose), and
the change.

**Promise keeping** (:func:`promises`). An agent's *stated intention* in a round is read from its
own messages of that round: the talk prompt asks a speaker that names the option it will take to
give its two amounts, its own first ("I will take 85, 76"). The stated option is the last pair of
consecutive numbers in the agent's messages (latest message first) that equals one option's
(self, other) amounts on the round's menu; an agent that never names an option that way has no
stated intention. The promise is **kept** when its valid decision chose that option.

Kept against what? A value-following agent takes the option its value ranks first whether or not
it talked, so "kept" is high without any commitment. The **baseline** is the paired no-talk arm:
how often the same agent's choice in the same round *without talk* matches the option it stated
with talk (``baseline_kept_rate``, ``baseline`` = ``"no-talk arm"``). Where no paired arm exists it
is ``Σⱼ P(state j) · P(choose j)`` per menu — what stating and choosing would match if they were
independent, from the group's own stated options and choices on that menu (``"independence"``).
The **effect of talk on keeping** is ``kept − baseline`` (``delta_kept``), with a 95% t-interval
over the group's agents of their mean per-decision difference (paired arm only; none with fewer
than two agents). 1/k on a k-option menu (``chance_kept_rate``, a uniform random chooser) is
context only. Its limits, said plainly: amounts given the other way
round ("you get 76, I keep 85") or in words are not read, and a statement about the partner's
option can be read as one's own; it is a simple, checkable measure, not language understanding.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from hvae.analysis.games import games
from hvae.analysis.intervals import t_interval
from hvae.analysis.rationality import behavioural, menu_options
from hvae.analysis.rundata import RunData
from hvae.analysis.summary import agent_summary, group_summary

ARMS = ("no_talk", "talk")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class ArmsMismatch(ValueError):
    """Two run folders that are not the paired arms of one talk comparison."""


# ---------------------------------------------------------------------------------- promise keeping
def stated_option(text: str | None, options: np.ndarray) -> int | None:
    """The option whose (self, other) amounts appear as consecutive numbers in ``text`` (the last such; None if none)."""
    if not text:
        return None
    numbers = [float(n) for n in _NUMBER.findall(text)]
    found = None
    for first, second in zip(numbers, numbers[1:]):
        matches = np.flatnonzero(np.isclose(options[:, 0], first) & np.isclose(options[:, 1], second))
        if matches.size:
            found = int(matches[0])
    return found


#: The columns of ``messages.parquet`` that the measures read.
MESSAGE_COLUMNS = ("round", "pair", "turn", "speaker", "listener", "group", "speaker_kind", "text")


def messages(run: RunData) -> pd.DataFrame:
    """The run's ``messages`` table (empty, with the columns read here, when the run had no talk)."""
    if run.has_table("messages"):
        return run.frame("messages")
    return pd.DataFrame(columns=list(MESSAGE_COLUMNS))


def promises(run: RunData) -> pd.DataFrame:
    """One row per valid decision of an LLM agent that spoke: its stated option, its choice, kept or not.

    Columns: ``round``, ``agent_id``, ``group``, ``n_options``, ``stated_option`` (−1: none),
    ``choice``, ``kept`` (NaN without a stated option).
    """
    said = messages(run)
    said = said[(said["speaker_kind"] == "llm") & said["text"].notna()]
    columns = ["round", "agent_id", "group", "n_options", "stated_option", "choice", "kept"]
    if said.empty:
        return pd.DataFrame(columns=columns)
    decisions = run.decisions()
    decisions = decisions[behavioural(decisions)]
    options = menu_options(run.menus())
    menu_of_round = decisions.groupby("round")["menu_id"].first().astype(str).to_dict()
    stated: dict[tuple[int, int], int] = {}
    for (round_index, speaker), texts in said.sort_values("turn").groupby(["round", "speaker"])["text"]:
        menu = options[menu_of_round[round_index]] if round_index in menu_of_round else None
        if menu is None:
            continue
        for text in reversed(list(texts)):
            option = stated_option(text, menu)
            if option is not None:
                stated[(int(round_index), int(speaker))] = option
                break
    spoke = set(zip(said["round"].astype(int), said["speaker"].astype(int)))
    rows = []
    for record in decisions.itertuples(index=False):
        key = (int(record.round), int(record.agent_id))
        if key not in spoke:
            continue
        option = stated.get(key, -1)
        rows.append(
            {
                "round": key[0], "agent_id": key[1], "group": str(record.group),
                "n_options": len(options[str(record.menu_id)]), "stated_option": option, "choice": int(record.choice),
                "kept": float(option == record.choice) if option >= 0 else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=columns)


PROMISE_COLUMNS = ["group", "n_decisions", "n_stated", "stated_rate", "kept_rate", "baseline_kept_rate", "baseline",
                   "delta_kept", "delta_kept_low", "delta_kept_high", "chance_kept_rate"]


def promise_summary(run: RunData, no_talk: RunData | None = None) -> pd.DataFrame:
    """Per group: decisions after talk, how many stated an option, the share kept beside its baseline.

    ``no_talk`` is the paired arm without talk (the baseline; see the module docstring); without it
    the baseline assumes stating and choosing independent.
    """
    table = promises(run)
    paired = None
    if no_talk is not None:
        plain = no_talk.decisions()
        plain = plain[behavioural(plain)]
        paired = plain.set_index([plain["round"].astype(int), plain["agent_id"].astype(int)])["choice"]
        paired = paired[~paired.index.duplicated()]
    menus = run.decisions().drop_duplicates(["round", "agent_id"]).set_index(["round", "agent_id"])["menu_id"]
    rows = []
    for group, part in table.groupby("group", sort=False):
        with_intent = part[part["stated_option"] >= 0]
        row: dict[str, Any] = {
            "group": group, "n_decisions": len(part), "n_stated": len(with_intent),
            "stated_rate": len(with_intent) / len(part) if len(part) else np.nan,
            "kept_rate": float(with_intent["kept"].mean()) if len(with_intent) else np.nan,
            "chance_kept_rate": float((1.0 / with_intent["n_options"]).mean()) if len(with_intent) else np.nan,
            "baseline_kept_rate": np.nan, "baseline": "", "delta_kept": np.nan, "delta_kept_low": np.nan,
            "delta_kept_high": np.nan,
        }
        if len(with_intent) and paired is not None:
            keys = list(zip(with_intent["round"].astype(int), with_intent["agent_id"].astype(int)))
            without = paired.reindex(keys).to_numpy(dtype=float)  # NaN: no valid decision in the other arm
            has = np.isfinite(without)
            match = (without[has] == with_intent["stated_option"].to_numpy()[has]).astype(float)
            difference = with_intent["kept"].to_numpy(dtype=float)[has] - match
            per_agent = pd.Series(difference).groupby(with_intent["agent_id"].to_numpy()[has]).mean()
            _, low, high = t_interval(per_agent.to_numpy(dtype=float))
            if has.any():
                row.update(baseline_kept_rate=float(match.mean()), baseline="no-talk arm",
                           delta_kept=float(difference.mean()), delta_kept_low=low, delta_kept_high=high)
        elif len(with_intent):
            menu_ids = menus.reindex(list(zip(with_intent["round"], with_intent["agent_id"]))).astype(str).to_numpy()
            expected = []
            for menu_id in np.unique(menu_ids):
                on_menu = with_intent[menu_ids == menu_id]
                stated = on_menu["stated_option"].value_counts(normalize=True)
                chosen = on_menu["choice"].value_counts(normalize=True)
                match = float(sum(p * chosen.get(j, 0.0) for j, p in stated.items()))
                expected += [match] * len(on_menu)
            row.update(baseline_kept_rate=float(np.mean(expected)), baseline="independence",
                       delta_kept=row["kept_rate"] - float(np.mean(expected)))
        rows.append(row)
    return pd.DataFrame(rows, columns=PROMISE_COLUMNS)


# ---------------------------------------------------------------------------------- paired arms
def check_paired(no_talk: RunData, talk: RunData) -> None:
    """Raise :class:`ArmsMismatch` unless the two runs differ only in talk (same scenario and seed)."""

    def core(run: RunData) -> dict[str, Any]:
        scenario = dict(run.scenario)
        for key in ("communication", "cache", "output", "name", "description"):
            scenario.pop(key, None)
        return scenario

    if no_talk.summary.get("seed") != talk.summary.get("seed"):
        raise ArmsMismatch(
            f"the arms were played from different seeds ({no_talk.summary.get('seed')} and {talk.summary.get('seed')})"
        )
    if core(no_talk) != core(talk):
        raise ArmsMismatch(f"{no_talk.label} and {talk.label} are not the same scenario apart from communication")
    if (no_talk.scenario.get("communication") or {}).get("turns", 0) != 0:
        raise ArmsMismatch(f"{no_talk.label} is not a run without talk (communication.turns is not 0)")
    if (talk.scenario.get("communication") or {}).get("turns", 0) == 0:
        raise ArmsMismatch(f"{talk.label} is not a run with talk (communication.turns is 0)")


def _agent_figures(run: RunData) -> pd.DataFrame:
    """Per agent: decision VR (with chance), mean generosity and mean payoff per game."""
    agents = agent_summary(run).set_index("agent_id")[["group", "decision_vr", "chance_vr", "ceiling_vr"]]
    played = games(run)
    per_agent = played.groupby("agent_id").agg(generosity=("generosity", "mean"), game_payoff=("game_payoff", "mean"))
    return agents.join(per_agent)


def compare_groups(no_talk: RunData, talk: RunData) -> pd.DataFrame:
    """One row per (group, arm) plus paired changes (see the module docstring)."""
    check_paired(no_talk, talk)
    figures = {arm: _agent_figures(run) for arm, run in zip(ARMS, (no_talk, talk))}
    summaries = {arm: group_summary(run).set_index("group") for arm, run in zip(ARMS, (no_talk, talk))}
    rows = []
    for group in summaries["no_talk"].index:
        for arm in ARMS:
            summary = summaries[arm].loc[group]
            members = figures[arm][figures[arm]["group"] == group]
            rows.append(
                {
                    "group": group, "arm": arm, "decider": summary["decider"], "value": summary["value"],
                    "n_agents": int(summary["n_agents"]), "n_valid": int(summary["n_valid"]),
                    "decision_vr": summary["decision_vr"], "chance_vr": summary["chance_vr"],
                    "ceiling_vr": summary["ceiling_vr"], "revealed_theta": summary["revealed_theta"],
                    "revealed_ci_low": summary["revealed_ci_low"], "revealed_ci_high": summary["revealed_ci_high"],
                    "revealed_identification": summary["revealed_identification"],
                    "generosity": float(members["generosity"].mean()), "game_payoff": float(members["game_payoff"].mean()),
                }
            )
    table = pd.DataFrame(rows)
    changes = []
    for group in summaries["no_talk"].index:
        before = figures["no_talk"][figures["no_talk"]["group"] == group]
        after = figures["talk"].loc[before.index]
        change: dict[str, Any] = {"group": group}
        for measure in ("decision_vr", "generosity", "game_payoff"):
            mean, low, high = t_interval((after[measure] - before[measure]).to_numpy(dtype=float))
            change.update({f"delta_{measure}": mean, f"delta_{measure}_low": low, f"delta_{measure}_high": high})
        changes.append(change)
    return table.merge(pd.DataFrame(changes), on="group", how="left")


def compare_value_pairs(no_talk: RunData, talk: RunData) -> pd.DataFrame:
    """Per (value category, partner category): generosity and payoff per game in each arm, and the change."""
    check_paired(no_talk, talk)
    frames = []
    for arm, run in zip(ARMS, (no_talk, talk)):
        played = games(run)
        cells = played.groupby(["value_category", "partner_category"], observed=True).agg(
            n_games=("game_payoff", "size"), generosity=("generosity", "mean"), game_payoff=("game_payoff", "mean")
        )
        frames.append(cells.add_prefix(f"{arm}_"))
    table = frames[0].join(frames[1], how="outer")
    table["delta_generosity"] = table["talk_generosity"] - table["no_talk_generosity"]
    table["delta_game_payoff"] = table["talk_game_payoff"] - table["no_talk_game_payoff"]
    return table.reset_index().astype({"value_category": str, "partner_category": str})


def comparison_tables(no_talk: RunData, talk: RunData) -> dict[str, pd.DataFrame]:
    """Every table of a talk comparison, by the file stem it is written under."""
    return {
        "talk_groups": compare_groups(no_talk, talk),
        "talk_value_pairs": compare_value_pairs(no_talk, talk),
        "talk_promises": promise_summary(talk, no_talk),
    }

