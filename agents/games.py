"""The maths of the games beyond the slider: classic 2×2 games and the n-player public goods game
as decomposed (self, other) menus.

**Decomposed 2×2 games.** In a decomposed game each option is a pair (self, other): the chooser
keeps ``self`` and its partner receives ``other`` (Pruitt 1967; Messick & McClintock 1968). Two
players who both choose from the menu ``C = (x_C, y_C)``, ``D = (x_D, y_D)`` get the symmetric
2×2 game

    R = x_C + y_C  (both C)      S = x_C + y_D  (I play C, the other D)
    T = x_D + y_C  (I play D, the other C)      P = x_D + y_D  (both D)

so ``T − R = x_D − x_C = P − S``: a symmetric 2×2 game decomposes into one menu **exactly when it
is separable**, ``T − R = P − S`` (the gain from defecting does not depend on what the other does).
Conversely every separable game has the decompositions ``C = (S + a, R − S − a)``,
``D = (P + a, −a)`` for any constant ``a``; :func:`decompose_symmetric_2x2` takes ``a = 0``
(defecting gives the other nothing). The constant shifts every option's SVO utility
``cos θ·s + sin θ·o`` by the same amount, so choices and decision VR do not depend on it.

* The **prisoner's dilemma** ``{T, R, P, S}`` with ``T − R = P − S`` (e.g. T, R, P, S = 4, 3, 1, 0:
  ``C = (0, 3)``, ``D = (1, 0)``). Axelrod's default 5, 3, 1, 0 is *not* separable.
* The **donation game** ``{b, c}`` (give ``b`` to the other at cost ``c`` to yourself, or keep):
  ``C = (−c, b)``, ``D = (0, 0)``, i.e. T = b, R = b − c, P = 0, S = −c — always separable.

**The n-player public goods game** (Santos, Santos & Pacheco, *Nature* 454, 213–216, 2008, on a
graph: every agent hosts a game among itself and its ``k`` neighbours, so a group has ``G = k + 1``
members). Each member has an endowment ``E`` and contributes ``c`` of it; the pot is multiplied
by ``r`` and shared equally, so member ``i`` earns ``E − c_i + (r / G)·Σ_j c_j``. The game is
linear, so it decomposes too: contributing ``c`` is the option

    self = E − c + r·c / G,     other = r·c / G   (to each of the G − 1 other members)

and a member's payoff is its own ``self`` plus every other member's ``other``.
:class:`PublicGoodsGame` builds that menu over the contribution levels ``0, step, …, E``.

**The SVO utility for n players** is ``U_θ = cos θ·π_own + sin θ·mean(π_others)``
(:func:`n_player_utility`): the ring utility with the partner's payoff replaced by the mean payoff
of the other members. A member's own contribution moves every other member's payoff by the same
``r·c / G``, so on the menu above ``U_θ(self, other)`` differs from the n-player utility only by a
constant that does not depend on the member's own choice (what the others contributed): the
oracle, decision VR and the revealed angle apply unchanged. With two members it is the ring
utility itself. Under it a member contributes everything when ``cos θ·(r/G − 1) + sin θ·r/G > 0``
and nothing when it is negative; with the normalised ``η = r / G`` that is ``η > cos θ / (cos θ + sin θ)``
for θ in [0°, 90°]: individualists (0°) contribute only for η > 1, prosocials (45°) for η > ½,
altruists (90°) for any ``r > 0``; competitors (−45°) never.

    >>> decompose_symmetric_2x2(T=4, R=3, P=1, S=0).tolist()
    [[0.0, 3.0], [1.0, 0.0]]
    >>> PublicGoodsGame(endowment=10, step=5, r=3, group_size=5).options.tolist()
    [[10.0, 0.0], [8.0, 3.0], [6.0, 6.0]]

**The games' scenario sections** (``menus: {kind: …}``) are defined here too, one pydantic config per
game, and registered in :data:`hvae.agents.plugins.GAMES` (the schema's ``menus`` union is built from
it; :mod:`hvae.simulation.games` attaches what plays each kind). They sit in this lowest room so that
the analysis, which reads run folders without the simulation, knows each game's shape (e.g. whether
it is played with every neighbour at once: ``plays_every_neighbour``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hvae.agents.limits import MAX_AMOUNT, MAX_ITEMS, MAX_MENU_OPTIONS, MAX_OPTIONS, options_between
from hvae.agents.plugins import GAMES

#: Two payoff differences closer than this count as equal when checking separability.
SEPARABILITY_TOLERANCE = 1e-9


def separability_problem(T: float, R: float, P: float, S: float) -> str | None:  # noqa: N803 - the game's conventional names
    """Why the symmetric 2×2 game ``T, R, P, S`` has no (self, other) decomposition, or None."""
    values = {"T": T, "R": R, "P": P, "S": S}
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        return f"{', '.join(bad)} must be finite numbers"
    if abs((T - R) - (P - S)) > SEPARABILITY_TOLERANCE * max(1.0, abs(T), abs(R), abs(P), abs(S)):
        return (
            f"the game is not separable: T − R = {T - R:g} but P − S = {P - S:g}; a symmetric 2×2 game "
            "decomposes into a (self, other) menu only when T − R = P − S (e.g. T, R, P, S = 4, 3, 1, 0)"
        )
    return None


def decompose_symmetric_2x2(T: float, R: float, P: float, S: float) -> np.ndarray:  # noqa: N803
    """The (self, other) menu ``[C, D]`` of a separable symmetric 2×2 game (module docstring).

    Raises:
        ValueError: when the game is not separable (``T − R ≠ P − S``) or a payoff is not finite.
    """
    problem = separability_problem(T, R, P, S)
    if problem:
        raise ValueError(problem)
    return np.array([[float(S), float(R - S)], [float(P), 0.0]])


def donation_menu(b: float, c: float) -> np.ndarray:
    """The donation game's menu ``[give, keep]``: give ``b`` at cost ``c``, or keep (0, 0)."""
    return np.array([[-float(c), float(b)], [0.0, 0.0]])


