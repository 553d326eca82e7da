"""The Mesa model: seeded reproducibility, hand-computed payoffs, reciprocity, the decider interface."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from conftest import make_scenario

from hvae.agents.deciders import Decider, Decision, Decisions, ReciprocalDecider
from hvae.simulation.model import HvaeModel

DICTATOR = {"kind": "dictator", "endowment": 10, "step": 5}  # options (10,0) (5,5) (0,10)


def run_rows(model: HvaeModel, rounds: int) -> pd.DataFrame:
    model.run(rounds)
    return model.log.decision_rows().to_pandas()


def pair_scenario(first: dict, second: dict, **changes):
    return make_scenario(
        population=[{"name": "a", "count": 1, **first}, {"name": "b", "count": 1, **second}],
        network={"kind": "complete"},
        menus=DICTATOR,
        **changes,
    )


def test_same_seed_same_decisions() -> None:
    scenario = make_scenario(rounds=12)
    first = run_rows(HvaeModel(scenario), 12)
    second = run_rows(HvaeModel(scenario), 12)
    pd.testing.assert_frame_equal(first, second)
    third = run_rows(HvaeModel(scenario, seed=scenario.seed + 1), 12)
    assert not first[["agent_id", "partner_id", "choice"]].equals(third[["agent_id", "partner_id", "choice"]])


def test_decomposed_game_payoffs_by_hand() -> None:
    scenario = pair_scenario(
        {"value": 0, "decider": {"kind": "fixed", "option": 0}},  # keeps 10, gives 0
        {"value": 0, "decider": {"kind": "fixed", "option": 2}},  # keeps 0, gives 10
    )
    model = HvaeModel(scenario)
    rows = run_rows(model, 3).set_index(["round", "group"])
    assert rows.loc[(0, "a"), "payoff"] == 10 + 10
    assert rows.loc[(0, "b"), "payoff"] == 0 + 0
    assert rows.loc[(2, "a"), "received"] == 10
    a = next(agent for agent in model.agents if agent.group == "a")
    assert a.cumulative_payoff == 60


def test_all_edges_payoff_sums_over_neighbours() -> None:
    scenario = make_scenario(
        population=[{"name": "giver", "count": 1, "value": 90, "decider": {"kind": "fixed", "option": 2}},
                    {"name": "keeper", "count": 3, "value": 0, "decider": {"kind": "fixed", "option": 0}}],
        network={"kind": "complete"}, matching="all_edges", menus=DICTATOR,
    )
    rows = run_rows(HvaeModel(scenario), 1).set_index("group")
    keepers = rows.loc["keeper"]
    # each keeper keeps 10 in each of its 3 games and receives 10 from the giver only
    assert (keepers["payoff"] == 3 * 10 + 10).all()
    assert (keepers["n_partners"] == 3).all() and (keepers["partner_id"] == -1).all()
    assert rows.loc["giver", "payoff"] == 0


@pytest.mark.parametrize(("partner_option", "expected_reply"), [(2, 2), (1, 1), (0, 0)])
def test_reciprocal_reference_table(partner_option: int, expected_reply: int) -> None:
    scenario = pair_scenario(
        {"value": "individualistic", "decider": {"kind": "reciprocal"}},
        {"value": 0, "decider": {"kind": "fixed", "option": partner_option}},
    )
    rows = run_rows(HvaeModel(scenario), 3)
    reciprocal = rows[rows["group"] == "a"].sort_values("round")["choice"].tolist()
    # round 0: no history -> acts as the individualistic oracle (keep everything)
    assert reciprocal == [0, expected_reply, expected_reply]


def test_history_records_what_partners_gave() -> None:
    scenario = pair_scenario(
        {"value": 0, "decider": {"kind": "fixed", "option": 1}},
        {"value": 0, "decider": {"kind": "fixed", "option": 2}},
        history={"length": 2},
    )
    model = HvaeModel(scenario)
    model.run(3)
    a = next(agent.index for agent in model.agents if agent.group == "a")
    assert model.state.hist_given[a].tolist() == [10.0, 10.0]
    assert model.state.hist_round[a].tolist() == [2, 1]
    assert model.state.hist_generosity[a].tolist() == [1.0, 1.0]


def test_random_matching_gives_each_agent_at_most_one_partner() -> None:
    rows = run_rows(HvaeModel(make_scenario(rounds=6)), 6)
    for _, round_rows in rows.groupby("round"):
        assert round_rows["agent_id"].is_unique
        partners = round_rows.set_index("agent_id")["partner_id"]
        for agent, partner in partners.items():
            assert partners[partner] == agent


class AlwaysLast(Decider):
    name = "always_last"
    description = "Picks the last option (test decider using the one-agent interface)."

    def choose(self, observation, rng):
        return Decision(len(observation.options) - 1, raw_reply=f"last of {observation.menu_id}")


class SlowAsync(Decider):
    name = "slow_async"
    is_async = True

    async def adecide(self, request, rng):
        await asyncio.sleep(0.001)
        return Decisions.from_choices(np.zeros(request.n, dtype=int))


def test_custom_and_async_deciders_plug_in() -> None:
    scenario = make_scenario(rounds=2)
    model = HvaeModel(scenario, deciders={"alt": AlwaysLast(), "com": SlowAsync()})
    rows = run_rows(model, 2)
    model.close()
    assert (rows.loc[rows["group"] == "alt", "choice"] == 8).all()
    assert rows.loc[rows["group"] == "alt", "raw_reply"].str.startswith("last of slider").all()
    assert (rows.loc[rows["group"] == "com", "choice"] == 0).all()
    assert rows.loc[rows["group"] == "pro", "raw_reply"].isna().all()


def test_bad_decider_output_is_caught() -> None:
    class OutOfMenu(Decider):
        name = "broken"

        def decide(self, request, rng):
            return Decisions.from_choices(np.full(request.n, 99))

    model = HvaeModel(make_scenario(rounds=1), deciders={"alt": OutOfMenu()})
    with pytest.raises(RuntimeError, match="chose option 99"):
        model.step()


def test_mesa_agents_mirror_state() -> None:
    model = HvaeModel(make_scenario())
    assert len(model.agents) == 16
    competitive = model.agents.select(lambda a: a.value_category == "competitive")
    assert len(competitive) == 4 and all(a.value_angle == -45 for a in competitive)
    some = next(iter(model.agents))
    assert {p.index for p in some.partners} == set(model.graph.neighbors(some.index))


def test_logit_oracle_approaches_argmax_with_large_beta() -> None:
    scenario = make_scenario(
        population=[{"name": "x", "count": 20, "value": 45, "decider": {"kind": "oracle", "beta": 1000}}],
        network={"kind": "complete"}, menus=DICTATOR,
    )
    rows = run_rows(HvaeModel(scenario), 5)
    assert (rows["choice"].isin([0, 1, 2])).all()  # all options tie for θ=45 on a dictator menu
    scenario = make_scenario(
        population=[{"name": "x", "count": 20, "value": 80, "decider": {"kind": "oracle", "beta": 1000}}],
        network={"kind": "complete"}, menus=DICTATOR,
    )
    assert (run_rows(HvaeModel(scenario), 5)["choice"] == 2).all()


def test_reciprocal_decider_without_history_is_oracle() -> None:
    from hvae.agents.deciders import DecisionRequest, History

    empty = np.full((3, 2), np.nan)
    request = DecisionRequest(0, "d", np.array([[10, 0], [5, 5], [0, 10]], float), np.arange(3), np.array([90.0, -45.0, 80.0]),
                              History(empty, empty, empty, np.full((3, 2), -1), np.full((3, 2), -1)))
    choices = ReciprocalDecider().decide(request, np.random.default_rng(0)).choice
    assert choices.tolist() == [2, 0, 2]


def test_mesa_unique_id_is_the_table_agent_id_plus_one() -> None:
    model = HvaeModel(make_scenario(rounds=1))
    model.step()
    rows = model.log.decision_rows().to_pandas()
    for agent_id in rows["agent_id"].unique():
        agent = model.agent_by_id(int(agent_id))
        assert agent.agent_id == agent_id and agent.unique_id == agent_id + 1
    assert sorted(a.unique_id for a in model.agents) == list(range(1, model.n_agents + 1))


def test_the_network_is_held_once_and_its_arrays_follow_the_mesa_space() -> None:
    model = HvaeModel(make_scenario(matching="all_edges"))
    assert model.graph is model.space.G
    u, v = (int(x) for x in model.edges[0])
    degree_u = int(model.degree[u])
    model.space.remove_connection(model.space[u], model.space[v])
    model.network_changed()
    assert {u, v} not in [set(e) for e in model.edges.tolist()]
    assert model.degree[u] == degree_u - 1 and len(model.neighbours.of(u)) == degree_u - 1
    model.step()
    rows = model.log.decision_rows().to_pandas().set_index("agent_id")
    assert rows.loc[u, "n_partners"] == degree_u - 1  # the next round plays on the changed network


def test_history_of_gives_the_rows_of_the_state_for_each_array() -> None:
    from hvae.agents.deciders import History
    from hvae.simulation.state import PopulationState

    state = PopulationState.empty(6, 2)
    rng = np.random.default_rng(1)
    for name in ("given", "kept", "generosity", "partner", "round"):
        column = getattr(state, f"hist_{name}")
        column[:] = rng.integers(0, 50, column.shape)
    ids = np.array([4, 1, 4])
    history = state.history_of(ids)
    assert isinstance(history, History) and history.length == 2
    for name in ("given", "kept", "generosity", "partner", "round"):
        assert np.array_equal(getattr(history, name), getattr(state, f"hist_{name}")[ids])
    assert history.row(1)[0]["given"] == state.hist_given[1, 0]
