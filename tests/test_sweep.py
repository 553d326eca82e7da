"""Sweeps on dask.distributed: ``hvae sweep`` driven as a user drives it, plus the sweep file's rules.

The CLI tests start a local dask cluster each (a few seconds); the rest need no cluster.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import assert_user_error

from hvae.scenarios.loader import ScenarioError, load_scenario, shipped_scenarios
from hvae.experiments.sweep import expand, load_sweep, run_id, validate_runs

BASE = """\
name: tiny
seed: 1
rounds: 4
population:
  - {name: pro, count: 3, value: prosocial, decider: oracle}
  - {name: com, count: 3, value: competitive, decider: oracle}
network: {kind: complete}
"""


def write_sweep(folder: Path, body: str) -> Path:
    (folder / "tiny.yaml").write_text(BASE)
    path = folder / "sweep.yaml"
    path.write_text(body)
    return path


SWEEP_2x2 = """\
name: two_by_two
scenario: tiny.yaml
seeds: [1, 2]
grid:
  rounds: [3, 5]
  history.length: [2]
"""


def run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


# ------------------------------------------------------------------------------ the CLI end to end
@pytest.mark.slow
def test_sweep_runs_skips_and_redoes(cli, tmp_path) -> None:
    path = write_sweep(tmp_path, SWEEP_2x2)
    out = tmp_path / "out"
    result = cli("sweep", str(path), "--workers", "2", "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "4 runs (4 ran, 0 skipped, 0 failed)" in result.stdout
    folders = run_folders(out)
    table = pd.read_parquet(out / "sweep.parquet")
    assert sorted(Path(p).name for p in table["run_folder"]) == [p.name for p in folders]
    assert len(folders) == 4 and folders[0].name == "run-0000_rounds=3_history.length=2_seed=1"
    assert (table["status"] == "complete").all() and not table["skipped"].any()
    assert sorted(zip(table["rounds"], table["seed"])) == [(3, 1), (3, 2), (5, 1), (5, 2)]
    assert (table["rounds_completed"] == table["rounds"]).all()
    assert (table["n_decisions"] > 0).all() and table["error"].isna().all()
    for column in ("mean_payoff", "gini", "decision_vr", "decision_vr[pro]", "decision_vr[com]",
                   "mean_payoff[prosocial]", "mean_payoff[competitive]", "elapsed_s"):
        assert table[column].notna().all(), column
    assert table["decision_vr"].eq(1.0).all()  # oracles are value-rational
    assert len(pd.read_csv(out / "sweep.csv")) == 4
    for folder in folders:  # each folder is an ordinary run of the resolved scenario
        assert json.loads((folder / "summary.json").read_text())["status"] == "complete"
        assert yaml.safe_load((folder / "scenario.yaml").read_text())["history"]["length"] == 2

    # the same sweep again: nothing is run, no folder is touched, the table says skipped
    mtimes = {p.name: (p / "summary.json").stat().st_mtime_ns for p in folders}
    again = cli("sweep", str(path), "--out", str(out), timeout=120)
    assert again.returncode == 0, again.stderr
    assert "(0 ran, 4 skipped, 0 failed)" in again.stdout
    assert {p.name: (p / "summary.json").stat().st_mtime_ns for p in run_folders(out)} == mtimes
    table = pd.read_parquet(out / "sweep.parquet")
    assert table["skipped"].all() and (table["status"] == "complete").all()
    assert table["gini"].notna().all()

    # an unfinished run (killed before it could finish) is redone; the others are skipped
    unfinished = folders[1]
    summary = json.loads((unfinished / "summary.json").read_text())
    (unfinished / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    (unfinished / "leftover.txt").write_text("from the killed run")
    third = cli("sweep", str(path), "--out", str(out), "--workers", "1", timeout=120)
    assert third.returncode == 0, third.stderr
    assert "(1 ran, 3 skipped, 0 failed)" in third.stdout
    assert json.loads((unfinished / "summary.json").read_text())["status"] == "complete"
    assert not (unfinished / "leftover.txt").exists()
    table = pd.read_parquet(out / "sweep.parquet").set_index("run_id")
    assert not table.loc[unfinished.name, "skipped"] and table["skipped"].sum() == 3
    assert (table["status"] == "complete").all()
    for name, mtime in mtimes.items():
        if name != unfinished.name:
            assert (out / name / "summary.json").stat().st_mtime_ns == mtime


def test_bad_grid_value_fails_before_any_folder(cli, tmp_path) -> None:
    path = write_sweep(tmp_path, SWEEP_2x2.replace("rounds: [3, 5]", "rounds: [3, -5]"))
    out = tmp_path / "out"
    result = cli("sweep", str(path), "--out", str(out))
    assert_user_error(result, "sweep.yaml:5: grid: rounds=-5 does not fit the scenario")
    assert "greater than 0" in result.stderr
    assert not out.exists()


def test_bad_sweep_file_is_one_line(cli, tmp_path) -> None:
    path = write_sweep(tmp_path, SWEEP_2x2 + "colour: red\n")
    assert_user_error(cli("sweep", str(path), "--out", str(tmp_path / "out")), "sweep.yaml:7: colour: unknown key")
    assert not (tmp_path / "out").exists()


def test_workers_and_scheduler_exclude_each_other(cli, tmp_path) -> None:
    path = write_sweep(tmp_path, SWEEP_2x2)
    assert_user_error(cli("sweep", str(path), "--workers", "2", "--scheduler", "tcp://localhost:1"), "cannot be used together")


def _hvae_command() -> list[str]:
    executable = Path(sys.executable).with_name("hvae")
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "hvae.cli.main"]


@pytest.mark.slow
def test_a_killed_worker_fails_its_run_and_the_sweep_finishes(tmp_path) -> None:
    psutil = pytest.importorskip("psutil")
    path = write_sweep(tmp_path, """\
