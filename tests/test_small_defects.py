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


def test_definitions_state_the_revealed_angle_range_the_code_uses() -> None:
    from hvae.agents.revealed import ANGLE_MAX, ANGLE_MIN

    readme = (Path(__file__).parents[1] / "docs" / "definitions.md").read_text(encoding="utf-8")
    bullet = re.search(r"- \*\*Revealed angle\*\*.*?(?=\n- \*\*|\n## |\Z)", readme, re.S).group(0)
    bullet = " ".join(bullet.split())
    assert f"[−{abs(ANGLE_MIN):g}°, {ANGLE_MAX:g}°]" in bullet
    assert "θ on the whole circle" not in bullet
    assert math.isclose(ANGLE_MAX - ANGLE_MIN, 180.0)


# ---------------------------------------------------------------------------------- issue 20, item 10
def _scenario_file(tmp_path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text if text.startswith("name:") else f"name: s\nseed: 1\n{text}")
    return path


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_network_file_that_is_not_a_file_says_what_it_is(tmp_path, kind) -> None:
    import os

    from hvae.scenarios.loader import ScenarioError, load_scenario

    target = tmp_path / "edges"
    expected = {"fifo": "is a FIFO", "folder": "is a folder", "device": "is a device"}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        target.symlink_to("/dev/null")
    path = _scenario_file(tmp_path, "population: [{name: a, count: 4, value: prosocial, decider: oracle}]\n"
                          f"network: {{kind: file, path: {target}}}\nrounds: 2\n")
    with pytest.raises(ScenarioError, match=expected):
        HvaeModel(load_scenario(path))


@pytest.mark.slow
def test_resume_of_an_evaluation_folder_says_so(tmp_path, cli) -> None:
    import json

    from conftest import assert_user_error

    (tmp_path / "summary.json").write_text(json.dumps({"kind": "evaluation", "status": "complete"}))
    assert_user_error(cli("run", "--resume", str(tmp_path)), "is an evaluation folder")


def test_duplicate_yaml_keys_are_refused_with_their_line(tmp_path) -> None:
    from hvae.scenarios.loader import ScenarioError, load_scenario

    path = _scenario_file(tmp_path, "rounds: 2\npopulation: [{name: a, count: 4, value: prosocial, decider: oracle}]\nrounds: 30\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml:5: duplicate key 'rounds'"):
        load_scenario(path)
    nested = _scenario_file(tmp_path, "population: [{name: a, count: 4, value: prosocial, decider: oracle, count: 9}]\n")
    with pytest.raises(ScenarioError, match="duplicate key 'count'"):
        load_scenario(nested)


def test_sweep_table_keeps_whole_numbers_integer_across_a_resume(tmp_path) -> None:
    import pandas as pd

    from hvae.experiments.sweep import load_sweep
    from hvae.experiments.sweep.results import SweepTable

    base = _scenario_file(tmp_path, "name: b\npopulation: [{name: a, count: 4, value: prosocial, decider: oracle}]\nrounds: 2\n")
    (tmp_path / "sweep.yaml").write_text(f"name: sw\nscenario: {base}\nseeds: [1, 2]\n")
    sweep = load_sweep(tmp_path / "sweep.yaml")
    out = tmp_path / "out"
    out.mkdir()
    first = SweepTable(sweep, out)
    first.set(sweep.runs[0], {"status": "complete", "rounds_completed": 2, "n_agents": 4, "n_decisions": 8, "gini": 0.25})
    first.write()  # the second run is still pending: its counts are missing
    again = SweepTable(sweep, out)  # a resumed sweep carries the complete row over
    again.set(sweep.runs[0], {**again.previous_rows()[sweep.runs[0].run_id], "skipped": True})
    again.write()
    csv = (out / "sweep.csv").read_text().splitlines()
    header, row = csv[0].split(","), csv[1].split(",")
    for column, text in (("rounds_completed", "2"), ("n_agents", "4"), ("n_decisions", "8"), ("seed", "1")):
        assert row[header.index(column)] == text, (column, row)
    frame = pd.read_parquet(out / "sweep.parquet")
    assert str(frame["rounds_completed"].dtype) == "Int64" and frame["gini"].dtype == float


def test_leaderboard_markdown_escapes_html(tmp_path) -> None:
    import pandas as pd

    from hvae.analysis.leaderboard import markdown

    board = pd.DataFrame([{"rank": 1, "model": "<script>alert(1)</script>\n| x", "overall_score": 0.5}])
    text = markdown(board)
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("\n| ") == 2  # header and one row: the newline in the name did not add a row


@pytest.mark.slow
def test_validate_counts_in_words(tmp_path, cli) -> None:
    path = _scenario_file(tmp_path, "population: [{name: a, count: 2, value: prosocial, decider: oracle}]\nrounds: 1\nnetwork: {kind: complete}\n")
    result = cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "2 agents in 1 group, 1 round," in result.stdout, result.stdout


