"""Checkpoint and resume: runs killed with SIGKILL at several points finish with identical tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from conftest import assert_user_error

from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import load_scenario
from hvae.simulation.runner import RunInterrupted, resume_run, play_scenario

OVERRIDES = ["rounds=30", "size=40", "dynamics={rule: imitation, every: 5, strength: 2}"]
TABLES = ("decisions", "rounds", "agents", "value_changes")

# A child process that runs the scenario and prints each finished round, so the test can kill
# it with SIGKILL at a chosen point (while it is writing, deciding or checkpointing).
CHILD = textwrap.dedent(
    """
    import sys, time
    from hvae.scenarios.loader import load_scenario
    from hvae.simulation.runner import play_scenario

    def report(model):
        print(model.round, flush=True)
        time.sleep(0.02)

    scenario = load_scenario("ring_continuous", sys.argv[2:])
    play_scenario(scenario, sys.argv[1], on_round=report)
    """
)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume") / "full"
    play_scenario(load_scenario("ring_continuous", OVERRIDES), folder)
    return RunFolder(folder)


def assert_same_tables(expected: RunFolder, actual: RunFolder) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(expected.frame(name), actual.frame(name), obj=name)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_round", [0, 3, 11, 29])
def test_sigkill_then_resume_gives_identical_tables(uninterrupted, tmp_path, cli, kill_after_round) -> None:
    folder = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), *OVERRIDES], stdout=subprocess.PIPE, text=True
    )
    try:
        for line in child.stdout:
            if int(line) >= kill_after_round:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "running"  # killed: never marked complete
    result = cli("run", "--resume", str(folder), "--quiet", "--no-report")
    assert result.returncode == 0, result.stderr
    resumed = RunFolder(folder)
    assert resumed.status == "complete" and not (folder / "parts").exists()
    assert_same_tables(uninterrupted, resumed)


def test_ctrl_c_stops_after_the_round_and_is_resumable(uninterrupted, tmp_path) -> None:
    def interrupt(model):
        if model.round == 12:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(load_scenario("ring_continuous", OVERRIDES), tmp_path / "run", on_round=interrupt)
    folder = RunFolder(tmp_path / "run")
    assert folder.status == "interrupted" and folder.summary["resumable"]
    assert folder.decisions()["round"].max() == 11
    resume_run(tmp_path / "run")
    assert_same_tables(uninterrupted, RunFolder(tmp_path / "run"))


@pytest.mark.slow
def test_sigint_in_a_real_process_stops_cleanly(tmp_path, uninterrupted) -> None:
    folder = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), *OVERRIDES], stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        if int(line) >= 5:
            child.send_signal(signal.SIGINT)
            break
    child.communicate(timeout=60)
    run = RunFolder(folder)
    assert run.status == "interrupted" and run.summary["resumable"]
    resume_run(folder)
    assert_same_tables(uninterrupted, RunFolder(folder))


@pytest.mark.slow
def test_resume_refuses_complete_runs_and_non_runs(cli, uninterrupted, tmp_path) -> None:
    assert_user_error(cli("run", "--resume", str(uninterrupted.path)), "already complete")
    assert_user_error(cli("run", "--resume", str(tmp_path)), "not an hvae run folder")
