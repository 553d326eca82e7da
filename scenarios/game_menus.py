"""Scenario sections for the menus beyond the slider, ring and dictator (see :mod:`hvae.agents.games`).

``menus:`` in a scenario may also be::

    menus: {kind: custom, items: [[[85, 85], [100, 50]], [[50, 100], [85, 15], [70, 70]]]}
    menus: {kind: donation, b: 3, c: 1}                      # give b at cost c, or keep
    menus: {kind: prisoners_dilemma, T: 4, R: 3, P: 1, S: 0}  # must be separable: T − R = P − S
    menus: {kind: public_goods, endowment: 10, step: 2, eta: 0.8}   # or r: 4 instead of eta

A ``custom`` item is a list of (self, other) options, cycled in order like the slider items; each
needs at least two options of finite numbers, and a bad one is reported with its item number;
a menu has at most :data:`MAX_CUSTOM_ITEMS` items of at most :data:`MAX_CUSTOM_OPTIONS` options.
A non-separable prisoner's dilemma is rejected with one line saying why. ``public_goods`` plays
the n-player game of Santos, Santos & Pacheco (2008) on the network: its multiplication factor is
given either as ``r`` or normalised by the group size as ``eta`` (η = r / (k + 1)).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hvae.agents.games import separability_problem
from hvae.scenarios.limits import MAX_AMOUNT, MAX_MENU_OPTIONS, options_between


class _Menus(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
CustomItem = Annotated[
    list[tuple[float, float]], Field(max_length=MAX_CUSTOM_OPTIONS), AfterValidator(_check_item)
]


class CustomMenus(_Menus):
    """``custom``: the researcher's own items, each a list of (self, other) options, cycled in order."""

    kind: Literal["custom"]
    items: list[CustomItem] = Field(min_length=1, max_length=MAX_CUSTOM_ITEMS)

    @model_validator(mode="after")
    def _bounded(self) -> CustomMenus:
        total = sum(len(item) for item in self.items)
        if total > MAX_MENU_OPTIONS:
            raise ValueError(f"the items have {total:,} options in all, more than the limit of {MAX_MENU_OPTIONS:,}")
        return self


class DonationMenus(_Menus):
    """``donation``: give ``b`` to the partner at cost ``c`` to yourself, or keep."""

    kind: Literal["donation"]
    b: float = Field(default=3.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    c: float = Field(default=1.0, allow_inf_nan=False, ge=-MAX_AMOUNT, le=MAX_AMOUNT)


class PrisonersDilemmaMenus(_Menus):
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


class PublicGoodsMenus(_Menus):
    """``public_goods``: the n-player public goods game; every agent hosts one among its neighbours."""

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
