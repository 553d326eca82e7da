"""Paraphrases of the four category value prompts, for the wording-robustness probe.

A value rationality that changes when the value is worded differently measures the wording, not
the value. :data:`PARAPHRASES` holds three more wordings of each category besides the standard one
(:data:`~hvae.agents.llm.prompts.CATEGORY_TEXT`), each written from the category's definition in
DESIGN.md §1.1 (the weight it puts on its own and on the other's payoff) and **not tuned to any
model**. Wording 0 is the standard text; wordings 1–3 are the paraphrases::

    category_wording("prosocial", 2)   # the second paraphrase
"""

from __future__ import annotations

from hvae.agents.llm.prompts import CATEGORY_TEXT

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "altruistic": (
        "altruistic: what matters to you is how many coins the other person receives; what you keep yourself does not count",
        "altruistic: you judge every split only by the other person's share and are glad to give up your own coins to raise it",
        "altruistic: the best outcome for you is the one in which the other person ends up with the most, however little is left for you",
    ),
    "prosocial": (
        "prosocial: you want the coins that you and the other person receive together to be as many as possible",
        "prosocial: you count a coin for the other person exactly as much as a coin for yourself and aim for the largest combined total",
        "prosocial: the best outcome for you is the one with the biggest sum of your coins and the other person's coins",
    ),
    "individualistic": (
        "individualistic: what matters to you is how many coins you receive yourself; what the other person gets does not count",
        "individualistic: you judge every split only by your own share and are indifferent to the other person's share",
        "individualistic: the best outcome for you is the one in which you end up with the most coins, whatever the other person gets",
    ),
    "competitive": (
        "competitive: you want your coins to exceed the other person's coins by as much as possible",
        "competitive: you judge every split by how far ahead of the other person it puts you, even if you get fewer coins",
        "competitive: the best outcome for you is the one with the largest lead of your coins over the other person's coins",
    ),
}

N_WORDINGS = 4  #: the standard wording plus three paraphrases


def category_wording(name: str, variant: int = 0) -> str:
    """Wording ``variant`` (0 = standard, 1–3 = paraphrases) of category ``name``."""
    if not 0 <= variant < N_WORDINGS:
        raise ValueError(f"wording variant must be 0..{N_WORDINGS - 1}, got {variant}")
    return CATEGORY_TEXT[name] if variant == 0 else PARAPHRASES[name][variant - 1]