def game_matrix(menu: np.ndarray) -> np.ndarray:
    """The symmetric game of a 2-option decomposed menu: ``M[i, j]`` = the payoff of playing ``i``
    against ``j`` (own ``self`` of ``i`` plus the partner's ``other`` of ``j``)."""
    menu = np.asarray(menu, dtype=float)
    return menu[:, 0][:, None] + menu[:, 1][None, :]


def n_player_utility(theta_deg: float, own: float, others: np.ndarray) -> float:
    """SVO utility of one member of an n-player game: ``cos θ·own + sin θ·mean(others)``."""
    theta = math.radians(theta_deg)
    return math.cos(theta) * float(own) + math.sin(theta) * float(np.mean(others))


@dataclass(frozen=True)
class PublicGoodsGame:
    """One group's public goods game: ``group_size`` members, each with ``endowment`` coins, who
    contribute a multiple of ``step``; the pot is multiplied by ``r`` and shared equally.

    ``options[j] = (E − c_j + r·c_j/G, r·c_j/G)`` for the contribution levels ``c_j`` (module docstring).
    """

    endowment: float
    step: float
    r: float
    group_size: int

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"a public goods group needs at least 2 members (got {self.group_size})")
        if not (self.endowment > 0 and 0 < self.step <= self.endowment and self.r >= 0):
            raise ValueError("a public goods game needs endowment > 0, 0 < step <= endowment and r >= 0")

    @property
    def eta(self) -> float:
        """The normalised multiplication factor ``η = r / G``."""
        return self.r / self.group_size

    @cached_property
    def contributions(self) -> np.ndarray:
        """The contribution levels ``0, step, 2·step, …, E`` (the last level is the whole endowment)."""
        levels = np.arange(0.0, self.endowment + self.step / 2, self.step)
        levels = levels[levels <= self.endowment + 1e-9]
        if not math.isclose(levels[-1], self.endowment):
            levels = np.append(levels, self.endowment)
        return levels

    @cached_property
    def options(self) -> np.ndarray:
        """The decomposed menu ``(k, 2)``: (self, other) per contribution level."""
        share = self.r * self.contributions / self.group_size
        return np.stack([self.endowment - self.contributions + share, share], axis=1)

    def group_payoffs(self, contributions: np.ndarray) -> np.ndarray:
        """Every member's payoff for the members' contributions, computed directly (not decomposed)."""
        contributions = np.asarray(contributions, dtype=float)
        if contributions.shape != (self.group_size,):
            raise ValueError(f"need {self.group_size} contributions, got shape {contributions.shape}")
        return self.endowment - contributions + self.r * contributions.sum() / self.group_size


# ---------------------------------------------------------------------------------- scenario sections
class GameConfig(BaseModel):
    """Base of every game's ``menus:`` section: unknown keys are errors; ``kind`` names the game."""

    model_config = ConfigDict(extra="forbid")

    #: True for an n-player game that every agent plays with all its neighbours at once (matching
    #: unused, no pairs, so no pre-play talk); False for a two-player game played by matched pairs.
    plays_every_neighbour: ClassVar[bool] = False
    #: Keys besides ``kind`` that make a valid section (what the dashboard puts in when the game is picked).
    default_section: ClassVar[dict[str, Any]] = {}


class SliderMenus(GameConfig):
    """``slider``: the six primary SVO Slider items (then the nine secondary ones), cycled."""

    kind: Literal["slider"]
    secondary: bool = False


class RingMenus(GameConfig):
    """``ring``: ``options`` consecutive points of an ``items``-point circle per item."""

    kind: Literal["ring"]
    items: int = Field(default=24, ge=2, le=MAX_ITEMS)
    options: int = Field(default=2, ge=2, le=MAX_OPTIONS)
    radius: float = Field(default=15.0, gt=0, le=MAX_AMOUNT)
    center: tuple[Annotated[float, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)], Annotated[float, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]] = (0.0, 0.0)

    @model_validator(mode="after")
    def _options_fit(self) -> RingMenus:
        if self.options > self.items:
            raise ValueError(f"options ({self.options}) cannot exceed items ({self.items})")
        if self.items * self.options > MAX_MENU_OPTIONS:
            raise ValueError(f"items × options is {self.items * self.options:,}, more than the limit of {MAX_MENU_OPTIONS:,}")
        return self


