"""Games beyond the slider: custom menus, decomposed 2×2 games, n-player public goods.

Reference tables are written by hand from the games' definitions (and, for the prisoner's dilemma,
checked against the Axelrod library's own match scores); the public goods payoffs are checked
against a direct computation of every hosted game.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, make_scenario
from hypothesis import given
from hypothesis import strategies as st

from hvae.agents.deciders import DecisionRequest, History, OracleDecider
from hvae.agents.games import (
    PublicGoodsGame,
    decompose_symmetric_2x2,
    donation_menu,
    game_matrix,
    n_player_utility,
)
from hvae.agents.svo import menu_utilities
from hvae.analysis.invasion import invasion_table
from hvae.analysis.runfolder import RunFolder
from hvae.experiments.sweep import load_sweep
from hvae.experiments.sweep.spec import validate_runs
from hvae.scenarios.loader import ScenarioError, load_scenario, shipped_scenarios
from hvae.simulation.games import build_schedule
from hvae.simulation.model import HvaeModel
from hvae.simulation.public_goods import public_goods_payoffs
from hvae.simulation.runner import play_scenario

PD = {"kind": "prisoners_dilemma", "T": 4, "R": 3, "P": 1, "S": 0}


# ---------------------------------------------------------------- decomposed 2×2 games
def test_prisoners_dilemma_decomposes_into_the_hand_table() -> None:
    menu = decompose_symmetric_2x2(T=4, R=3, P=1, S=0)
    assert menu.tolist() == [[0.0, 3.0], [1.0, 0.0]]  # C = (S, R − S), D = (P, 0)
    # row: my move (C, D); column: the other's move — [[R, S], [T, P]]
    assert game_matrix(menu).tolist() == [[3.0, 0.0], [4.0, 1.0]]


def test_donation_game_is_give_b_at_cost_c() -> None:
    menu = donation_menu(b=3, c=1)
    assert menu.tolist() == [[-1.0, 3.0], [0.0, 0.0]]
    assert game_matrix(menu).tolist() == [[2.0, -1.0], [3.0, 0.0]]  # R = b − c, S = −c, T = b, P = 0


@given(st.integers(-20, 20), st.integers(-20, 20), st.integers(-20, 20))
def test_every_separable_game_is_reproduced_by_its_decomposition(reward: int, punishment: int, sucker: int) -> None:
    temptation = reward + punishment - sucker  # T − R = P − S
    menu = decompose_symmetric_2x2(temptation, reward, punishment, sucker)
    assert game_matrix(menu).tolist() == [[reward, sucker], [temptation, punishment]]


def test_non_separable_game_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"not separable: T − R = 2 but P − S = 1"):
        decompose_symmetric_2x2(T=5, R=3, P=1, S=0)  # Axelrod's default game


def test_non_separable_scenario_is_one_line(cli, tmp_path) -> None:
    path = tmp_path / "pd.yaml"
    path.write_text(
        "name: pd\nrounds: 2\npopulation:\n  - {name: a, count: 2, value: prosocial, decider: oracle}\n"
        "menus: {kind: prisoners_dilemma, T: 5, R: 3, P: 1, S: 0}\n"
    )
    assert_user_error(cli("validate", str(path)), "pd.yaml:5: menus: the game is not separable: T − R = 2 but P − S = 1")


def fixed_population(menus: dict, n_cooperators: int, n_defectors: int):
    return make_scenario(
        rounds=2,
        population=[
            {"name": "c", "count": n_cooperators, "value": "prosocial", "decider": {"kind": "fixed", "option": 0}},
            {"name": "d", "count": n_defectors, "value": "prosocial", "decider": {"kind": "fixed", "option": 1}},
        ],
        network={"kind": "complete"},
        matching="all_edges",
        menus=menus,
    )


@pytest.mark.parametrize(
    ("menus", "table"),
    [
        (PD, {("C", "C"): 3, ("C", "D"): 0, ("D", "C"): 4, ("D", "D"): 1}),
        ({"kind": "donation", "b": 3, "c": 1}, {("C", "C"): 2, ("C", "D"): -1, ("D", "C"): 3, ("D", "D"): 0}),
    ],
)
def test_decisions_table_payoffs_are_the_games_payoffs(menus: dict, table: dict) -> None:
    # two cooperators and three defectors, every pair plays once per round
    model = HvaeModel(fixed_population(menus, 2, 3))
    model.step()
    rows = model.log.decision_rows().to_pandas()
    move = {"c": "C", "d": "D"}
    counts = {"C": 2, "D": 3}
    for _, row in rows.iterrows():
        me = move[row["group"]]
        expected = sum(table[(me, other)] * (counts[other] - (other == me)) for other in "CD")
        assert row["payoff"] == expected
        assert row["n_partners"] == 4


def axelrod_player_as_group(name: str) -> dict:
    """hvae rule deciders that play Axelrod's strategies on the decomposed dilemma: an altruistic
    oracle always cooperates, an individualistic one always defects, and a prosocial reciprocator
    with memory 1 cooperates first and then gives back what it was given (tit for tat)."""
    return {
        "Cooperator": {"value": "altruistic", "decider": "oracle"},
        "Defector": {"value": "individualistic", "decider": "oracle"},
        "Tit For Tat": {"value": "prosocial", "decider": {"kind": "reciprocal", "memory": 1}},
    }[name]


TURNS = 10


def hvae_match(first: str, second: str) -> tuple[float, float]:
    groups = [{"name": "first", "count": 1, **axelrod_player_as_group(first)}]
    if first == second:
        groups[0]["count"] = 2
    else:
        groups.append({"name": "second", "count": 1, **axelrod_player_as_group(second)})
    model = HvaeModel(make_scenario(rounds=TURNS, population=groups, network={"kind": "complete"}, menus=PD, history={"length": 1}))
    model.run()
    payoffs = model.state.cumulative_payoff
    if first == second:
        return float(payoffs[0]), float(payoffs[1])
    first_id = int(np.flatnonzero(model.state.group_code == 0)[0])
    return float(payoffs[first_id]), float(payoffs[1 - first_id])


@pytest.mark.slow  # importing axelrod takes ~10 s
def test_a_round_robin_reproduces_axelrods_scores() -> None:
    import axelrod as axl

    game = axl.Game(r=3, s=0, t=4, p=1)
    players = [axl.Cooperator(), axl.Defector(), axl.TitForTat()]
    tournament = axl.Tournament(players, game=game, turns=TURNS, repetitions=1, seed=1)
    results = tournament.play(progress_bar=False)
    for i, first in enumerate(players):
        for j, second in enumerate(players):
            match = axl.Match((first.clone(), second.clone()), turns=TURNS, game=game)
            match.play()
            expected = match.final_score()
            assert hvae_match(first.name, second.name) == pytest.approx(expected), (first.name, second.name)
            # the tournament's payoff matrix is the mean payoff per turn of row against column
            assert results.payoff_matrix[i][j] == pytest.approx(expected[0] / TURNS)


# ---------------------------------------------------------------- custom menus
def test_custom_items_are_cycled_in_order() -> None:
    items = [[[85, 85], [100, 50]], [[50, 100], [85, 15], [70, 70]]]
    model = HvaeModel(make_scenario(rounds=5, menus={"kind": "custom", "items": items}))
    model.run()
    played = model.log.decision_rows().to_pandas().groupby("round")["menu_id"].first().tolist()
    assert played == ["custom1", "custom2", "custom1", "custom2", "custom1"]
    assert model.schedule.menu_by_id["custom2"].options.tolist() == items[1]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ("[[[85, 85], [100, 50]], [[50, 100]]]", r"menus\.items\.1: a custom item needs at least 2 options .*this one has 1"),
        ("[[[85, 85], [100, 50]], [[50, 100], [.nan, 3]]]", r"menus\.items\.1: option 2 \(nan, 3\) is not a pair of finite numbers"),
        ("[[[85, 85], [100, .inf]]]", r"menus\.items\.0: option 2 \(100, inf\) is not a pair of finite numbers"),
        ("[[[85, 85], [100, lots]]]", r"menus\.items\.0\.1\.1: input should be a valid number"),
        ("[[[85, 85, 3], [100, 50]]]", r"menus\.items\.0\.0: tuple should have at most 2 items"),
        ("[]", r"menus\.items: list should have at least 1 item"),
    ],
)
def test_bad_custom_items_are_one_line_naming_the_item(tmp_path, items: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nrounds: 2\npopulation:\n  - {name: a, count: 2, value: prosocial, decider: oracle}\n"
        f"menus:\n  kind: custom\n  items: {items}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message and re.search(expected, message), message
    assert message.startswith(f"{path}:7: ")  # the line of the items


# ---------------------------------------------------------------- public goods: one group
def test_public_goods_menu_reference_table() -> None:
    game = PublicGoodsGame(endowment=10, step=5, r=3, group_size=5)
    # contributing c keeps 10 − c + 3c/5 and gives each of the 4 others 3c/5
    assert game.options.tolist() == [[10.0, 0.0], [8.0, 3.0], [6.0, 6.0]]
    assert game.contributions.tolist() == [0.0, 5.0, 10.0]
    # pot 20 × 3 / 5 = 12 each
    assert game.group_payoffs(np.array([10, 0, 0, 5, 5])).tolist() == [12.0, 22.0, 22.0, 17.0, 17.0]


def test_a_step_that_does_not_divide_the_endowment_still_offers_all_of_it() -> None:
    assert PublicGoodsGame(endowment=10, step=4, r=2, group_size=3).contributions.tolist() == [0.0, 4.0, 8.0, 10.0]


def test_decomposed_payoffs_equal_the_direct_game_and_utility_is_shifted_by_a_constant() -> None:
    rng = np.random.default_rng(0)
    game = PublicGoodsGame(endowment=10, step=2, r=3.5, group_size=4)
    for _ in range(50):
        choice = rng.integers(0, len(game.contributions), 4)
        direct = game.group_payoffs(game.contributions[choice])
        own, other = game.options[choice, 0], game.options[choice, 1]
        assert np.allclose(direct, own + other.sum() - other)
        # the n-player SVO utility of member 0 over its own options, the others' choices fixed
        theta = rng.uniform(-90, 90)
        n_player = []
        for option in range(len(game.contributions)):
            profile = choice.copy()
            profile[0] = option
            payoffs = game.group_payoffs(game.contributions[profile])
            n_player.append(n_player_utility(theta, payoffs[0], payoffs[1:]))
        shift = np.array(n_player) - menu_utilities(theta, game.options)
        assert np.allclose(shift, shift[0])


@pytest.mark.parametrize(
    ("r", "theta", "contribution"),
    [
        # eta = r / 5; full contribution iff cos θ·(eta − 1) + sin θ·eta > 0
        (3.0, 90, 10), (3.0, 45, 10), (3.0, 0, 0), (3.0, -45, 0),     # eta 0.6
        (2.0, 90, 10), (2.0, 45, 0), (2.0, 0, 0),                      # eta 0.4 < 1/2: prosocials keep
        (6.0, 45, 10), (6.0, 0, 10), (6.0, -45, 0),                    # eta 1.2: individualists give
        (4.0, 20, 10), (4.0, 10, 0),                                   # eta 0.8: the line is at atan(0.2 / 0.8) = 14.04°
    ],
)
def test_oracle_contributions_reference_table(r: float, theta: float, contribution: float) -> None:
    game = PublicGoodsGame(endowment=10, step=2, r=r, group_size=5)
    boundary = math.degrees(math.atan2(1 - game.eta, game.eta))  # where full and nothing tie
    assert abs(theta - boundary) > 1e-6
    request = DecisionRequest(0, "public_goods", game.options, np.array([0]), np.array([float(theta)]), History(*(np.zeros((1, 0)),) * 5), game=game)
    chosen = OracleDecider().decide(request, np.random.default_rng(0)).choice[0]
    assert game.contributions[chosen] == contribution
    # the brute-force n-player utility agrees (others contribute nothing)
    payoffs = [game.group_payoffs(np.array([c, 0, 0, 0, 0])) for c in game.contributions]
    utilities = [n_player_utility(theta, p[0], p[1:]) for p in payoffs]
    assert game.contributions[int(np.argmax(utilities))] == contribution


# ---------------------------------------------------------------- public goods on the network
def direct_network_payoffs(
    edges: np.ndarray, n: int, game: PublicGoodsGame, contribution: np.ndarray, decided: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Payoffs and games played when every agent hosts a game with its neighbours; a game with an
    undecided member is void."""
    neighbours = [set() for _ in range(n)]
    for u, v in edges:
        neighbours[u].add(v)
        neighbours[v].add(u)
    payoff, played = np.zeros(n), np.zeros(n, dtype=int)
    for host in range(n):
        members = sorted({host, *neighbours[host]})
        if not decided[members].all():
            continue
        payoff[members] += game.group_payoffs(contribution[members])
        played[members] += 1
    return payoff, played


