"""Small defects that bent figures or behaviour, each pinned by a reference case."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_scenario

from hvae.agents import svo
from hvae.agents.deciders import DecisionRequest, History, ReciprocalDecider
from hvae.simulation.model import HvaeModel

DICTATOR = {"kind": "dictator", "endowment": 10, "step": 5}  # options (10,0) (5,5) (0,10)


def one_entry_history(generosity: float) -> History:
    def column(value: float) -> np.ndarray:
        return np.array([[value]])

    return History(column(0.0), column(0.0), column(generosity), np.array([[1]]), np.array([[0]]))


def test_reciprocal_matching_is_lexicographic() -> None:
    # Options give the other 0, 9999 and 10000 coins: positions 0, 0.9999 and 1. Having received
    # the most generous option (g = 1), the reciprocator must give the nearest option (the last),
    # although an individualist prefers the middle one (more for itself) and the distances differ
    # by only 1e-4 (a weighted score "-distance * 1e3 + utility rank" let utility win below 1e-3).
    options = np.array([[100.0, 0.0], [50.0, 9999.0], [0.0, 10000.0]])
    request = DecisionRequest(3, "m", options, np.array([0]), np.array([0.0]), one_entry_history(1.0))
    for seed in range(5):
        assert ReciprocalDecider().decide(request, np.random.default_rng(seed)).choice.tolist() == [2]
    # utility still decides between options that are equally near
    tied = np.array([[0.0, 0.0], [10.0, 5.0], [0.0, 5.0]])
    request = DecisionRequest(3, "m", tied, np.array([0]), np.array([0.0]), one_entry_history(1.0))
    assert ReciprocalDecider().decide(request, np.random.default_rng(0)).choice.tolist() == [1]


def test_history_given_is_the_mean_over_partners_as_documented() -> None:
    # all_edges on a triangle: the oracle plays a giver (gives 10) and a keeper (gives 0) each round
    scenario = make_scenario(
        rounds=1,
        population=[
            {"name": "me", "count": 1, "value": 0, "decider": "oracle"},
            {"name": "giver", "count": 1, "value": 90, "decider": "oracle"},
            {"name": "keeper", "count": 1, "value": -45, "decider": "oracle"},
        ],
        network={"kind": "complete"}, matching="all_edges", menus=DICTATOR,
    )
    model = HvaeModel(scenario)
    model.step()
    me = int(np.flatnonzero(model.state.group_code == 0)[0])
    history = model.state.history_of(np.array([me]))
    assert history.given[0, 0] == 5.0 and history.kept[0, 0] == 5.0 and history.generosity[0, 0] == 0.5
    assert history.partner[0, 0] == -1
    doc = " ".join((History.__doc__ or "").split())
    assert "the **mean** over partners" in doc and "summed over partners" not in doc


def test_a_self_loop_does_not_make_a_graph_complete(tmp_path) -> None:
    # a path 0 - 1 - 2 plus a loop at 0 has 3 edges, like a triangle: 0 and 2 must never meet
    path = tmp_path / "loop.txt"
    path.write_text("0 1\n1 2\n0 0\n")
    scenario = make_scenario(rounds=1, population=[{"name": "o", "count": 3, "value": 0, "decider": "oracle"}],
                             network={"kind": "file", "path": str(path)})
    model = HvaeModel(scenario)
    assert not model.complete_graph
    for _ in range(30):
        pairs = {tuple(sorted(p)) for p in model.match().tolist()}
        assert pairs <= {(0, 1), (1, 2)}


def test_recent_choices_start_at_the_round_asked_for() -> None:
    scenario = make_scenario(rounds=4, population=[{"name": "o", "count": 4, "value": 0, "decider": "oracle"}],
                             network={"kind": "complete"}, dynamics={"rule": "influence", "every": 4})
    model = HvaeModel(scenario)
    for _ in range(3):  # rounds 0, 1, 2 (no update yet)
        model.step()
    assert all(len(v) == 3 for v in model.recent_choices(0).values())
    assert all(len(v) == 1 for v in model.recent_choices(2).values())
    assert model.recent_choices(3) == {}


def test_generosity_on_a_menu_that_gives_the_other_the_same_is_undefined() -> None:
    # ring of 2 points: (15, 0) and (-15, 0) -- the other always gets 0; the analysis calls this
    # generosity undefined (NaN), and so must the model (it said 0.5)
    scenario = make_scenario(rounds=1, population=[{"name": "r", "count": 4, "value": 0, "decider": "reciprocal"}],
                             network={"kind": "complete"}, menus={"kind": "ring", "items": 2, "options": 2})
    model = HvaeModel(scenario)
    model.step()
    assert np.isnan(model.state.hist_generosity[:, 0]).all()
    assert not np.isnan(model.state.hist_given[:, 0]).any()


def test_angle_from_allocations_uses_the_right_quadrant() -> None:
    # mean allocation (0, 100): up and to the left of the slider's centre (50, 50): 135°, not -45°
    assert svo.angle_from_allocations(np.array([[0.0, 100.0]] * 6)) == pytest.approx(135.0)
    assert svo.slider_angles(np.array([[0] * 6]))[0] == pytest.approx(svo.slider_angle([0] * 6))
    assert svo.angle_from_allocations(svo.primary_allocations([0, 8, 0, 0, 8, 8])) == pytest.approx(61.39, abs=0.01)


def test_an_undefined_angle_has_no_category() -> None:
    assert svo.category(float("nan")) is None
    assert svo.categories(np.array([np.nan, 45.0])).tolist() == [None, "prosocial"]
    assert svo.category(-80.0) == "competitive"


def test_readme_states_the_revealed_angle_range_the_code_uses() -> None:
    from hvae.analysis.revealed import ANGLE_MAX, ANGLE_MIN

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    bullet = re.search(r"- \*\*Revealed angle\*\*.*?(?=\n- \*\*|\n## )", readme, re.S).group(0)
    bullet = " ".join(bullet.split())
    assert f"[−{abs(ANGLE_MIN):g}°, {ANGLE_MAX:g}°]" in bullet
    assert "θ on the whole circle" not in bullet
    assert math.isclose(ANGLE_MAX - ANGLE_MIN, 180.0)
