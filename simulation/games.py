"""Games: what a scenario's ``menus: {kind: …}`` plays, behind one protocol.

A :class:`Game` answers everything the round loop (:class:`~hvae.simulation.model.HvaeModel`) asks
about the game, so the model has no special case for any of them:

* **schedule** — the menus and the round each is played in (:class:`~hvae.simulation.menus.MenuSchedule`);
* **partners** — whether the matching picks pairs (two-player games) or every agent plays with all
  its neighbours at once (``plays_every_neighbour``: the n-player public goods game);
* **payoffs** — each agent's amounts, payoff and games played in a round;
* **memory** — what each agent's bounded history records of its partners;
* **the LLM's view** — the object an LLM decider describes the options with (``llm_view``; None:
  the plain (self, other) allocations);
* **network** — a check that the network suits the game (``check_network``).

The shipped games are registered in :data:`hvae.agents.plugins.GAMES` by their config's ``kind``
(configs in :mod:`hvae.agents.games`). A new two-player game is a config plus a
:class:`PairwiseGame` subclass that says its menus::

    class StagHuntConfig(GameConfig):
        kind: Literal["stag_hunt"]
        reward: float = 4.0

    class StagHunt(PairwiseGame):
        Config = StagHuntConfig

        def menus(self):
            return (Menu("stag_hunt", np.array([[0.0, self.config.reward], [1.0, 0.0]])),)

    register_game(StagHunt)      # then: menus: {kind: stag_hunt, reward: 5}

(or as a ``hvae.games`` entry point of your package: :mod:`hvae.agents.plugins`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel

from hvae.agents.games import (
    CustomMenus,
    DictatorMenus,
    DonationMenus,
    PrisonersDilemmaMenus,
    PublicGoodsGame,
    PublicGoodsMenus,
    RingMenus,
    SliderMenus,
)
from hvae.agents.plugins import GAMES
from hvae.simulation.game import decomposed_payoffs
from hvae.simulation.menus import (
    Menu,
    MenuSchedule,
    custom_schedule,
    dictator_schedule,
    donation_schedule,
    prisoners_dilemma_schedule,
    public_goods_schedule,
    ring_schedule,
    slider_schedule,
)
from hvae.simulation.network import NetworkError
from hvae.simulation.public_goods import group_size, public_goods_payoffs


@runtime_checkable
class Game(Protocol):
    """What the model asks of a game (module docstring)."""

    kind: ClassVar[str]
    plays_every_neighbour: ClassVar[bool]

    def schedule(self) -> MenuSchedule: ...

    def payoffs(self, menu: Menu, pairs: np.ndarray, choice: np.ndarray, n: int) -> dict[str, np.ndarray]: ...

    def memory(self, pairs: np.ndarray, choice: np.ndarray, outcome: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]: ...

    def llm_view(self) -> Any: ...

    def check_network(self, degree: np.ndarray, network_kind: str) -> None: ...


class PairwiseGame:
    """A two-player decomposed game played by matched pairs; subclasses give :meth:`menus`.

    Built with :meth:`for_network` (the model) or directly from its config.
    """

    kind: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]
    plays_every_neighbour: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Config" in cls.__dict__ and not cls.__dict__.get("kind"):
            cls.kind = GAMES.kind_of(cls.Config)

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    @classmethod
    def for_network(cls, config: BaseModel, degree: np.ndarray, network_kind: str) -> PairwiseGame:
        """The game on a network with these degrees (a pairwise game does not depend on it)."""
        return cls(config)

    def menus(self) -> tuple[Menu, ...]:
        raise NotImplementedError(f"{type(self).__name__} must say its menus (or override schedule())")

    def schedule(self) -> MenuSchedule:
        return MenuSchedule(self.kind, self.menus())

    def payoffs(self, menu: Menu, pairs: np.ndarray, choice: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """Each pair plays once: see :func:`~hvae.simulation.game.decomposed_payoffs`."""
        return decomposed_payoffs(menu, pairs, choice, n)

    def memory(self, pairs: np.ndarray, choice: np.ndarray, outcome: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """The outcome the histories record (a pairwise game: as played)."""
        return outcome

    def llm_view(self) -> Any:
        """None: LLM deciders show the (self, other) allocations."""
        return None

    def check_network(self, degree: np.ndarray, network_kind: str) -> None:
        """Any network with edges suits a pairwise game."""


class Slider(PairwiseGame):
    Config = SliderMenus

    def schedule(self) -> MenuSchedule:
        c: Any = self.config
        return slider_schedule(secondary=c.secondary)


class Ring(PairwiseGame):
    Config = RingMenus

    def schedule(self) -> MenuSchedule:
        c: Any = self.config
        return ring_schedule(items=c.items, options=c.options, radius=c.radius, center=tuple(c.center))


class Dictator(PairwiseGame):
    Config = DictatorMenus

    def schedule(self) -> MenuSchedule:
        c: Any = self.config
        return dictator_schedule(endowment=c.endowment, step=c.step)


class Custom(PairwiseGame):
    Config = CustomMenus

    def schedule(self) -> MenuSchedule:
        c: Any = self.config
        return custom_schedule(c.items)


class Donation(PairwiseGame):
    Config = DonationMenus

    def schedule(self) -> MenuSchedule:
        c: Any = self.config
        return donation_schedule(b=c.b, c=c.c)


class PrisonersDilemma(PairwiseGame):
    Config = PrisonersDilemmaMenus

    def schedule(self) -> MenuSchedule:
        c: Any = self.config
        return prisoners_dilemma_schedule(c.T, c.R, c.P, c.S)


class PublicGoods(PairwiseGame):
    """The n-player public goods game (:mod:`hvae.simulation.public_goods`): every agent hosts one
    game among itself and its neighbours, so it plays with all of them every round."""

    Config = PublicGoodsMenus
    plays_every_neighbour = True

    def __init__(self, config: BaseModel, group_size: int | None = None) -> None:
        super().__init__(config)
        if group_size is None:
            raise ValueError("public_goods menus need the group size (the network's degree + 1)")
        c: Any = config
        r = c.r if c.r is not None else c.eta * group_size
        self.game = PublicGoodsGame(endowment=c.endowment, step=c.step, r=r, group_size=group_size)

    @classmethod
    def for_network(cls, config: BaseModel, degree: np.ndarray, network_kind: str) -> PublicGoods:
        return cls(config, group_size(degree, network_kind))

    def schedule(self) -> MenuSchedule:
        g = self.game
        return public_goods_schedule(g.endowment, g.step, g.r, g.group_size)

    def payoffs(self, menu: Menu, pairs: np.ndarray, choice: np.ndarray, n: int) -> dict[str, np.ndarray]:
        return public_goods_payoffs(menu, pairs, choice, n)

    def memory(self, pairs: np.ndarray, choice: np.ndarray, outcome: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """The partners are the agent's neighbours (who also host the other games it plays): the
        history holds their mean amounts, over the neighbours that decided."""
        u, v = pairs[:, 0], pairs[:, 1]
        both = (choice[u] >= 0) & (choice[v] >= 0)
        neighbours_decided = np.bincount(u[both], minlength=n) + np.bincount(v[both], minlength=n)
        return {**outcome, "n_played": neighbours_decided}

    def llm_view(self) -> PublicGoodsGame:
        """The game itself: LLM deciders describe its options as contributions."""
        return self.game

    def check_network(self, degree: np.ndarray, network_kind: str) -> None:
        if group_size(degree, network_kind) != self.game.group_size:
            raise NetworkError(
                f"the public goods menu was built for groups of {self.game.group_size}; "
                "the changed network's groups have another size"
            )


def register_game(game: type) -> type:
    """Register a game class (a ``Config`` with ``kind: Literal[<kind>]``; see the module docstring).

    Returns the class, so it works as a decorator. Scenarios accept ``menus: {kind: <kind>}`` from then on.
    """
    return GAMES.register(game)


for _game in (Slider, Ring, Dictator, Custom, Donation, PrisonersDilemma, PublicGoods):
    GAMES.attach(_game.kind, _game)


def build_game(config: BaseModel | dict, degree: np.ndarray | None = None, network_kind: str = "") -> Any:
    """The game a scenario's ``menus`` section asks for, on a network with these degrees.

    ``config`` may be the validated section or a plain dict (validated here).
    """
    if isinstance(config, dict):
        GAMES.load_entry_points()
        entry = GAMES.get(str(config.get("kind")))
        if entry is None:
            raise ValueError(f"unknown menu kind {config.get('kind')!r}; use {', '.join(GAMES.kinds())}")
        config = entry.config.model_validate(config)
    plugin = GAMES.plugin(GAMES.kind_of(type(config)))
    return plugin(config) if degree is None else plugin.for_network(config, degree, network_kind)


def build_schedule(config: BaseModel | dict, group_size: int | None = None) -> MenuSchedule:
    """The schedule of a scenario's ``menus`` section (a pydantic model or a plain dict).

    ``group_size`` (members per game, the network's degree + 1) is needed by ``public_goods`` only.

        >>> build_schedule({"kind": "dictator", "endowment": 10, "step": 5}).menu_for_round(0).options.tolist()
        [[10.0, 0.0], [5.0, 5.0], [0.0, 10.0]]
    """
    degree = None if group_size is None else np.array([group_size - 1])
    return build_game(config, degree).schedule()
