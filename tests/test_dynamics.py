"""Value dynamics: deterministic reference cases for each rule and properties for all of them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae.analysis.runfolder import RunFolder
from hvae.simulation.model import HvaeModel
from hvae.simulation.runner import play_scenario

DICTATOR = {"kind": "dictator", "endowment": 10, "step": 5}


def star_file(tmp_path, leaves: int):
    path = tmp_path / "star.txt"
    path.write_text("\n".join(f"0 {i}" for i in range(1, leaves + 1)))
    return str(path)


def star_scenario(tmp_path, rule: str, strength: float, **dynamics):
    """One keeper (keeps everything) and five givers (give everything) on a star.

    Oracles: on the dictator menu (10, 0), (5, 5), (0, 10) a competitive oracle always keeps all
    and an altruistic one always gives all, with no ties.
    """
    return make_scenario(
        rounds=1,
        population=[
            {"name": "keepers", "count": 1, "value": "competitive", "decider": "oracle"},
            {"name": "givers", "count": 5, "value": "altruistic", "decider": "oracle"},
        ],
        network={"kind": "file", "path": star_file(tmp_path, 5)},
        matching="all_edges",
        menus=DICTATOR,
        dynamics={"rule": rule, "every": 1, "strength": strength, **dynamics},
    )


def keeper_at_hub(tmp_path, rule: str, strength: float) -> HvaeModel:
    """The first seed whose random placement puts the keeper on the hub."""
    scenario = star_scenario(tmp_path, rule, strength)
    for seed in range(200):
        model = HvaeModel(scenario, seed=seed)
        keeper = int(np.flatnonzero(model.state.group_code == 0)[0])
        if model.degree[keeper] == 5:
            return model
    raise AssertionError("no seed put the keeper on the hub")


def test_imitation_at_high_selection_strength_on_a_star(tmp_path) -> None:
    # The keeper keeps 10 per game and receives 10 from each giver; givers end with nothing.
    # With s = 1000 each leaf, whose only neighbour is the better-off hub, copies its value;
    # the hub's neighbours are all worse off, so it keeps its own.
    model = keeper_at_hub(tmp_path, "imitation", 1000.0)
    model.step()
    assert model.state.theta.tolist() == [-45.0] * 6
    assert model.n_value_changes.sum() == 5


def test_imitation_at_zero_strength_is_a_coin_flip(tmp_path) -> None:
    flips = []
    for seed in range(40):
        model = HvaeModel(star_scenario(tmp_path, "imitation", 0.0), seed=seed)
        model.step()
        flips.append(model.n_value_changes.sum())
    # every neighbour of the keeper (and the keeper) copies with probability 1/2 per update
    assert 0 < np.mean(flips) < 5


def test_moran_on_a_star_leaves_always_copy_the_hub(tmp_path) -> None:
    # A dying leaf can only be replaced by the hub's offspring; a dying hub by a leaf's. With the
    # keeper on the hub and strong selection, the keeper's value takes every leaf that dies.
    model = keeper_at_hub(tmp_path, "moran", 1000.0)
    model.step()
    theta = model.state.theta
    assert set(theta.tolist()) <= {-45.0, 90.0}
    hub = int(np.argmax(model.degree))
    leaves = [a for a in range(6) if a != hub]
    changes = model.log.drain()["value_changes"].to_pandas()
    assert set(changes["source_agent"]) <= set(range(6))
    for _, change in changes.iterrows():
        if change["agent_id"] in leaves:
            assert change["source_agent"] == hub


def test_influence_moves_toward_neighbours_revealed_angles() -> None:
    scenario = make_scenario(
        rounds=24,  # one pass over the 24 ring items: every direction is offered
        population=[
            {"name": "a", "count": 1, "value": 80, "decider": "oracle"},
            {"name": "b", "count": 1, "value": 0, "decider": "oracle"},
        ],
        network={"kind": "complete"},
        matching="all_edges",
        menus={"kind": "ring"},
        dynamics={"rule": "influence", "every": 24, "strength": 0.5},
    )
    model = HvaeModel(scenario)
    a = int(np.flatnonzero(model.state.group_code == 0)[0])
    b = 1 - a
    model.run(24)
    # each moves half-way toward the other's revealed angle (ring choices reveal it within 15°)
    assert 25 < model.state.theta[a] < 50
    assert 25 < model.state.theta[b] < 50


def test_influence_skips_neighbours_whose_angle_is_not_identified() -> None:
    # Two 45° agents that always take the equal split of a dictator menu: every option ties for a
    # 45° chooser, so their choices identify no angle. Nobody may be pulled toward "0°".
    scenario = make_scenario(
        rounds=4,
        population=[{"name": "splitters", "count": 2, "value": 45, "decider": {"kind": "fixed", "option": 1}}],
        network={"kind": "complete"},
        matching="all_edges",
        menus=DICTATOR,
        dynamics={"rule": "influence", "every": 2, "strength": 0.5},
    )
    model = HvaeModel(scenario)
    model.run(4)
    assert model.state.theta.tolist() == [45.0, 45.0]
    assert model.n_value_changes.sum() == 0


@pytest.mark.slow
@given(st.sampled_from(["imitation", "moran", "influence"]), st.floats(0, 50), st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_shares_sum_to_one_and_values_stay_legal(rule: str, strength: float, seed: int) -> None:
    scenario = make_scenario(
        rounds=12,
        size=16,
        population=[
            {"name": "mixed", "share": 0.5, "value": {"distribution": "uniform", "low": -90, "high": 90}, "decider": "oracle"},
            {"name": "rand", "share": 0.5, "value": "competitive", "decider": "random"},
        ],
        menus={"kind": "ring", "items": 8},
        dynamics={"rule": rule, "every": 4, "strength": strength},
    )
    model = HvaeModel(scenario, seed=seed)
    model.run(12)
    assert np.all((model.state.theta >= -90) & (model.state.theta <= 90))
    rounds = model.log.round_rows().to_pandas()
    shares = rounds[rounds["grouping"] == "category"].groupby("round")["share"].sum()
    assert np.allclose(shares, 1.0)


def test_value_changes_are_recorded_in_the_run_folder(tmp_path) -> None:
    seed = keeper_at_hub(tmp_path, "imitation", 1000.0).seed
    scenario = star_scenario(tmp_path, "imitation", 1000.0).model_copy(update={"seed": seed})
    result = play_scenario(scenario, tmp_path / "run")
    run = RunFolder(result.path)
    changes = run.frame("value_changes")
    agents = run.agents()
    assert len(changes) == agents["n_value_changes"].sum() > 0
    assert set(changes["new_category"]) == {"competitive"} and set(changes["rule"]) == {"imitation"}
    moved = agents[agents["n_value_changes"] > 0]
    assert (moved["initial_value_angle"] == 90).all() and (moved["value_angle"] == -45).all()


def test_llm_agents_are_reprompted_after_a_value_change(tmp_path) -> None:
    scenario = make_scenario(
        rounds=2,
        population=[
            {"name": "keeper", "count": 1, "value": "competitive", "decider": {"kind": "fixed", "option": 0}},
            {"name": "llm", "count": 1, "value": "altruistic", "decider": {"kind": "llm", "backend": "script", "reasks": 0, "order": "fixed"}},
        ],
        network={"kind": "complete"},
        matching="all_edges",
        menus=DICTATOR,
        dynamics={"rule": "imitation", "every": 1, "strength": 1000},
        backends={"script": {"kind": "replay", "replies": ["I give.", "Give all.", "C", "I keep.", "Keep all.", "A"]}},
        cache={"enabled": False},
    )
    result = play_scenario(scenario, tmp_path / "run")
    run = RunFolder(result.path)
    setup = run.frame("llm_agents")
    assert setup.loc[0, "description"] == "I keep." and setup.loc[0, "value_angle"] == -45
    decisions = run.decisions()
    assert decisions.loc[(decisions["group"] == "llm") & (decisions["round"] == 1), "choice"].item() == 0
    import json

    phases = [json.loads(line)["phase"] for line in (result.path / "transcripts.jsonl").read_text().splitlines()]
    assert phases == ["value", "goal", "decision", "value", "goal", "decision"]


def test_a_value_change_is_numbered_like_the_decisions_before_it(tmp_path) -> None:
    # every=1: the keeper's value spreads after round 0; the change row says round 0, the last
    # round played under the old value, and the decisions of round 1 carry the new one
    seed = keeper_at_hub(tmp_path, "imitation", 1000.0).seed
    scenario = star_scenario(tmp_path, "imitation", 1000.0).model_copy(update={"seed": seed, "rounds": 2})
    run = RunFolder(play_scenario(scenario, tmp_path / "run").path)
    changes = run.frame("value_changes")
    assert set(changes["round"]) == {0}
    decisions = run.decisions()
    for agent in changes["agent_id"]:
        mine = decisions[decisions["agent_id"] == agent].set_index("round")["value_angle"]
        assert mine[0] == changes.loc[changes["agent_id"] == agent, "old_angle"].item()
        assert mine[1] == changes.loc[changes["agent_id"] == agent, "new_angle"].item()


@pytest.mark.slow
def test_the_terminal_summary_reports_value_changes_and_shares(tmp_path, cli) -> None:
    out = tmp_path / "run"
    result = cli("run", "oracle_population", "--out", str(out), "--set", "rounds=12",
                 "--set", "dynamics={rule: imitation, every: 6, strength: 1000}", "--no-report")
    assert result.returncode == 0, result.stderr
    changes = len(RunFolder(out).frame("value_changes"))
    assert f"Value dynamics (imitation, every 6 rounds): {changes} value changes" in result.stdout
    assert changes > 0 and "altruistic 25% →" in result.stdout


def test_moran_parents_never_pass_on_a_value_they_have_not_played(tmp_path) -> None:
    # Path 0 - 1 - 2. Agent 0 (-45°) is by far the fittest; 1 and 2 hold 90°. Once 1 dies and takes
    # 0's value, 1's fitness was earned as an altruist: it must not reproduce -45° into 2 within the
    # same update (with frozen fitness it did, in most seeds).
    from hvae.simulation.dynamics import Neighbours, moran

    neighbours = Neighbours(np.array([[0, 1], [1, 2]]), 3)
    theta = np.array([-45.0, 90.0, 90.0])
    fit = np.array([10.0, 0.0, 0.0])
    converted = 0
    for seed in range(60):
        new, source = moran(theta, fit, neighbours, 1000.0, 30, np.random.default_rng(seed))
        assert new[2] == 90.0, seed  # its only neighbour never played as -45° in this update
        converted += new[1] == -45.0
    assert converted > 0  # 1 itself is taken over whenever it dies before 0 does


def test_fitness_per_game_removes_the_degree_confound(tmp_path) -> None:
    # A star where everyone keeps everything: 10 coins per game for the hub and the leaves alike.
    # Total payoff makes the hub 5x fitter (it plays 5 games a round); per game they are equal.
    from hvae.simulation.dynamics import fitness

    population = [{"name": "hub_value", "count": 1, "value": "competitive", "decider": "oracle"},
                  {"name": "leaf_value", "count": 5, "value": "individualistic", "decider": "oracle"}]

    def model_with(fitness_kind: str) -> HvaeModel:
        config = make_scenario(rounds=1, population=population, network={"kind": "file", "path": star_file(tmp_path, 5)},
                               matching="all_edges", menus=DICTATOR,
                               dynamics={"rule": "imitation", "every": 10, "fitness": fitness_kind})
        for seed in range(200):
            model = HvaeModel(config, seed=seed)
            if model.degree[int(np.flatnonzero(model.state.group_code == 0)[0])] == 5:
                model.step()
                return model
        raise AssertionError("no seed put the competitive agent on the hub")

    model = model_with("payoff_per_game")
    values = fitness(model, model.scenario.dynamics)
    assert np.allclose(values, 10.0 / 20.0)  # 10 coins per game, in units of the 20-coin range
    model = model_with("total_payoff")
    values = fitness(model, model.scenario.dynamics)
    hub = int(np.argmax(model.degree))
    assert values[hub] == pytest.approx(5 * values[(hub + 1) % 6])


def test_idle_agents_have_unknown_fitness_per_game() -> None:
    from hvae.simulation.dynamics import Neighbours, fitness, imitation

    # random matching of 3 agents on a triangle: one agent sits out every round
    scenario = make_scenario(rounds=1, size=3, population=[{"name": "o", "share": 1.0, "value": 0, "decider": "oracle"}],
                             network={"kind": "complete"}, dynamics={"rule": "imitation", "every": 10})
    model = HvaeModel(scenario)
    model.step()
    values = fitness(model, scenario.dynamics)
    assert np.isnan(values).sum() == 1
    idle = int(np.flatnonzero(np.isnan(values))[0])
    # a comparison with an agent of unknown fitness never changes anyone's value
    theta = np.array([10.0, 20.0, 30.0])
    neighbours = Neighbours(model.edges, 3)
    for seed in range(30):
        new, source = imitation(theta, values, neighbours, 5.0, np.random.default_rng(seed))
        assert new[idle] == theta[idle] and idle not in source.tolist()


def test_default_selection_is_neither_a_coin_flip_nor_deterministic_on_the_slider() -> None:
    from hvae.scenarios.loader import load_scenario
    from hvae.simulation.dynamics import fitness

    departures = []
    for seed in range(3):
        scenario = load_scenario("oracle_population", ["dynamics={rule: imitation, every: 6}"], seed=seed)
        assert scenario.dynamics.fitness == "payoff_per_game" and scenario.dynamics.strength == 5.0
        model = HvaeModel(scenario)
        for _ in range(6):  # one window of play, without the update that would follow it
            menu = model.schedule.menu_for_round(model.round)
            pairs = model.match()
            deciding = np.flatnonzero(np.bincount(pairs.ravel(), minlength=model.n_agents) > 0)
            choice, _ = model.decide(menu, deciding)
            model.pay(menu, pairs, choice)
            model.round += 1
        values = fitness(model, scenario.dynamics)
        theta = model.state.theta
        for u, v in model.edges:
            if theta[u] != theta[v]:
                p = 1 / (1 + np.exp(-scenario.dynamics.strength * abs(values[u] - values[v])))
                departures.append(abs(p - 0.5))
    mean = float(np.mean(departures))
    assert 0.15 < mean < 0.4, mean  # 0 = a coin flip, 0.5 = deterministic


def test_dynamics_defaults_by_rule() -> None:
    from hvae.scenarios.schema import NoDynamicsConfig, dynamics_config

    assert dynamics_config(rule="imitation").strength == 5.0 == dynamics_config(rule="moran").strength
    assert dynamics_config(rule="influence").strength == 1.0
    assert dynamics_config(rule="influence", strength=None).strength == 1.0  # null: the rule's default
    assert dynamics_config(rule="moran", strength=2).strength == 2.0
    assert dynamics_config(rule="imitation").fitness == "payoff_per_game"
    assert isinstance(dynamics_config(), NoDynamicsConfig)


def test_legacy_dynamics_keys_still_load() -> None:
    from hvae.scenarios.schema import dynamics_config

    # the flat section of hvae 0.1 took fitness and events for every rule (a resolved scenario.yaml has them)
    old = dynamics_config(rule="influence", every=3, strength=1.0, fitness="payoff_per_game")
    assert old.rule == "influence" and old.every == 3 and not hasattr(old, "fitness")
    assert dynamics_config(rule="none", fitness="total_payoff", events=4).rule == "none"
