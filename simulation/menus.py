"""Menus: the lists of (self, other) allocations that agents choose from, and their schedules.

A :class:`Menu` is an ``(k, 2)`` array of allocations (amount for the chooser, amount for the
partner) with a stable ``menu_id``. A :class:`MenuSchedule` says which menu is played in which
round; all pairs play the same menu in a round, so every decision of a round is comparable.

Seven families ship:

* ``slider`` — the six primary SVO Slider items (optionally the nine secondary ones after them),
  cycled in order: every 6 rounds give each agent that played every round one full slider profile.
* ``ring`` — allocations on a circle of ``radius`` around ``center`` (Liebrand's ring measure has
  24 points, radius 15, centre (0, 0)). Item ``i`` offers ``options`` consecutive points starting
  at point ``i``, so over ``items`` rounds every direction of the ring is offered.
* ``dictator`` — split an endowment: options ``(E − x, x)`` for ``x = 0, step, 2·step, …, E``.
* ``custom`` — the scenario's own items (lists of (self, other) options), cycled in order.
* ``donation`` and ``prisoners_dilemma`` — the decomposed menus ``[C, D]`` of the donation game
  and of a separable symmetric 2×2 game (:mod:`hvae.agents.games` derives them); option 0 is
  cooperation.
* ``public_goods`` — the n-player public goods game as a decomposed menu over contribution levels
  (:class:`~hvae.agents.games.PublicGoodsGame`); it needs the group size, which the network fixes,
  and its menu carries the game (``Menu.game``) so that payoffs and LLM prompts can use it.

Which schedule a scenario's ``menus:`` section plays is the game's (:mod:`hvae.simulation.games`,
``build_schedule``).

    >>> schedule = dictator_schedule(endowment=10, step=5)
    >>> schedule.menu_for_round(0).options.tolist()
    [[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hvae.agents.games import PublicGoodsGame, decompose_symmetric_2x2, donation_menu
from hvae.agents.svo import PRIMARY_ITEMS, SECONDARY_ITEMS


@dataclass(frozen=True)
class Menu:
    """One menu of allocations. ``options[j] = (self, other)``; ``menu_id`` is unique per schedule."""

    menu_id: str
    options: np.ndarray
    slider_item: int | None = None  # 1..15 for slider items, else None
    game: PublicGoodsGame | None = None  # the n-player game behind a public_goods menu (its LLM view)

    @property
    def size(self) -> int:
        return int(self.options.shape[0])

    def describe(self, order: np.ndarray | None = None) -> str:
        """Options as text ``"s,o|s,o|…"`` in canonical or the given display order."""
        rows = self.options if order is None else self.options[order]
        return "|".join(f"{_fmt(s)},{_fmt(o)}" for s, o in rows)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


@dataclass(frozen=True)
class MenuSchedule:
    """Menus played in rotation: round ``r`` plays ``menus[r % len(menus)]``."""

    kind: str
    menus: tuple[Menu, ...] = field(default_factory=tuple)

    def menu_for_round(self, round_index: int) -> Menu:
        return self.menus[round_index % len(self.menus)]

    @property
    def menu_by_id(self) -> dict[str, Menu]:
        return {menu.menu_id: menu for menu in self.menus}

    @property
    def min_size(self) -> int:
        return min(m.size for m in self.menus)

    @property
    def cycle_length(self) -> int:
        return len(self.menus)


def slider_schedule(secondary: bool = False) -> MenuSchedule:
    """The six primary slider items (then the nine secondary ones if asked), cycled."""
    menus = [Menu(f"slider{i + 1}", PRIMARY_ITEMS[i].copy(), slider_item=i + 1) for i in range(6)]
    if secondary:
        menus += [
            Menu(f"slider{i + 7}", SECONDARY_ITEMS[i].copy(), slider_item=i + 7) for i in range(9)
        ]
    return MenuSchedule("slider", tuple(menus))


def ring_points(n_points: int, radius: float, center: tuple[float, float]) -> np.ndarray:
    """``n_points`` allocations evenly spaced on the circle, starting at angle 0 (pure self)."""
    angles = 2 * np.pi * np.arange(n_points) / n_points
    points = np.stack([center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)], 1)
    return np.round(points, 2)


def ring_schedule(
    items: int = 24, options: int = 2, radius: float = 15.0, center: tuple[float, float] = (0.0, 0.0)
) -> MenuSchedule:
    """Ring items: item ``i`` offers ``options`` consecutive points of an ``items``-point circle."""
    if options > items:
        raise ValueError(f"options ({options}) cannot exceed items ({items})")
    points = ring_points(items, radius, center)
    menus = tuple(
        Menu(f"ring{i + 1}", points[(i + np.arange(options)) % items]) for i in range(items)
    )
    return MenuSchedule("ring", menus)


def dictator_schedule(endowment: float = 100.0, step: float = 10.0) -> MenuSchedule:
    """One menu: give ``x`` of the endowment to the partner, keep the rest."""
    given = np.arange(0.0, endowment + step / 2, step)
    given = given[given <= endowment + 1e-9]
    options = np.stack([endowment - given, given], axis=1)
    return MenuSchedule("dictator", (Menu("dictator", options),))


def custom_schedule(items: list) -> MenuSchedule:
    """The scenario's own items, ``custom1``, ``custom2``, …, cycled in order."""
    menus = tuple(Menu(f"custom{i + 1}", np.asarray(item, dtype=float).reshape(-1, 2)) for i, item in enumerate(items))
    return MenuSchedule("custom", menus)


def prisoners_dilemma_schedule(T: float, R: float, P: float, S: float) -> MenuSchedule:  # noqa: N803
    """One menu ``[C, D]``: the decomposition of a separable symmetric 2×2 game."""
    return MenuSchedule("prisoners_dilemma", (Menu("prisoners_dilemma", decompose_symmetric_2x2(T, R, P, S)),))


def donation_schedule(b: float, c: float) -> MenuSchedule:
    """One menu ``[give, keep]``: give ``b`` at cost ``c``, or keep."""
    return MenuSchedule("donation", (Menu("donation", donation_menu(b, c)),))


def public_goods_schedule(endowment: float, step: float, r: float, group_size: int) -> MenuSchedule:
    """One menu: the contribution levels of a public goods game of ``group_size`` members."""
    game = PublicGoodsGame(endowment=endowment, step=step, r=r, group_size=group_size)
    return MenuSchedule("public_goods", (Menu("public_goods", game.options.copy(), game=game),))