def test_oracle_start_hint_only_when_nothing_listens() -> None:
    from llm_stub_server import StubServer

    from hvae.agents.llm.backends import OpenAIBackend
    from hvae.agents.llm.oracle_server import MODEL_NAME, start_hint

    with StubServer(default="http500") as stub:  # up, answering 500
        backends = {"o": OpenAIBackend(kind="openai", model=MODEL_NAME, base_url=stub.base_url)}
        assert start_hint(backends) is None
    assert start_hint(backends) is not None and "hvae serve-oracle --port" in start_hint(backends)  # now closed


# ---------------------------------------------------------------------------------- issue 20, item 9
def test_run_folder_parses_its_scenario_once(tmp_path, monkeypatch) -> None:
    import json

    import yaml

    from hvae.analysis import runfolder

    (tmp_path / "summary.json").write_text(json.dumps({"status": "complete"}))
    (tmp_path / "scenario.yaml").write_text("name: x\nrounds: 3\n")
    calls = []
    real = yaml.safe_load
    monkeypatch.setattr(runfolder.yaml, "safe_load", lambda text: calls.append(1) or real(text))
    run = runfolder.RunFolder(tmp_path)
    assert [run.scenario["rounds"] for _ in range(5)] == [3] * 5
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("menus", "fragment"),
    [
        ({"kind": "custom", "items": [[[i, 100 - i] for i in range(101)]]}, "at most 100"),
        ({"kind": "custom", "items": [[[1, 2], [2, 1]]] * 1001}, "at most 1000"),
    ],
)
def test_custom_menus_have_documented_size_limits(menus, fragment) -> None:
    from conftest import BASE_SCENARIO

    from hvae.scenarios.game_menus import MAX_CUSTOM_ITEMS, MAX_CUSTOM_OPTIONS
    from hvae.scenarios.loader import ScenarioError, validate_data

    assert (MAX_CUSTOM_ITEMS, MAX_CUSTOM_OPTIONS) == (1000, 100)
    with pytest.raises(ScenarioError, match=fragment):
        validate_data({**BASE_SCENARIO, "menus": menus}, "limits")
    at_limit = {"kind": "custom", "items": [[[i, 99 - i] for i in range(100)]] * 3}
    assert len(validate_data({**BASE_SCENARIO, "menus": at_limit}, "limits").menus.items[0]) == 100


def test_a_long_revealed_cell_breaks_before_its_interval_never_inside_it(tmp_path, capsys) -> None:
    # the terminal table breaks "bounded [a, b]" into "bounded" / "[a, b]"; the sanitiser applied to
    # every quoted cell once joined the two lines, and rich then wrapped inside the interval
    import pandas as pd

    from hvae.cli.tables import print_run_summary
    from hvae.experiments.runs import run_to_folder
    from hvae.scenarios.loader import validate_data

    data = {"name": "narrow", "seed": 3, "rounds": 6, "network": {"kind": "complete"},
            "population": [{"name": "competitive_oracles", "count": 2, "value": "competitive", "decider": "oracle"},
                           {"name": "altruistic_oracles", "count": 2, "value": "altruistic", "decider": "oracle"}]}
    run = run_to_folder(validate_data(data, "narrow"), tmp_path / "run")
    table = pd.read_parquet(run.path / "groups.parquet")
    assert set(table["revealed_identification"]) == {"set"}
    table["group"] = table["group"] + "_in_this_study"
    print_run_summary(run.path, table_data=table)
    lines = capsys.readouterr().out.splitlines()
    assert any(line.rstrip().endswith("bounded") for line in lines), lines
    intervals = [line for line in lines if "[-90.0," in line or ", 90.0]" in line]
    assert len(intervals) == 2 and all(re.search(r"\[-?\d+\.\d, -?\d+\.\d\]", line) for line in intervals), lines


def test_the_value_rationality_title_wraps_to_the_figure_width(tmp_path) -> None:
    # groups of fewer than 3 agents are named in the title with their interval's method; unwrapped,
    # that line made the saved figure 3,700 pixels wide with the panels a third of it
    import io

    import matplotlib.image as mpimg

    from hvae.analysis.dataset import Analysis
    from hvae.analysis.figure_tools import DPI
    from hvae.analysis.plots import fig_value_rationality
    from hvae.experiments.runs import run_in_memory
    from hvae.scenarios.loader import validate_data

    groups = [{"name": f"one_agent_group_number_{i}", "count": 1, "value": v, "decider": "random"}
              for i, v in enumerate(["altruistic", "prosocial", "individualistic", "competitive", 30, -30])]
    result = run_in_memory(validate_data({"name": "many_small", "seed": 1, "rounds": 6, "population": groups,
                                          "network": {"kind": "complete"}}, "small"))
    fig = fig_value_rationality(Analysis.of(result))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    width_in = mpimg.imread(io.BytesIO(buffer.getvalue())).shape[1] / DPI
    assert width_in <= fig.get_figwidth() + 0.5, (width_in, fig.get_figwidth())