def test_network_payoffs_equal_every_hosted_game_computed_directly() -> None:
    n = 7
    edges = np.array([(i, (i + d) % n) for i in range(n) for d in (1, 2)])  # ring lattice, k = 4
    schedule = build_schedule({"kind": "public_goods", "endowment": 10, "step": 2, "r": 3.0}, group_size=5)
    menu = schedule.menus[0]
    rng = np.random.default_rng(4)
    for undecided in ([], [3]):
        choice = rng.integers(0, 6, n)
        choice[undecided] = -1
        outcome = public_goods_payoffs(menu, edges, choice, n)
        decided = choice >= 0
        contribution = np.where(decided, menu.game.contributions[np.maximum(choice, 0)], 0.0)
        payoff, played = direct_network_payoffs(edges, n, menu.game, contribution, decided)
        assert np.allclose(outcome["payoff"], payoff)
        assert outcome["n_played"].tolist() == played.tolist()
        assert outcome["n_partners"].tolist() == [5] * n
    # agent 3 undecided voids its own game and its 4 neighbours' (1, 2, 4, 5): the games of 6 and 0 remain
    assert played.tolist() == [2, 2, 1, 0, 1, 2, 2]


def test_public_goods_needs_a_regular_network() -> None:
    scenario = make_scenario(menus={"kind": "public_goods", "eta": 0.8}, network={"kind": "barabasi_albert", "m": 2})
    with pytest.raises(ScenarioError, match=r"public_goods needs a regular network .* degrees 2 to \d+"):
        HvaeModel(scenario)


