"""Hostile scenarios and ``--set`` values: a valid run, or one line and exit 2 (issue 20, item 7).

Each listed attack of the review is a case of its own (``ATTACKS``); then hypothesis, with a fixed
seed and a bounded number of examples, throws values from a hostile pool (huge, tiny, negative,
non-finite, 5,000-digit, wrong types, deep nesting) at the scenario's paths through ``--set`` and
asserts the contract of the command line: either the scenario is valid (and, when it is small, it
runs to a finished status), or the command prints exactly one ``hvae: error: ...`` line and exits
with 2 — never an internal error, a traceback or a hang. The CLI is driven in-process with click's
``CliRunner`` to keep it fast.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import BASE_SCENARIO
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from hvae.cli.main import cli as hvae_cli
from hvae.files.status import FINISHED
from hvae.agents.limits import MAX_AGENTS, MAX_YAML_DEPTH

SMALL = {**copy.deepcopy(BASE_SCENARIO), "rounds": 2,
         "population": [{"name": "a", "count": 3, "value": "prosocial", "decider": "oracle"},
                        {"name": "b", "count": 3, "value": "competitive", "decider": "random"}],
         "network": {"kind": "ring_lattice", "k": 2}}


def invoke(*args: str):
    result = CliRunner().invoke(hvae_cli, list(args), catch_exceptions=True)
    return result


def stderr_of(result) -> str:
    try:
        return result.stderr
    except ValueError:  # click < 8.2 mixes the streams
        return result.output


def assert_one_line_exit_2(result, fragment: str = "") -> None:
    err = stderr_of(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvae: error: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert fragment in lines[0], lines[0]


def write(tmp_path: Path, data: dict | str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


ATTACKS = {
    "seed -1": (["--set", "seed=-1"], "seed"),
    "seed of 5,000 digits": (["--set", "seed=" + "9" * 5000], "seed"),
    "count 1e12": (["--set", "population.0.count=1e12"], "count"),
    "dictator endowment 1e12": (["--set", "menus={kind: dictator, endowment: 1e12, step: 1}"], "endowment"),
    "public goods step 1e-300": (["--set", "menus={kind: public_goods, endowment: 10, step: 1e-300, eta: 0.5}"], "options"),
    "menu amounts 1e308": (["--set", "menus={kind: custom, items: [[[1e308, 1], [1, 1e308]]]}"], "amount"),
    "a complete network of 10,000": (["--set", "population.0.count=9997", "--set", "network={kind: complete}"], "edges"),
    "rounds 1e9": (["--set", "rounds=1000000000"], "rounds"),
    "a ring menu of 10,000 × 1,000 options": (["--set", "menus={kind: ring, items: 10000, options: 1000}"], "items × options"),
    "oracle beta 1e308": (["--set", "population.0.decider={kind: oracle, beta: 1e308}"], "beta"),
    "a --set value nested too deep": (["--set", "history=" + "[" * 5000 + "]" * 5000], "--set"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_listed_attacks_are_one_line_exit_2(tmp_path, name: str) -> None:
    args, fragment = ATTACKS[name]
    assert_one_line_exit_2(invoke("validate", str(write(tmp_path, SMALL)), *args), fragment)


def test_yaml_nested_50000_deep_is_one_line(tmp_path) -> None:
    text = "name: deep\nrounds: 2\nextra: " + "[" * 50_000 + "]" * 50_000 + "\n"
    assert_one_line_exit_2(invoke("validate", str(write(tmp_path, text))), f"more than {MAX_YAML_DEPTH} levels")


def test_yaml_at_the_depth_limit_is_read(tmp_path) -> None:
    from hvae.scenarios.loader import read_yaml

    depth = MAX_YAML_DEPTH - 1  # the top mapping is one level
    data, _ = read_yaml(write(tmp_path, "x: " + "[" * depth + "]" * depth + "\n"))
    nested, levels = data["x"], 1
    while nested:
        nested, levels = nested[0], levels + 1
    assert levels == depth


def test_duplicate_yaml_keys_are_refused_with_their_line(tmp_path) -> None:
    text = yaml.safe_dump(SMALL, sort_keys=False) + "rounds: 5\n"
    line = text.count("\n")  # the duplicate is the last line
    assert_one_line_exit_2(invoke("validate", str(write(tmp_path, text))), f":{line}: duplicate key 'rounds'")


def test_network_file_with_mixed_node_ids_runs_or_is_one_line(tmp_path) -> None:
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1\n1 two\ntwo 3\n3 4\n4 5\n5 0\n")  # numbers and a name: 6 nodes
    data = {**SMALL, "network": {"kind": "file", "path": str(edges)}}
    result = invoke("run", str(write(tmp_path, data)), "--out", str(tmp_path / "run"), "--quiet", "--no-report")
    assert result.exit_code == 0, stderr_of(result)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] in FINISHED


# ---------------------------------------------------------------------------------- the fuzz

#: Scenario paths, each with plausible values (drawn twice as often as hostile ones, so that many
#: examples are valid and run).
PATHS: dict[str, list[str]] = {
    "seed": ["0", "1", "12345"], "rounds": ["1", "2", "3"], "size": ["6"],
    "population.0.count": ["2", "3", "5"], "population.1.count": ["1", "4"], "population.0.value": ["prosocial", "-30", "90"],
    "population.0.decider": ["oracle", "random", "{kind: fixed, option: 0}", "{kind: reciprocal, memory: 2}"],
    "population.1.decider.beta": ["0.5", "2"], "network": ["{kind: complete}", "{kind: watts_strogatz, k: 2, p: 0.5}"],
    "network.k": ["2", "4"], "menus": ["{kind: dictator, endowment: 10, step: 5}", "{kind: ring, items: 4}",
                                      "{kind: public_goods, endowment: 4, step: 2, eta: 0.5}", "{kind: donation, b: 3, c: 1}"],
    "menus.kind": ["slider", "ring", "dictator"], "history.length": ["0", "3"], "output.flush_every": ["1", "2"],
    "dynamics.rule": ["imitation", "moran", "influence"], "dynamics.strength": ["0.5", "5"], "dynamics.every": ["1", "2"],
    "matching": ["random", "all_edges"], "name": ["fuzz", "x.y-z"], "backend_errors.min_valid_share": ["0", "0.9"],
    "nothing.here": ["1"],
}
HOSTILE = ["-1", "0", "2.5", "1e12", "1e308", "-1e308", "1e-300", ".nan", ".inf", "-.inf", "9" * 5000, "9" * 30,
           "100001", "1e400", "abc", "", "null", "[]", "{}", "[1, 2]", "true", "[" * 80 + "]" * 80, "'x: y'",
           "{kind: grid, rows: 2, cols: 3}", "{kind: dictator, endowment: 1e12, step: 1e-3}", "{kind: ring, items: 100000000}",
           "{kind: public_goods, step: 1e-300, r: 2}", "{kind: barabasi_albert, m: 1e12}", "{kind: erdos_renyi, p: 1e-300}",
           "{kind: fixed, option: 1e12}", "{kind: reciprocal, memory: 1e12}", "{kind: custom, items: [[[1e308, 1], [1, 1]]]}"]


def _override(path: str) -> st.SearchStrategy[str]:
    plausible = st.sampled_from(PATHS[path])
    return st.one_of(plausible, plausible, st.sampled_from(HOSTILE)).map(lambda value: f"{path}={value}")


overrides = st.lists(st.sampled_from(sorted(PATHS)).flatmap(_override), min_size=1, max_size=3)


@seed(20)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sets=overrides)
def test_fuzz_set_paths_give_a_valid_scenario_or_one_line(tmp_path, sets: list[str]) -> None:
    path = write(tmp_path, SMALL, "fuzz.yaml")
    args = [arg for item in sets for arg in ("--set", item)]
    result = invoke("validate", str(path), *args)
    if result.exit_code != 0:
        assert_one_line_exit_2(result)
        return
    # valid: when it is small enough for a test, it runs to a finished folder
    from hvae.scenarios.loader import load_scenario

    scenario = load_scenario(path, sets)
    assert scenario.n_agents <= MAX_AGENTS
    if scenario.n_agents * scenario.rounds <= 400 and not scenario.uses_llm:
        out = tmp_path / f"run-{abs(hash(tuple(sets)))}"
        ran = invoke("run", str(path), *args, "--out", str(out), "--quiet", "--no-report")
        assert ran.exit_code == 0, (sets, stderr_of(ran))
        assert json.loads((out / "summary.json").read_text())["status"] in FINISHED


@pytest.mark.parametrize(("file", "content", "fragment"), [
    ("summary.json", "{not json", "summary.json: not a readable JSON file"),
    ("summary.json", "[1, 2]", "summary.json: expected a JSON object"),
    ("summary.json", "[" * 100_000, "summary.json: not a readable JSON file"),
    ("decisions.parquet", "PAR1 garbage", "decisions.parquet is not a readable parquet table"),
])
def test_a_garbage_run_file_is_one_line(tmp_path, file: str, content: str, fragment: str) -> None:
    run = tmp_path / "run"
    assert invoke("run", str(write(tmp_path, SMALL)), "--out", str(run), "--quiet", "--no-report").exit_code == 0
    (run / file).write_text(content)
    assert_one_line_exit_2(invoke("summary", str(run)), fragment)
    if file == "summary.json":
        assert_one_line_exit_2(invoke("run", "--resume", str(run)), fragment)
