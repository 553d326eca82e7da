"""``HvaeModel.step()`` with LLM groups from plain Python, inside a running event loop, and from async code.

Jupyter and Mesa's Solara visualisation call ``step()`` while their own event loop runs; async code
awaits ``astep()``. A replay (scripted) backend stands in for the model; with the same seed every
setting must play exactly the same rounds as plain Python does.
"""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from conftest import make_scenario

from hvae.simulation.model import HvaeModel

pytestmark = pytest.mark.llm

ROUNDS = 3
#: The setup replies (value description, goal) then letters; each agent has its own replay client.
REPLIES = ["I care about others.", "Give much.", "B", "A", "C"]


def scenario():
    return make_scenario(
        rounds=ROUNDS,
        population=[
            {"name": "llm", "count": 3, "value": "altruistic", "decider": {"kind": "llm", "backend": "script", "order": "shuffle"}},
            {"name": "oracle", "count": 3, "value": "prosocial", "decider": "oracle"},
        ],
        network={"kind": "complete"},
        matching="all_edges",
        backends={"script": {"kind": "replay", "replies": REPLIES}},
        cache={"enabled": False},
    )


def decisions(model: HvaeModel) -> pd.DataFrame:
    """The model's decision rows without the wall-clock column."""
    return model.log.decision_rows().to_pandas().drop(columns=["latency_s"])


def play_with_step() -> pd.DataFrame:
    """Build a model, play its rounds with the synchronous ``step()`` and return its decisions."""
    model = HvaeModel(scenario())
    try:
        for _ in range(ROUNDS):
            model.step()
        return decisions(model)
    finally:
        model.close()


def plain() -> pd.DataFrame:
    return play_with_step()


def test_plain_python_plays_the_llm_group() -> None:
    table = plain()
    llm = table[table["group"] == "llm"]
    assert len(llm) == 3 * ROUNDS
    assert llm["valid"].all()


def test_step_inside_a_running_event_loop_plays_the_same_rounds() -> None:
    # As Jupyter or Solara call it: a synchronous step() while this thread's loop is running.
    async def notebook_cell() -> pd.DataFrame:
        return play_with_step()

    pd.testing.assert_frame_equal(asyncio.run(notebook_cell()), plain())


def test_astep_from_async_code_plays_the_same_rounds_and_leaves_the_loop_free() -> None:
    async def main() -> tuple[pd.DataFrame, int, int]:
        model = HvaeModel(scenario())
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(ticker())
        try:
            for _ in range(ROUNDS):
                await model.astep()
            return decisions(model), model.round, model.steps
        finally:
            other.cancel()
            model.close()
            assert ticks > 0, "the caller's loop was blocked during astep()"

    table, rounds, steps = asyncio.run(main())
    assert rounds == steps == ROUNDS
    pd.testing.assert_frame_equal(table, plain())
