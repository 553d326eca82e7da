"""The checkpoint format: JSON + .npz, validated on load, and never code (issue 11, item 1).

A run folder may come from anyone, so resuming one must not execute anything from it: a
``checkpoint.pkl`` (the old format, or a crafted one) is refused without being opened, and the
JSON + ``.npz`` checkpoint is checked (format, version, checksum, shapes) before the run is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error
from llm_stub_server import StubServer

from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import load_scenario, validate_data
from hvae.simulation import checkpoint
from hvae.simulation.runner import RunInterrupted, resume_run, play_scenario

OVERRIDES = ["rounds=12", "size=40", "dynamics={rule: imitation, every: 5, strength: 2}"]


def interrupted_run(folder, overrides=OVERRIDES, at_round: int = 7):
    def stop(model):
        if model.round == at_round:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(load_scenario("ring_continuous", overrides), folder, on_round=stop)
    return folder


def folder_state(folder) -> dict[str, bytes]:
    """Every file of a run folder and its bytes (to show a refused resume changed nothing)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class _Payload:
    """Unpickling this runs a shell command (what a crafted checkpoint.pkl can do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.slow
def test_malicious_legacy_pickle_is_refused_and_never_run(tmp_path, cli) -> None:
    folder = interrupted_run(tmp_path / "run")
    for path in [*folder.glob("checkpoint.*"), *folder.glob("checkpoint-*.npz")]:
        path.unlink()  # a folder as an older hvae (or an attacker) would leave it
    marker = tmp_path / "pwned"
    (folder / "checkpoint.pkl").write_bytes(pickle.dumps(_Payload(f"touch {marker}")))
    before = folder_state(folder)

    result = cli("run", "--resume", str(folder), "--quiet", "--no-report")

    assert not marker.exists(), "resuming executed code from the run folder"
    assert_user_error(result, "checkpoint.pkl")
    assert "never unpickles" in result.stderr
    assert folder_state(folder) == before  # refused before anything was touched


def test_checkpoint_is_json_and_npz_without_pickles(tmp_path) -> None:
    folder = interrupted_run(tmp_path / "run")
    manifest = json.loads((folder / "checkpoint.json").read_text())
    assert manifest["format"] == "hvae-checkpoint" and manifest["version"] == checkpoint.FORMAT_VERSION
    assert manifest["round"] == 7
    arrays = folder / manifest["arrays"]["file"]
    assert hashlib.sha256(arrays.read_bytes()).hexdigest() == manifest["arrays"]["sha256"]
    with np.load(arrays, allow_pickle=False) as npz:  # raises if any array needed pickle
        assert sorted(npz.files) == sorted(manifest["arrays"]["keys"])
        assert npz["state.theta"].shape == (40,)
    assert not list(folder.glob("*.pkl")) and not list(folder.glob(".*.tmp"))
    assert len(list(folder.glob("checkpoint-*.npz"))) == 1  # older arrays files are removed


def test_resume_from_json_checkpoint_matches_an_uninterrupted_run(tmp_path) -> None:
    full = play_scenario(load_scenario("ring_continuous", OVERRIDES), tmp_path / "full").path
    folder = interrupted_run(tmp_path / "run")
    resume_run(folder)
    for name in ("decisions", "rounds", "agents", "value_changes"):
        pd.testing.assert_frame_equal(RunFolder(full).frame(name), RunFolder(folder).frame(name), obj=name)
    assert not (folder / "checkpoint.json").exists() and not list(folder.glob("checkpoint-*.npz"))


@pytest.mark.slow
def test_changed_arrays_file_is_refused_with_one_line(tmp_path, cli) -> None:
    folder = interrupted_run(tmp_path / "run")
    arrays = next(folder.glob("checkpoint-*.npz"))
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))
    before = folder_state(folder)
    assert_user_error(cli("run", "--resume", str(folder), "--quiet", "--no-report"), "checksum differs")
    assert folder_state(folder) == before


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(format="something-else"), "not an hvae checkpoint"),
        (lambda m: m.update(version=1), "checkpoint version 1"),
        (lambda m: m.update(round="7"), "round is missing or has the wrong type"),
        (lambda m: m["arrays"].update(file="../../elsewhere.npz"), "not a checkpoint file in the run folder"),
    ],
)
def test_damaged_or_foreign_manifest_is_refused(tmp_path, change, fragment) -> None:
    folder = interrupted_run(tmp_path / "run")
    manifest = json.loads((folder / "checkpoint.json").read_text())
    change(manifest)
    (folder / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(checkpoint.CheckpointError, match=fragment):
        checkpoint.load(folder)


def test_checkpoint_of_another_scenario_does_not_fit(tmp_path) -> None:
    folder = interrupted_run(tmp_path / "run")
    scenario = folder / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("size: 40", "size: 48"))
    with pytest.raises(checkpoint.CheckpointError, match="40 agents, the scenario has 48"):
        resume_run(folder)
    assert RunFolder(folder).status == "interrupted"


def test_a_manifest_never_names_a_missing_arrays_file(tmp_path) -> None:
    """Arrays are written first and old ones removed last: every manifest on disk is loadable."""
    folder = interrupted_run(tmp_path / "run", at_round=3)
    model_state = checkpoint.load(folder)
    first = (folder / "checkpoint.json").read_text()
    model_state.meta["extra"]["marker"] = 1
    model_state.arrays["state.theta"] = model_state.arrays["state.theta"] + 1.0
    checkpoint.save(folder, model_state)
    assert (folder / "checkpoint.json").read_text() != first
    reloaded = checkpoint.load(folder)
    assert reloaded.meta["extra"]["marker"] == 1
    np.testing.assert_array_equal(reloaded.arrays["state.theta"], model_state.arrays["state.theta"])
    assert len(list(folder.glob("checkpoint-*.npz"))) == 1


# ---------------------------------------------------------------------------------- LLM agents
def _llm_scenario(base_url: str, rounds: int = 6):
    return validate_data(
        {
            "name": "llm-resume",
            "seed": 4,
            "rounds": rounds,
            "population": [
                {"name": "l", "count": 3, "value": "prosocial",
                 "decider": {"kind": "llm", "backend": "srv", "order": "reverse_half"}},
                {"name": "o", "count": 3, "value": "competitive", "decider": "oracle"},
            ],
            "network": {"kind": "complete"},
            "backends": {"srv": {"kind": "openai", "base_url": base_url, "model": "stub", "retries": 0}},
            "cache": {"enabled": False},
        },
        "llm-resume",
    )


def test_llm_run_resumes_from_json_snapshots(tmp_path) -> None:
    """Setup conversations (autogen save_state) travel through JSON and give the same decisions."""
    stable = ["round", "agent_id", "choice", "shown_order", "raw_reply", "valid", "payoff"]
    with StubServer(ok_text="B") as stub:
        full = play_scenario(_llm_scenario(stub.base_url), tmp_path / "full").path

        def stop(model):
            if model.round == 3:
                raise KeyboardInterrupt

        with pytest.raises(RunInterrupted):
            play_scenario(_llm_scenario(stub.base_url), tmp_path / "run", on_round=stop)
        manifest = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
        setups = manifest["deciders"]["l"]["setups"]
        assert len(setups) == 3 and all(s["state"]["llm_context"]["messages"] for s in setups)
        setup_calls = stub.counts["setup"]
        resume_run(tmp_path / "run")
        assert stub.counts["setup"] == setup_calls  # restored from the snapshot, not set up again
    expected, resumed = RunFolder(full).decisions(), RunFolder(tmp_path / "run").decisions()
    pd.testing.assert_frame_equal(expected[stable], resumed[stable])
    assert RunFolder(tmp_path / "run").summary["llm_calls"] == RunFolder(full).summary["llm_calls"]
