"""The CLI driven as a user drives it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import assert_user_error

from hvae.agents import slider_checks, svo


@pytest.mark.parametrize(
    ("choices", "angle", "category"),
    [("AIAAII", 61.39, "altruistic"), ("IAIIAA", -16.26, "competitive"), ("EEEEEE", 22.93, "prosocial")],
)
def test_slider_json(cli, choices: str, angle: float, category: str) -> None:
    result = cli("slider", "--choices", choices, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["angle"] == pytest.approx(angle, abs=0.005)
    assert payload["category"] == category
    assert payload["transitive"] is slider_checks.is_transitive(svo.parse_choices(choices))


def test_slider_text_and_intransitive(cli) -> None:
    result = cli("slider", "--choices", "aaaaaa")
    assert result.returncode == 0
    assert "transitive: False" in result.stdout


@pytest.mark.parametrize(("choices", "fragment"), [("AIAAI", "expected 6 letters"), ("AIAAIZ", "letters must be A-I"), ("", "expected 6 letters")])
def test_slider_bad_choices(cli, choices: str, fragment: str) -> None:
    assert_user_error(cli("slider", "--choices", choices), fragment)


@pytest.mark.slow
def test_run_writes_a_complete_folder(cli, tmp_path) -> None:
    out = tmp_path / "run"
    result = cli("run", "oracle_population", "--out", str(out), "--set", "rounds=6", "--seed", "5")
    assert result.returncode == 0, result.stderr
    assert "decision VR" in result.stdout and "chance" in result.stdout and "ceiling" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["seed"] == 5 and summary["rounds_completed"] == 6
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert len(decisions) == summary["n_decisions"] == 6 * 32
    assert "rounds: 6" in (out / "scenario.yaml").read_text()
    for name in ("agents", "rounds", "menus", "network"):
        assert len(pd.read_parquet(out / f"{name}.parquet")) > 0


@pytest.mark.slow
def test_run_refuses_a_used_folder_and_keeps_it(cli, tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert_user_error(cli("run", "oracle_population", "--out", str(out)), "already exists")
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "missing.yaml"], "no such file"),
        (["run", "oracle_population", "--set", "population.0.count=-2"], "population.0.count"),
        (["run", "oracle_population", "--set", "population.0.value=altruist"], "unknown value 'altruist'"),
        (["run", "oracle_population", "--set", "population.0.value=100"], "outside [-90, 90]"),
        (["run", "oracle_population", "--set", "network.kind=moebius"], "moebius"),
        (["run", "oracle_population", "--set", "menus.kind=tapas"], "tapas"),
        (["run", "oracle_population", "--set", "matching=speed_dating"], "matching"),
        (["run", "oracle_population", "--set", "network.k=40"], "network.k must be an even number"),
        (["run", "oracle_population", "--set", "nonsense.path=1"], "nonsense: unknown key"),
        (["run", "oracle_population", "--set", "population.9.count=1"], "index 9 out of range"),
        (["run", "oracle_population", "--seed", "many"], "'many' is not a valid integer"),
        (["run", "oracle_population", "--bogus"], "No such option"),
        (["validate", "oracle_population", "--set", "network={kind: grid, rows: 3, cols: 3}"], "has 9 nodes but the population has 32"),
        (["run", "oracle_population", "--set", "population.0.decider={kind: fixed, option: 12}"], "fixed option 12"),
        (["run", "oracle_population", "--set", "network={kind: erdos_renyi, p: 0.0001}"], "no edges"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_line_exit_2_and_no_folder(cli, tmp_path, args, fragment) -> None:
    result = cli(*args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_validate_and_scenarios(cli) -> None:
    result = cli("validate", "ring_continuous")
    assert result.returncode == 0 and "ok" in result.stdout
    listing = cli("scenarios")
    assert listing.returncode == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert {"oracle_population", "ring_continuous"} <= set(names)


@pytest.mark.slow
def test_validate_bad_yaml_names_the_line(cli, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nrounds: 4\npopulation:\n  - {name: a, count: 2, value: prosocial, decider: oracle\n")
    result = cli("validate", str(path))
    assert_user_error(result, "bad.yaml:")
    assert "YAML syntax error" in result.stderr
