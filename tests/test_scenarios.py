"""Scenario files: every shipped scenario runs end to end; bad input is one clear line."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import ScenarioError, apply_overrides, load_scenario, shipped_scenarios
from hvae.simulation.runner import play_scenario

# Small sizes for the end-to-end runs of shipped scenarios (keys that a scenario lacks are skipped).
SMALL = {"rounds": 12}


def small_overrides(path) -> list[str]:
    data = yaml.safe_load(path.read_text())
    overrides = [f"{key}={value}" for key, value in SMALL.items() if key in data]
    if any(isinstance(g.get("decider"), dict) and g["decider"].get("kind") == "llm" for g in data["population"]):
        overrides.append("rounds=2")  # LLM calls cost seconds each on a CPU
    if (data.get("communication") or {}).get("turns"):
        overrides.append("communication.max_tokens=8")  # talk: short messages are enough to test the plumbing
    if data.get("size") and (data.get("network") or {}).get("kind") == "grid":
        overrides += ["size=16", "network.rows=4", "network.cols=4"]  # a grid must hold the population exactly
    elif data.get("size"):
        overrides.append(f"size={min(int(data['size']), 20)}")
    else:
        for index, group in enumerate(data["population"]):
            if "count" in group:
                overrides.append(f"population.{index}.count={min(int(group['count']), 3)}")
    return overrides


# sweep files (they name a base ``scenario:``) are run by tests/test_sweep.py and tests/test_games.py
SHIPPED = [name for name, path in shipped_scenarios().items() if "scenario" not in yaml.safe_load(path.read_text())]


def test_shipped_scenarios_exist() -> None:
    assert {"oracle_population", "ring_continuous", "validity_demo"} <= set(shipped_scenarios())


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_runs_end_to_end(name: str, tmp_path) -> None:
    from contextlib import ExitStack

    from hvae.agents.llm.oracle_server import OracleServer

    path = shipped_scenarios()[name]
    overrides = small_overrides(path)
    stack = ExitStack()
    if "oracle_server" in (yaml.safe_load(path.read_text()).get("backends") or {}):
        # the value-rational oracle server (hvae serve-oracle) on a free port, as a user would start it
        server = stack.enter_context(OracleServer())
        overrides.append(f"backends.oracle_server.base_url={server.base_url}")
    with stack:
        run = _run_shipped(path, overrides, tmp_path)
    assert run.status == "complete" and run.summary["n_decisions"] > 0


def _run_shipped(path, overrides: list[str], tmp_path) -> RunFolder:
    """Run a shipped scenario small, check its tables, rerun it from its resolved scenario.yaml."""
    scenario = load_scenario(path, overrides)
    result = play_scenario(scenario, tmp_path / "run")
    run = RunFolder(result.path)
    decisions = run.decisions()
    assert len(decisions) == run.summary["n_decisions"] > 0
    assert set(decisions["round"]) == set(range(scenario.rounds))
    assert (decisions["choice"] >= 0).all()
    rounds = run.rounds()
    assert set(rounds["grouping"]) == {"all", "group", "category"}
    assert not (result.path / "parts").exists()
    # the resolved scenario reproduces the run (LLM replies come back from the response cache)
    again = play_scenario(load_scenario(result.path / "scenario.yaml"), tmp_path / "again")
    varying = ["latency_s", "cache_hit"]
    pd.testing.assert_frame_equal(decisions.drop(columns=varying), RunFolder(again.path).decisions().drop(columns=varying))
    if scenario.uses_llm:
        assert RunFolder(again.path).summary["llm_calls"] == 0
    return run


def write(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: t
rounds: 3
population:
  - {name: a, count: 2, value: altruistic, decider: oracle}
  - {name: b, count: 2, value: competitive, decider: random}
network: {kind: complete}
"""


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("name: t\nrounds: [3\n", [], r"s\.yaml:\d+:\d+: YAML syntax error"),
        ("name: t\n  rounds: 3\n", [], r"s\.yaml:2:9: YAML syntax error: mapping values are not allowed here"),
        (GOOD.replace("rounds: 3", "rounds: 3\ncolour: red"), [], r"s\.yaml:3: colour: unknown key"),
        (GOOD.replace("rounds: 3", "rounds: three"), [], r"s\.yaml:2: rounds: .*integer"),
        (GOOD.replace("count: 2, value: altruistic", "count: -1, value: altruistic"), [], r"s\.yaml:4: population\.0\.count: .*greater than 0"),
        (GOOD.replace("count: 2, value: altruistic", "count: 0, value: altruistic"), [], r"population\.0\.count: .*greater than 0"),
        (GOOD.replace("altruistic", "altruist"), [], r"s\.yaml:4: population\.0\.value: unknown value 'altruist'"),
        (GOOD.replace("value: altruistic", "value: 120"), [], r"population\.0\.value: angle 120 is outside \[-90, 90\]"),
        (GOOD.replace("{kind: complete}", "{kind: hypercube}"), [], r"s\.yaml:6: network: .*hypercube"),
        (GOOD + "menus: {kind: buffet}\n", [], r"menus: .*buffet"),
        (GOOD + "matching: speed_dating\n", [], r"s\.yaml:7: matching: .*'random' or 'all_edges'"),
        (GOOD, ["population.5.count=3"], r"--set population\.5\.count: index 5 out of range"),
        (GOOD, ["rounds"], r"--set 'rounds': expected key\.path=value"),
        (GOOD, ["rounds.deep=3"], r"--set rounds\.deep: 'rounds' is a value"),
        (GOOD, ["network.colour=red"], r"network\.colour: unknown key"),
        ("", [], r"s\.yaml: the file is empty"),
        ("- 1\n- 2\n", [], r"a scenario must be a mapping"),
        (GOOD.replace("decider: oracle", "decider: psychic"), [], r"population\.0\.decider: .*psychic"),
        (GOOD.replace("count: 2, value: altruistic", "share: 0.5, value: altruistic"), [], r"need the population 'size'"),
    ],
)
def test_bad_scenarios_give_one_line(tmp_path, text, overrides, expected) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(expected, message), message


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario("does/not/exist.yaml")


def test_overrides_apply_and_parse_yaml_values() -> None:
    data = apply_overrides({"a": {"b": 1}, "l": [{"x": 1}]}, ["a.b=2.5", "l.0.x=[1, 2]", "a.c=hello"])
    assert data == {"a": {"b": 2.5, "c": "hello"}, "l": [{"x": [1, 2]}]}


def test_shares_become_counts() -> None:
    from conftest import make_scenario

    scenario = make_scenario(
        size=10,
        population=[
            {"name": "a", "share": 0.5, "value": 0, "decider": "oracle"},
            {"name": "b", "share": 0.25, "value": 0, "decider": "oracle"},
            {"name": "c", "share": 0.25, "value": 0, "decider": "oracle"},
        ],
    )
    counts = scenario.group_counts()
    assert sum(counts.values()) == 10 and counts["a"] == 5