def altruist_share_after(eta: float, network: dict, size: int, seed: int = 1, rounds: int = 200) -> float:
    overrides = [f"menus.eta={eta}", f"rounds={rounds}", f"size={size}", "dynamics.strength=50", f"network={network}"]
    model = HvaeModel(load_scenario("public_goods", overrides, seed=seed))
    model.run()
    return float((model.state.theta > 45).mean())


def test_contributions_survive_on_the_lattice_above_the_threshold_only() -> None:
    # the sweep's settings (scenarios/public_goods_sweep.yaml) at its two ends, and well mixed
    lattice = "{kind: grid, rows: 20, cols: 20, periodic: true}"
    assert altruist_share_after(0.6, lattice, 400) == 0.0
    assert altruist_share_after(0.9, lattice, 400) > 0.6
    assert altruist_share_after(0.9, "{kind: complete}", 40) == 0.0  # well mixed: eta < 1 never pays


def test_history_holds_the_neighbours_mean_contribution() -> None:
    scenario = make_scenario(
        rounds=1,
        population=[
            {"name": "givers", "count": 2, "value": "altruistic", "decider": "oracle"},
            {"name": "keepers", "count": 3, "value": "individualistic", "decider": "oracle"},
        ],
        network={"kind": "complete"},
        menus={"kind": "public_goods", "endowment": 10, "step": 5, "eta": 0.6},
    )
    model = HvaeModel(scenario)
    model.step()
    keeper = int(np.flatnonzero(model.state.group_code == 1)[0])
    # a keeper's 4 neighbours: 2 gave everything (generosity 1), 1 other keeper (0)
    assert model.state.hist_generosity[keeper, 0] == pytest.approx(2 / 4)
    row = model.log.decision_rows().to_pandas().set_index("agent_id").loc[keeper]
    # 5 hosted games of 5 members, each with both givers: received 5 × 2 × 6 = 60, kept 10 × 5
    assert (row["received"], row["payoff"], row["partner_id"], row["n_partners"]) == (60.0, 110.0, -1, 5)


