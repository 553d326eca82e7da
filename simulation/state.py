"""The population's state: one numpy array per attribute, indexed by agent id (= network node).

The model keeps everything an agent is — value angle, group, running totals and its bounded
history of what partners gave — in :class:`PopulationState`, so a round of a thousand agents is a
handful of vectorised operations; :class:`~hvae.simulation.agent.SVOAgent` objects are views of
one row. :meth:`PopulationState.remember` is the round's *remember* phase; a decider sees an
agent's history through :meth:`PopulationState.history_of`::

    state = PopulationState.empty(4, history_length=3)
    state.history_of(np.array([0, 1])).given.shape   # (2, 3), NaN = no memory yet
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hvae.agents.deciders import History
from hvae.simulation.game import played_pairs


@dataclass
class PopulationState:
    """Per-agent state as arrays indexed by agent id (= network node)."""

    theta: np.ndarray  # value angle, degrees
    group_code: np.ndarray  # index into HvaeModel.group_names
    cumulative_payoff: np.ndarray
    n_decisions: np.ndarray
    n_idle: np.ndarray
    n_invalid: np.ndarray
    n_games: np.ndarray  # games played (pairs in which both sides chose), all rounds
    n_games_at_update: np.ndarray  # n_games when the dynamics last updated values (fitness per game)
    # History, most recent first, NaN = empty.
    hist_given: np.ndarray
    hist_kept: np.ndarray
    hist_generosity: np.ndarray
    hist_partner: np.ndarray
    hist_round: np.ndarray

    @classmethod
    def empty(cls, n: int, history_length: int) -> PopulationState:
        def nan_history() -> np.ndarray:
            return np.full((n, history_length), np.nan)

        return cls(
            theta=np.zeros(n),
            group_code=np.zeros(n, dtype=np.int32),
            cumulative_payoff=np.zeros(n),
            n_decisions=np.zeros(n, dtype=np.int64),
            n_idle=np.zeros(n, dtype=np.int64),
            n_invalid=np.zeros(n, dtype=np.int64),
            n_games=np.zeros(n, dtype=np.int64),
            n_games_at_update=np.zeros(n, dtype=np.int64),
            hist_given=nan_history(),
            hist_kept=nan_history(),
            hist_generosity=nan_history(),
            hist_partner=np.full((n, history_length), -1, dtype=np.int64),
            hist_round=np.full((n, history_length), -1, dtype=np.int64),
        )

    def history_of(self, ids: np.ndarray) -> History:
        """The history of agents ``ids``; each array is gathered when a decider first reads it
        (a surrogate reads only ``generosity``: at a million agents the other four cost 30 ms a round)."""
        return _GatheredHistory(self, ids)

    def remember(
        self, pairs: np.ndarray, choice: np.ndarray, outcome: dict, round_: int, received: np.ndarray | None = None
    ) -> None:
        """Push what partners gave into each agent's bounded history (means over partners).

        ``received`` may pass the sum over partners of ``outcome["other_amount"]`` when it is
        already known (the decomposed game's payoffs computed exactly that sum), to save a pass;
        likewise ``outcome["generosity_received"]``, the sum over partners of their generosity.
        """
        state = self
        n = state.theta.size
        if state.hist_given.shape[1] == 0:
            return
        pu, pv = played_pairs(pairs, choice)
        n_played = outcome["n_played"]
        everyone = bool(n_played.min() > 0) if n else False
        who = slice(None) if everyone else np.flatnonzero(n_played > 0)  # who played this round
        count = n if everyone else int(np.asarray(who).size)
        if count == 0:
            return
        played = n_played[who]

        def mean_of(total: np.ndarray) -> np.ndarray:
            return total[who] / played

        def mean_from_partners(values: np.ndarray) -> np.ndarray:
            return mean_of(np.bincount(pu, values[pv], n) + np.bincount(pv, values[pu], n))

        given = mean_from_partners(outcome["other_amount"]) if received is None else mean_of(received)
        kept = mean_from_partners(outcome["self_amount"])
        generosity = (mean_of(outcome["generosity_received"]) if "generosity_received" in outcome
                      else mean_from_partners(outcome["generosity"]))
        for array, new in (
            (state.hist_given, given),
            (state.hist_kept, kept),
            (state.hist_generosity, generosity),
            (state.hist_partner, outcome["partner"][who]),
            (state.hist_round, np.full(count, round_)),
        ):
            if everyone:  # slices: no fancy-index copies
                array[:, 1:] = array[:, :-1].copy()
                array[:, 0] = new
            else:
                array[who, 1:] = array[who, :-1]
                array[who, 0] = new


class _GatheredHistory(History):
    """A :class:`History` whose arrays are rows of the population's state, gathered on first read."""

    def __init__(self, state: PopulationState, ids: np.ndarray) -> None:  # noqa: D107 - no dataclass fields set here
        object.__setattr__(self, "_source", (state, ids))
        object.__setattr__(self, "_gathered", {})

    def _column(self, name: str) -> np.ndarray:
        gathered = self._gathered  # type: ignore[attr-defined]
        if name not in gathered:
            state, ids = self._source  # type: ignore[attr-defined]
            gathered[name] = getattr(state, f"hist_{name}")[ids]
        return gathered[name]

    given = property(lambda self: self._column("given"))  # type: ignore[assignment]
    kept = property(lambda self: self._column("kept"))  # type: ignore[assignment]
    generosity = property(lambda self: self._column("generosity"))  # type: ignore[assignment]
    partner = property(lambda self: self._column("partner"))  # type: ignore[assignment]
    round = property(lambda self: self._column("round"))  # type: ignore[assignment]