name: crash
scenario: tiny.yaml
seeds: [1]
runs:
  - {rounds: 1000000}   # slow: killed mid-run below
  - {rounds: 3}
""")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "HVAE_DEBUG"}
    process = subprocess.Popen(
        [*_hvae_command(), "sweep", str(path), "--workers", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        slow = out / "run-0000_rounds=1000000_seed=1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the slow run is under way
            if process.poll() is not None:
                pytest.fail(f"hvae sweep ended early: {process.communicate()[1]}")
            try:
                if json.loads((slow / "summary.json").read_text())["rounds_completed"] > 0:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the slow run never started")
        workers = [
            child for child in psutil.Process(process.pid).children(recursive=True)
            if "resource_tracker" not in " ".join(child.cmdline())
        ]
        assert len(workers) == 1, [w.cmdline() for w in workers]
        os.kill(workers[0].pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=60)  # no hang
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, stderr
    assert "1 of 2 runs failed" in stderr and "run-0000_rounds=1000000_seed=1: the worker process died" in stderr
    assert "Traceback" not in stderr
    table = pd.read_parquet(out / "sweep.parquet").set_index("run_id")
    assert table.loc["run-0000_rounds=1000000_seed=1", "status"] == "failed"
    assert "worker process died" in table.loc["run-0000_rounds=1000000_seed=1", "error"]
    assert table.loc["run-0001_rounds=3_seed=1", "status"] == "complete"
    assert "(1 ran, 0 skipped, 1 failed)" in stdout


# ------------------------------------------------------------------------------ the sweep file
def test_expansion_is_runs_times_grid_times_seeds(tmp_path) -> None:
    path = write_sweep(tmp_path, """\
name: x
scenario: tiny.yaml
seeds: [7, 8]
overrides: {history.length: 3}
runs:
  - {population.0.count: 2}
  - {population.0.count: 4, population.1.count: 2}
grid:
  network: [{kind: complete}, {kind: grid, rows: 2, cols: 3}]
  matching: [random]
""")
    sweep = load_sweep(path)
    assert len(sweep.runs) == 2 * 2 * 1 * 2
    ids = [run.run_id for run in sweep.runs]
    assert len(set(ids)) == len(ids) and ids == [run.run_id for run in load_sweep(path).runs]
    assert ids[3] == "run-0003_population.0.count=2_network=grid-rows2-cols3_matching=random_seed=8"
    first = sweep.runs[0]
    assert first.overrides[0] == "history.length=3" and first.seed == 7
    resolved = validate_runs(sweep)
    assert set(resolved) == set(ids)
    scenario = load_scenario(sweep.scenario_path, sweep.runs[5].overrides, seed=sweep.runs[5].seed)
    assert scenario.group_counts() == {"pro": 4, "com": 2} and scenario.network.kind == "complete"
    assert scenario.seed == 8 and scenario.history.length == 3


def test_run_ids_are_sanitised() -> None:
    name = run_id(12, {"menus": {"kind": "ring", "center": [0, 1.5]}, "description": "a b/c"}, 3)
    assert name == "run-0012_menus=ring-center0-1.5_description=a-b-c_seed=3"
    assert re.fullmatch(r"[A-Za-z0-9._=+-]+", run_id(0, {"x": "é/" * 80}, 1))
    assert len(run_id(0, {"x": "v" * 500}, 1)) < 80


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("name: x\nscenario: tiny.yaml\n", r"sweep\.yaml: seeds: required key is missing"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1, 1]\n", r"sweep\.yaml:3: seeds: must be unique"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1]\ngrid: {rounds: []}\n", r"sweep\.yaml:4: grid: grid key 'rounds' has no values"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1]\ngrid: {seed: [1, 2]}\n", r"seed is set by 'seeds'"),
        ("name: x\nscenario: missing.yaml\nseeds: [1]\n", r"sweep\.yaml:2: scenario: 'missing\.yaml' is neither"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1]\nruns: [{rounds: 3}]\ngrid: {rounds: [4]}\n", r"'rounds' is set by both runs and grid"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1]\nruns:\n  - {rounds: 3}\n  - {population.0.cont: 3}\n",
         r"sweep\.yaml:6: runs\.1: population\.0\.cont=3 does not fit the scenario: .*unknown key"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1]\noverrides: {network.kind: grid}\n", r"sweep\.yaml:4: overrides: network\.kind=grid does not fit"),
        ("name: x\nscenario: tiny.yaml\nseeds: [1]\ngrid: {population.9.count: [1]}\n", r"index 9 out of range"),
        ("name: x y\nscenario: tiny.yaml\nseeds: [1]\n", r"sweep\.yaml:1: name: .*pattern"),
    ],
)
def test_bad_sweep_files_give_one_line(tmp_path, body: str, expected: str) -> None:
    path = write_sweep(tmp_path, body)
    with pytest.raises(ScenarioError) as caught:
        validate_runs(load_sweep(path))
    message = str(caught.value)
    assert "\n" not in message and re.search(expected, message), message


def test_example_sweep_is_valid_and_small() -> None:
    sweep = load_sweep(shipped_scenarios()["sweep_example"])
    assert len(validate_runs(sweep)) == len(sweep.runs) == 18
    assert len(list(expand(sweep.config))) == 18