# ---------------------------------------------------------------- shipped files
def test_the_threshold_sweep_is_valid_and_small() -> None:
    sweep = load_sweep(shipped_scenarios()["public_goods_sweep"])
    runs = validate_runs(sweep)
    assert len(runs) == len(sweep.runs) == 24
    assert sweep.param_keys == ["menus.eta"]


@pytest.mark.slow
def test_a_small_eta_sweep_writes_the_invasion_by_eta_figure(cli, tmp_path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(
        f"name: small\nscenario: {shipped_scenarios()['public_goods']}\nseeds: [1]\n"
        "overrides: {rounds: 40, size: 100, network: {kind: grid, rows: 10, cols: 10, periodic: true}, dynamics.strength: 50}\n"
        "grid:\n  menus.eta: [0.5, 0.7, 0.95]\n"
    )
    result = cli("sweep", str(path), "--workers", "1", "--out", str(tmp_path / "out"), timeout=180)
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "out" / "invasion.parquet")
    assert sorted(table["menus.eta"].unique()) == [0.5, 0.7, 0.95]
    altruists = table[table["category"] == "altruistic"].set_index("menus.eta")["final_share"]
    assert altruists[0.5] == 0.0 and altruists[0.95] > 0.5
    assert (tmp_path / "out" / "figures" / "invasion_by_menus_eta.png").stat().st_size > 5_000
    assert len(invasion_table(sorted((tmp_path / "out").glob("run-*")))) == len(table)


