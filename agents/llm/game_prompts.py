"""Prompt texts for the n-player public goods game (the other games use :mod:`.prompts` as is).

A decomposed 2×2 game or a custom menu is shown like the slider: lettered (self, other) options.
The public goods game (:class:`~hvae.agents.games.PublicGoodsGame`) is shown as what it is — a
group, an endowment, a pot multiplied and shared — with each option a contribution and its
consequences: what the agent keeps from its own choice and what every other member gets from it
(the decomposed menu's (self, other), so the numbers an LLM reads are the numbers its decision VR
is scored on). The rest of the pipeline is unchanged: the same setup (value, role, goal, with the
task described as group games), the same counterbalanced option order (the order shown is the
order of the option lines, recorded per decision), the same answer formats and re-asks.

    >>> from hvae.agents.games import PublicGoodsGame
    >>> game = PublicGoodsGame(endowment=10, step=5, r=3, group_size=5)
    >>> print(format_contributions(game, [2, 0]))
    A: put in 10 coins — you keep 0 and get back 6 from your own contribution (6 in all); each of the 4 others gets 6
    B: put in 0 coins — you keep 10 and get back 0 from your own contribution (10 in all); each of the 4 others gets 0
"""

from __future__ import annotations

from hvae.agents.games import PublicGoodsGame
from hvae.agents.llm.prompts import FIXED_GOAL, LETTERS, answer_instruction


def _amount(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def public_goods_task_text(game: PublicGoodsGame) -> str:
    """The study as described in the goal prompt, for a public goods game."""
    return (
        "You will take part in a study of decisions about money. In each round you play in groups of "
        f"{game.group_size} fictional participants (you and your {game.group_size - 1} neighbours in a network). "
        f"Everyone gets {_amount(game.endowment)} coins per group and decides how many to put into the group's pot; "
        f"the pot is multiplied by {_amount(game.r)} and shared equally among all {game.group_size} members, "
        "whoever put in what. One coin is one unit of reward."
    )


def format_contributions(game: PublicGoodsGame, order: list[int]) -> str:
    """One lettered line per contribution level, in display order, with its consequences."""
    lines = []
    for letter, j in zip(LETTERS, order):
        contribution = game.contributions[j]
        own, other = game.options[j]
        kept = game.endowment - contribution
        lines.append(
            f"{letter}: put in {_amount(contribution)} coins — you keep {_amount(kept)} and get back "
            f"{_amount(round(other, 2))} from your own contribution ({_amount(round(own, 2))} in all); "
            f"each of the {game.group_size - 1} others gets {_amount(round(other, 2))}"
        )
    return "\n".join(lines)


def format_neighbour_history(game: PublicGoodsGame, history: list[dict[str, float]]) -> str:
    """What the agent's neighbours put in, on average, in its recent rounds (empty when none)."""
    if not history:
        return ""
    lines = [
        f"- round {entry['round'] + 1}: your neighbours put in {_amount(round(entry['generosity'] * game.endowment, 2))} "
        f"of {_amount(game.endowment)} coins on average"
        for entry in history
        if entry["generosity"] == entry["generosity"]  # NaN: nothing to report
    ]
    return "What your neighbours did (most recent first):\n" + "\n".join(lines) if lines else ""


def public_goods_decision_prompt(
    game: PublicGoodsGame, round_index: int, order: list[int], goal: str, history: list[dict[str, float]], structured: bool
) -> str:
    """One public goods decision, options in display order ``order`` (canonical indices)."""
    letters = LETTERS[: len(order)]
    parts = [
        f"Choose how many of your {_amount(game.endowment)} coins to put into the group's pot. Everything in the pot is "
        f"multiplied by {_amount(game.r)} and shared equally among the {game.group_size} members of the group. "
        f"Your choice counts in each of the {game.group_size} groups you play this round (your own and each neighbour's). "
        "Besides what each option below says, you also get your share of what the others put in, whatever you choose. "
        f"Remember your goal: {goal.strip() or FIXED_GOAL}",
        f"Round {round_index + 1}:\n{format_contributions(game, order)}",
    ]
    history_text = format_neighbour_history(game, history)
    if history_text:
        parts.append(history_text)
    parts.append(answer_instruction(letters, structured))
    return "\n\n".join(parts)
