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

The config classes are defined in :mod:`hvae.agents.games` (beside each game's maths, and registered
in :data:`hvae.agents.plugins.GAMES`); this module keeps their old import path.
"""

from __future__ import annotations

from hvae.agents.games import (
    MAX_CUSTOM_ITEMS,
    MAX_CUSTOM_OPTIONS,
    CustomItem,
    CustomMenus,
    DonationMenus,
    PrisonersDilemmaMenus,
    PublicGoodsMenus,
)

__all__ = [
    "MAX_CUSTOM_ITEMS", "MAX_CUSTOM_OPTIONS", "CustomItem", "CustomMenus", "DonationMenus", "PrisonersDilemmaMenus", "PublicGoodsMenus",
]