def test_public_goods_run_reports_decision_vr_beside_chance(tmp_path) -> None:
    from hvae.experiments.runs import run_to_folder as run_with_summary

    overrides = ["rounds=4", "size=36", "network={kind: grid, rows: 6, cols: 6, periodic: true}", "dynamics.rule=none"]
    run = RunFolder(run_with_summary(load_scenario("public_goods", overrides), tmp_path / "run").path)
    decisions = run.decisions()
    assert decisions.groupby("group")["choice"].agg(set).to_dict() == {"altruists": {5}, "individualists": {0}}
    groups = pd.read_parquet(run.path / "groups.parquet").set_index("group")
    # six evenly spaced contribution levels: a random chooser's expected normalised utility is 1/2
    assert groups["decision_vr"].tolist() == [1.0, 1.0]
    assert groups["chance_vr"].tolist() == pytest.approx([0.5, 0.5])


# ---------------------------------------------------------------- public goods: LLM prompt
@pytest.mark.llm
def test_llm_sees_contributions_with_their_consequences_in_a_recorded_order(tmp_path) -> None:
    import json

    scenario = make_scenario(
        rounds=3,
        population=[
            {"name": "llm", "count": 1, "value": "altruistic",
             "decider": {"kind": "llm", "backend": "script", "order": "shuffle", "structured": False}},
            {"name": "partners", "count": 2, "value": "prosocial", "decider": {"kind": "fixed", "option": 0}},
        ],
        network={"kind": "complete"},
        menus={"kind": "public_goods", "endowment": 10, "step": 5, "r": 2.4},
        backends={"script": {"kind": "replay", "replies": ["I share.", "Everyone should gain.", "A", "A", "A"]}},
        cache={"enabled": False},
    )
    folder = RunFolder(play_scenario(scenario, tmp_path / "run").path)
    calls = [json.loads(line) for line in (folder.path / "transcripts.jsonl").read_text().splitlines()]
    goal_prompt = calls[1]["messages"][-1]["content"]
    assert "groups of 3 fictional participants" in goal_prompt and "multiplied by 2.40" in goal_prompt
    rows = folder.decisions().query("group == 'llm'").sort_values("round")
    lines = {0: "put in 0 coins — you keep 10 and get back 0 from your own contribution (10 in all); each of the 2 others gets 0",
             1: "put in 5 coins — you keep 5 and get back 4 from your own contribution (9 in all); each of the 2 others gets 4",
             2: "put in 10 coins — you keep 0 and get back 8 from your own contribution (8 in all); each of the 2 others gets 8"}
    decisions = [c for c in calls if c["phase"] == "decision"]
    for call, (_, row) in zip(decisions, rows.iterrows()):
        shown = [int(x) for x in row["shown_order"].split(",")]
        text = call["messages"][-1]["content"]
        assert [f"{letter}: {lines[j]}" in text for letter, j in zip("ABC", shown)] == [True] * 3
        assert row["choice"] == shown[0] and row["chosen_position"] == 0  # "A" maps back to the option shown first
    assert "your neighbours put in 0 of 10 coins on average" in decisions[1]["messages"][-1]["content"]


