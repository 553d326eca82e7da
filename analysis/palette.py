"""The colours of every hvae figure: one palette for the value categories, one rule for the rest.

A value category has the same colour in every figure (run figures, invasion plots, evaluation
figures), so a reader learns it once. Population groups that each start in a category of their
own take that category's colour (:func:`group_colors`); other series (groups, deciders) take the
colours of :func:`series_colors`; categories shown as groups keep their category colour::

    >>> CATEGORY_COLORS["prosocial"]
    '#377eb8'
    >>> series_colors(["altruistic", "mixed"], by="value_category")["mixed"]   # not a category: grey
    '#777777'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hvae.agents.svo import category

#: Colours of the value categories (used wherever categories are shown).
CATEGORY_COLORS: dict[str, str] = {
    "altruistic": "#1b9e77",
    "prosocial": "#377eb8",
    "individualistic": "#ff7f00",
    "competitive": "#e41a1c",
}
#: The colour of anything that is not a category where categories are shown.
OTHER_COLOR = "#777777"


def category_color(angle_deg: float) -> str:
    """The colour of the category an SVO angle falls in."""
    return CATEGORY_COLORS.get(category(angle_deg) or "", OTHER_COLOR)


def group_colors(initial_angles: Mapping[str, Sequence[float]]) -> dict[str, str]:
    """Colours of population groups, given each group's agents' initial value angles (degrees).

    When every group starts in one value category of its own (no two groups share one, as in a
    population of one group per value), a group takes its category's colour, so "altruists" are
    drawn in the altruistic colour beside figures coloured by category. Otherwise (two groups of one
    category, a group spread over categories, an angle on a boundary) the groups take the
    qualitative palette of :func:`series_colors`::

        >>> group_colors({"altruists": [90.0, 80.0], "rivals": [-45.0]})["altruists"] == CATEGORY_COLORS["altruistic"]
        True
        >>> group_colors({"a": [90.0], "b": [80.0]})["a"] == CATEGORY_COLORS["altruistic"]   # two altruistic groups
        False
    """
    names = list(initial_angles)
    categories = []
    for angles in initial_angles.values():
        found = {category(float(a)) for a in angles}
        categories.append(found.pop() if len(found) == 1 else None)
    if names and all(c in CATEGORY_COLORS for c in categories) and len(set(categories)) == len(categories):
        return {name: CATEGORY_COLORS[c] for name, c in zip(names, categories)}
    return series_colors(names)


def series_colors(names: Sequence[str], by: str = "group") -> dict[str, str]:
    """A colour per series name: category colours for ``by="value_category"``, else a qualitative palette."""
    if by == "value_category":
        return {n: CATEGORY_COLORS.get(n, OTHER_COLOR) for n in names}
    import seaborn as sns

    colors = sns.color_palette("tab10", max(len(names), 1)).as_hex() if len(names) <= 10 else \
        sns.color_palette("husl", len(names)).as_hex()
    return dict(zip(names, colors))