class DictatorMenus(GameConfig):
    """``dictator``: split an endowment in steps."""

    kind: Literal["dictator"]
    endowment: float = Field(default=100.0, gt=0, le=MAX_AMOUNT)
    step: float = Field(default=10.0, gt=0, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _step_fits(self) -> DictatorMenus:
        if self.step > self.endowment:
            raise ValueError(f"step ({self.step:g}) cannot exceed endowment ({self.endowment:g})")
        options_between(self.endowment, self.step, "dictator")
        return self


def _check_item(options: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(options) < 2:
        raise ValueError(f"a custom item needs at least 2 options (self, other), this one has {len(options)}")
    for number, (own, other) in enumerate(options, start=1):
        if not (math.isfinite(own) and math.isfinite(other)):
            raise ValueError(f"option {number} ({own:g}, {other:g}) is not a pair of finite numbers")
        if max(abs(own), abs(other)) > MAX_AMOUNT:
            raise ValueError(f"option {number} ({own:g}, {other:g}) has an amount beyond ±{MAX_AMOUNT:g}")
    return options


#: Limits of a custom menu (hostile-but-valid sizes cost minutes and gigabytes well before they fail).
MAX_CUSTOM_ITEMS = 1000
MAX_CUSTOM_OPTIONS = 100

#: One custom item: its options as (self, other) pairs.
CustomItem = Annotated[list[tuple[float, float]], Field(max_length=MAX_CUSTOM_OPTIONS), AfterValidator(_check_item)]


class CustomMenus(GameConfig):
    """``custom``: the researcher's own items, each a list of (self, other) options, cycled in order."""

    default_section: ClassVar[dict[str, Any]] = {"items": [[[85, 85], [85, 15]], [[100, 50], [50, 100]]]}

    kind: Literal["custom"]
    items: list[CustomItem] = Field(min_length=1, max_length=MAX_CUSTOM_ITEMS)

    @model_validator(mode="after")
    def _bounded(self) -> CustomMenus:
        total = sum(len(item) for item in self.items)
        if total > MAX_MENU_OPTIONS:
            raise ValueError(f"the items have {total:,} options in all, more than the limit of {MAX_MENU_OPTIONS:,}")
        return self


class DonationMenus(GameConfig):
    """``donation``: give ``b`` to the partner at cost ``c`` to yourself, or keep."""

    kind: Literal["donation"]
    b: float = Field(default=3.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    c: float = Field(default=1.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)


class PrisonersDilemmaMenus(GameConfig):
    """``prisoners_dilemma``: a symmetric 2×2 game given by T, R, P, S; it must be separable."""

    kind: Literal["prisoners_dilemma"]
    T: float = Field(default=4.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    R: float = Field(default=3.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    P: float = Field(default=1.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    S: float = Field(default=0.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _separable(self) -> PrisonersDilemmaMenus:
        problem = separability_problem(self.T, self.R, self.P, self.S)
        if problem:
            raise ValueError(problem)
        return self


class PublicGoodsMenus(GameConfig):
    """``public_goods``: the n-player public goods game; every agent hosts one among its neighbours."""

    plays_every_neighbour: ClassVar[bool] = True
    default_section: ClassVar[dict[str, Any]] = {"eta": 0.8}

    kind: Literal["public_goods"]
    endowment: float = Field(default=10.0, gt=0, allow_inf_nan=False, le=MAX_AMOUNT)
    step: float = Field(default=2.0, gt=0, allow_inf_nan=False, le=MAX_AMOUNT)
    r: float | None = Field(default=None, ge=0, allow_inf_nan=False, le=MAX_AMOUNT)
    eta: float | None = Field(default=None, ge=0, allow_inf_nan=False, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _one_factor(self) -> PublicGoodsMenus:
        if (self.r is None) == (self.eta is None):
            raise ValueError("public_goods needs exactly one of r (the multiplication factor) or eta (r / group size)")
        if self.step > self.endowment:
            raise ValueError(f"step ({self.step:g}) cannot exceed endowment ({self.endowment:g})")
        options_between(self.endowment, self.step, "public_goods")
        return self


for _config in (SliderMenus, RingMenus, DictatorMenus, CustomMenus, DonationMenus, PrisonersDilemmaMenus, PublicGoodsMenus):
    GAMES.add_config(_config)


def plays_every_neighbour(kind: str) -> bool:
    """Whether the game ``kind`` is played with every neighbour at once (False for an unknown kind)."""
    GAMES.load_entry_points()
    entry = GAMES.get(kind)
    return bool(entry is not None and getattr(entry.config, "plays_every_neighbour", False))
