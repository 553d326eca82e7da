"""The engine's scale path: arrays-built networks, sampled decision records, vectorised bookkeeping.

The million-agent budget itself is a benchmark (benchmarks/bench_million.py); these tests check
that each piece the scale path swaps in gives what the ordinary path gives: the same graph
families, the same rows for the sampled agents, counts that add up to every decision, and the
same figures whatever sort or lookup computed them.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from hvae.agents.deciders import Decider, DecisionRequest, Decisions
from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import load_scenario, validate_data
from hvae.simulation.model import HvaeModel
from hvae.simulation.network import NetworkError, build_edges
from hvae.simulation.records import grouped_gini
from hvae.simulation.runner import play_scenario


def _scenario(**changes):
    data = {
        "name": "scale",
        "seed": 5,
        "rounds": 7,
        "population": [
            {"name": "pro", "count": 30, "value": "prosocial", "decider": {"kind": "oracle", "beta": 0.2}},
            {"name": "ind", "count": 30, "value": "individualistic", "decider": "random"},
        ],
        "network": {"kind": "watts_strogatz", "k": 4, "p": 0.2},
        "matching": "all_edges",
        "dynamics": {"rule": "imitation", "every": 3},
        "output": {"flush_every": 2},
    }
    data.update(changes)
    return validate_data(data, "<scale>")


# ------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize(("n", "k"), [(5, 2), (12, 4), (101, 6)])
def test_arrays_ring_lattice_is_networkx_ring_lattice(n: int, k: int) -> None:
    edges = build_edges({"kind": "ring_lattice", "k": k}, n, seed=0)
    reference = nx.watts_strogatz_graph(n, k, 0.0)
    assert {tuple(e) for e in edges.tolist()} == {(min(u, v), max(u, v)) for u, v in reference.edges}
    assert len(edges) == n * k // 2


def test_arrays_watts_strogatz_is_simple_rewires_a_share_p_and_keeps_the_edge_count() -> None:
    n, k, p = 20_000, 4, 0.3
    edges = build_edges({"kind": "watts_strogatz", "k": k, "p": p}, n, seed=3)
    assert (edges[:, 0] < edges[:, 1]).all()  # no self-loop, rows as (min, max)
    assert len(np.unique(edges[:, 0] * n + edges[:, 1])) == len(edges) == n * k // 2  # no duplicate, none dropped
    lattice = {tuple(e) for e in build_edges({"kind": "ring_lattice", "k": k}, n, 0).tolist()}
    rewired = sum(tuple(e) not in lattice for e in edges.tolist())
    # a rewired edge lands on a lattice edge with probability ~k/n: the share is p within 5 binomial SDs
    sd = np.sqrt(p * (1 - p) / len(edges))
    assert abs(rewired / len(edges) - p) < 5 * sd
    same = build_edges({"kind": "watts_strogatz", "k": k, "p": p}, n, seed=3)
    assert np.array_equal(edges, same)


def test_arrays_builder_refuses_a_bad_k_and_a_family_it_does_not_have() -> None:
    with pytest.raises(NetworkError, match="even number"):
        build_edges({"kind": "ring_lattice", "k": 3}, 10, 0)
    with pytest.raises(NetworkError, match="no arrays builder"):
        build_edges({"kind": "barabasi_albert", "k": 2, "m": 1}, 10, 0)


def test_an_arrays_network_builds_mesas_space_and_agents_only_when_asked() -> None:
    model = HvaeModel(_scenario(network={"kind": "watts_strogatz", "k": 4, "p": 0.2, "builder": "arrays"}))
    model.run(4)  # rounds and dynamics never need the Mesa layer
    assert model._space is None and len(model._all_agents) == 0
    assert len(model.agents) == model.n_agents == 60  # asking builds it
    graph_edges = {(min(u, v), max(u, v)) for u, v in model.graph.edges}
    assert graph_edges == {tuple(e) for e in model.edges.tolist()}
    agent = model.agent_by_id(7)
    assert agent.agent_id == 7 and agent.value_angle == model.state.theta[7]
    assert {p.agent_id for p in agent.partners} == set(model.neighbours.of(7).tolist())


# ------------------------------------------------------------------------------------ records
def test_sampled_records_are_the_full_runs_rows_of_the_sampled_agents(tmp_path) -> None:
    full = RunFolder(play_scenario(_scenario(), tmp_path / "full").path)
    sampled_run = play_scenario(_scenario(records={"decisions": "sample", "sample_agents": 9}), tmp_path / "sample")
    sampled = RunFolder(sampled_run.path)
    rows = sampled.decisions()
    agents = sorted(set(rows["agent_id"]))
    assert len(agents) == 9
    expected = full.decisions()
    expected = expected[expected["agent_id"].isin(agents)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), expected)  # sampling moves no draw
    # every other table counts every agent, exactly as the full run does
    pd.testing.assert_frame_equal(sampled.rounds(), full.rounds())
    assert sampled_run.summary["n_decisions"] == len(full.decisions())
    assert sampled_run.summary["n_decision_rows"] == len(rows)


@pytest.mark.parametrize("count", [30, 300])  # few decisions a round: counted by sorting; many: by bincount
def test_choice_counts_count_every_decision_by_group_option_position_and_validity(tmp_path, count: int) -> None:
    population = [
        {"name": "pro", "count": count, "value": "prosocial", "decider": {"kind": "oracle", "beta": 0.2}},
        {"name": "ind", "count": count, "value": "individualistic", "decider": "random"},
    ]
    full = RunFolder(play_scenario(_scenario(population=population), tmp_path / "full").path).decisions()
    sampled = _scenario(population=population, records={"decisions": "sample", "sample_agents": 5})
    folder = play_scenario(sampled, tmp_path / "sample").path
    counts = pd.read_parquet(folder / "choice_counts.parquet")
    keys = ["round", "group", "menu_id", "choice", "chosen_position", "valid"]
    expected = full.groupby(keys, observed=True).size().rename("n").reset_index()
    got = counts.astype({"group": str, "menu_id": str}).sort_values(keys).reset_index(drop=True)
    expected = expected.astype({"group": str, "menu_id": str}).sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[keys + ["n"]], expected[keys + ["n"]], check_dtype=False)


def test_a_full_record_run_writes_no_choice_counts(tmp_path) -> None:
    folder = play_scenario(_scenario(rounds=2), tmp_path / "run").path
    assert not (folder / "choice_counts.parquet").exists()


class _Shuffler(Decider):
    """Random choices shown in random orders; some displays unrecorded (None), some canonical."""

    name = kind = "shuffler"

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        k = len(request.options)
        orders = [rng.permutation(k) for _ in range(request.n)]
        texts = [None if i % 5 == 0 else ",".join(map(str, o)) for i, o in enumerate(orders)]
        return Decisions(choice=rng.integers(0, k, request.n), valid=np.ones(request.n, bool), metadata={"shown_order": texts})


def test_chosen_position_is_where_the_choice_stood_in_each_recorded_display() -> None:
    scenario = _scenario(rounds=3)
    model = HvaeModel(scenario, deciders={"pro": _Shuffler(), "ind": _Shuffler()})
    model.run()
    rows = model.log.decision_rows().to_pandas()
    assert rows["shown_order"].isna().any() and rows["shown_order"].notna().any()
    for order_text, choice, position, shown, menu_id in zip(
        rows["shown_order"], rows["choice"], rows["chosen_position"], rows["options_shown"], rows["menu_id"]
    ):
        menu = model.schedule.menu_by_id[menu_id]
        if not isinstance(order_text, str):  # not recorded: the canonical order
            assert position == choice and shown == menu.describe()
        else:
            order = np.array(order_text.split(","), dtype=int)
            assert position == int(np.flatnonzero(order == choice)[0])
            assert shown == menu.describe(order)


# ------------------------------------------------------------------------------------ figures
def test_gini_of_tied_values_is_the_same_whichever_sort_found_the_order() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, 5000).astype(float) * 0.1  # many ties
    key = rng.integers(0, 3, 5000)
    stable = grouped_gini(values, key, 3, np.argsort(values, kind="stable"))
    assert np.array_equal(grouped_gini(values, key, 3), stable)  # bit for bit
    assert np.array_equal(grouped_gini(values, key, 3, np.argsort(-values)[::-1]), stable)


def test_value_changes_are_one_row_per_change_with_categories(tmp_path) -> None:
    folder = play_scenario(_scenario(rounds=9), tmp_path / "run").path
    changes = pd.read_parquet(folder / "value_changes.parquet")
    agents = pd.read_parquet(folder / "agents.parquet")
    assert len(changes) == agents["n_value_changes"].sum() > 0
    assert set(changes["round"]) <= {2, 5, 8} and set(changes["rule"]) == {"imitation"}
    assert set(changes["new_category"]) <= {"prosocial", "individualistic"}
    assert (changes["old_angle"] != changes["new_angle"]).all()


# ------------------------------------------------------------------------------------ the example
@pytest.mark.slow
def test_the_million_agent_example_runs_small_with_a_sample(tmp_path) -> None:
    scenario = load_scenario("surrogate_million", ["size=2000", "rounds=6", "records.sample_agents=50"])
    assert scenario.network.builder == "arrays" and scenario.records.decisions == "sample"
    result = play_scenario(scenario, tmp_path / "run")
    run = RunFolder(result.path)
    assert result.summary["status"] == "complete" and result.summary["n_decisions"] == 2000 * 6
    assert run.decisions()["agent_id"].nunique() == 50
    counts = pd.read_parquet(result.path / "choice_counts.parquet")
    assert counts["n"].sum() == 2000 * 6
    shown_first = counts[counts["valid"] & (counts["chosen_position"] == 0)]["n"].sum() / counts[counts["valid"]]["n"].sum()
    assert 1 / 9 < shown_first < 0.5  # the policy's position bonus (b > 0) lifts the first option above 1/9
    # the report is the report of any run, and says whose decisions it kept
    from hvae.analysis.report import write_report

    html = write_report([result.path], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Decisions of a sample." in html and "every decision of 50 agents" in html


def test_a_full_record_report_has_no_sample_note(tmp_path) -> None:
    from hvae.analysis.report import write_report

    folder = play_scenario(_scenario(rounds=3), tmp_path / "run").path
    assert "Decisions of a sample." not in write_report([folder], tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_sampled_run_resumes_to_the_tables_of_an_uninterrupted_one(tmp_path) -> None:
    from hvae.simulation.runner import RunInterrupted, resume_run

    scenario = _scenario(rounds=8, records={"decisions": "sample", "sample_agents": 7})
    whole = play_scenario(scenario, tmp_path / "whole").path

    def interrupt(model) -> None:
        if model.round == 5:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(scenario, tmp_path / "run", on_round=interrupt)
    resume_run(tmp_path / "run")
    for table in ("decisions", "rounds", "choice_counts", "value_changes", "agents"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "run" / f"{table}.parquet"), pd.read_parquet(whole / f"{table}.parquet")
        )