def test_an_interrupted_public_goods_run_resumes_to_the_same_tables(tmp_path) -> None:
    from hvae.simulation.runner import RunInterrupted, resume_run

    overrides = ["rounds=10", "size=36", "network={kind: grid, rows: 6, cols: 6, periodic: true}", "dynamics.every=3"]
    full = play_scenario(load_scenario("public_goods", overrides), tmp_path / "full").path

    def stop(model) -> None:
        if model.round == 5:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(load_scenario("public_goods", overrides), tmp_path / "run", on_round=stop)
    resume_run(tmp_path / "run")
    for name in ("decisions", "rounds", "agents", "value_changes"):
        pd.testing.assert_frame_equal(RunFolder(full).frame(name), RunFolder(tmp_path / "run").frame(name), obj=name)
    changed = RunFolder(full).frame("value_changes")["round"]
    assert changed.min() < 5 < changed.max()  # the dynamics changed values on both sides of the stop


@pytest.mark.parametrize("skip_some", [False, True])
def test_histories_hold_the_mean_over_partners_of_what_each_gave_kept_and_how_generous(skip_some) -> None:
    """The payoffs derive the partners' mean generosity from what they gave (an affine map per menu);
    it must equal the mean of each partner's own generosity, computed here pair by pair."""
    from hvae.agents.svo import option_generosity
    from hvae.simulation.game import decomposed_payoffs
    from hvae.simulation.menus import slider_schedule
    from hvae.simulation.state import PopulationState

    rng = np.random.default_rng(3)
    n, menu = 40, slider_schedule(secondary=False).menus[1]
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.15])
    choice = rng.integers(0, len(menu.options), n)
    if skip_some:
        choice[rng.random(n) < 0.2] = -1
    state = PopulationState.empty(n, 1)
    outcome = decomposed_payoffs(menu, pairs, choice, n)
    state.remember(pairs, choice, outcome, 0, outcome["received"])
    generosity = option_generosity(menu.options)
    for agent in range(n):
        partners = [v if u == agent else u for u, v in pairs if agent in (u, v) and choice[u] >= 0 and choice[v] >= 0]
        if not partners:
            assert np.isnan(state.hist_given[agent, 0])
            continue
        assert state.hist_given[agent, 0] == pytest.approx(np.mean([menu.options[choice[p], 1] for p in partners]), abs=1e-12)
        assert state.hist_kept[agent, 0] == pytest.approx(np.mean([menu.options[choice[p], 0] for p in partners]), abs=1e-12)
        assert state.hist_generosity[agent, 0] == pytest.approx(np.mean([generosity[choice[p]] for p in partners]), abs=1e-12)
