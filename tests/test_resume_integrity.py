"""Resuming a changed or tampered folder (issue 20, items 3 and 4): refused in one line, nothing cut.

Every attack edits an interrupted run folder the way the issue's review did, then resumes it; the
resume must stop with one line (exit 2) before anything in the folder is cut or written, and must
never hang or allocate what a hostile file declares.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import BASE_SCENARIO, assert_user_error
from test_checkpoint import folder_state, interrupted_run

from hvae.analysis.runfolder import NotARunFolder, RunFolder
from hvae.scenarios.loader import load_scenario
from hvae.simulation import checkpoint
from hvae.simulation.runner import RunInterrupted, resume_run, play_scenario
from hvae.simulation.store import RunFolderError


def _edit_manifest(folder, change) -> None:
    manifest = json.loads((folder / "checkpoint.json").read_text())
    change(manifest)
    (folder / "checkpoint.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------------- item 3: tampered checkpoint
def _set_round(value):
    return lambda m: m.update(round=value)


def _fewer_rows(m):
    m["rows_written"]["decisions"] -= m["_last_round_rows"]  # a cut exactly at a round boundary


def _one_row_less(m):
    m["rows_written"]["decisions"] -= 1


def _transcript(value):
    return lambda m: m["extra"].update(transcript_bytes=value)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (_set_round(400), "beyond the 12 rounds"),
        (_set_round(10**18), "beyond the 12 rounds"),
        (_set_round(8), "the checkpoint is at round 8, but the folder's rounds table has 7 rounds"),
        (_set_round(6), "rows_written.decisions"),
        (_fewer_rows, "rows_written.decisions"),
        (_one_row_less, "rows_written.decisions"),
        (lambda m: m["rows_written"].update(rounds=0), "rows_written.rounds"),
        (lambda m: m["rows_written"].update(value_changes=10**6), "rows_written.value_changes"),
        (_transcript(10**12), "transcript_bytes"),
        (_transcript(-5), "transcript_bytes"),
        (lambda m: m["rows_written"].update(secrets=3), "tables hvae does not write"),
    ],
)
def test_tampered_checkpoint_figures_are_refused_before_anything_is_cut(tmp_path, change, fragment) -> None:
    folder = interrupted_run(tmp_path / "run")
    rounds = pq.read_table(folder / "decisions.parquet").column("round").to_numpy()
    assert set(rounds) == set(range(7))  # interrupted after round 7 (stamped 0..6)

    def edit(manifest):
        manifest["_last_round_rows"] = int((rounds == 6).sum())
        change(manifest)
        del manifest["_last_round_rows"]

    _edit_manifest(folder, edit)
    before = folder_state(folder)
    with pytest.raises(RunFolderError, match=fragment):
        resume_run(folder)
    assert folder_state(folder) == before  # nothing cut, nothing written
    assert not (folder / "transcripts.jsonl").exists()


@pytest.mark.slow
def test_tampered_round_is_one_line_on_the_command_line(tmp_path, cli) -> None:
    folder = interrupted_run(tmp_path / "run")
    _edit_manifest(folder, _set_round(400))
    assert_user_error(cli("run", "--resume", str(folder)), "round 400 is beyond the 12 rounds")
    assert json.loads((folder / "summary.json").read_text())["status"] == "interrupted"


def test_untampered_checkpoint_still_resumes_to_the_planned_rounds(tmp_path) -> None:
    folder = interrupted_run(tmp_path / "run")
    result = resume_run(folder)
    assert result.summary["status"] == "complete" and result.summary["rounds_completed"] == 12
    decisions = pq.read_table(folder / "decisions.parquet").to_pandas()
    assert set(decisions["round"]) == set(range(12))
    assert not decisions.duplicated(["round", "agent_id"]).any()  # no round played twice


# ---------------------------------------------------------------------------------- item 3: changed input files
def _ring_edges(n: int, step: int) -> str:
    return "".join(f"{i} {(i + step) % n}\n" for i in range(n))


def _file_network_run(tmp_path):
    edges = tmp_path / "edges.txt"
    edges.write_text(_ring_edges(16, 1))
    data = {**BASE_SCENARIO, "rounds": 6, "network": {"kind": "file", "path": str(edges)}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))

    def stop(model):
        if model.round == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(load_scenario(tmp_path / "s.yaml"), tmp_path / "run", on_round=stop)
    return edges, tmp_path / "run"


def test_input_file_is_fingerprinted_when_the_run_starts(tmp_path) -> None:
    edges, folder = _file_network_run(tmp_path)
    recorded = json.loads((folder / "summary.json").read_text())["inputs"]["network.path"]
    assert recorded["sha256"] == hashlib.sha256(edges.read_bytes()).hexdigest()
    assert recorded["bytes"] == edges.stat().st_size


@pytest.mark.slow
def test_replaced_network_file_refuses_the_resume(tmp_path, cli) -> None:
    edges, folder = _file_network_run(tmp_path)
    edges.write_text(_ring_edges(16, 3))  # same nodes, other neighbours
    before = folder_state(folder)
    assert_user_error(cli("run", "--resume", str(folder)), "network.path")
    assert folder_state(folder) == before
    edges.write_text(_ring_edges(16, 1))  # put back: the resume goes on
    assert resume_run(folder).summary["status"] == "complete"


def test_fingerprints_removed_from_the_summary_refuse_the_resume(tmp_path) -> None:
    _, folder = _file_network_run(tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    del summary["inputs"]
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(RunFolderError, match="records no fingerprints"):
        resume_run(folder)


# ---------------------------------------------------------------------------------- item 4: bounded reads
def _arrays_file(folder):
    return folder / json.loads((folder / "checkpoint.json").read_text())["arrays"]["file"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder"])
def test_arrays_file_that_is_not_a_regular_file_is_one_line_at_once(tmp_path, cli, kind) -> None:
    folder = interrupted_run(tmp_path / "run")
    target = _arrays_file(folder)
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev_zero":
        target.symlink_to("/dev/zero")
    else:
        target.mkdir()
    result = cli("run", "--resume", str(folder), timeout=60)  # a hang fails the test here
    assert_user_error(result, "not a regular file")


@pytest.mark.slow
def test_fifo_manifest_and_table_files_do_not_hang(tmp_path, cli) -> None:
    folder = interrupted_run(tmp_path / "run")
    (folder / "checkpoint.json").unlink()
    os.mkfifo(folder / "checkpoint.json")
    assert_user_error(cli("run", "--resume", str(folder), timeout=60), "not a regular file")
    other = interrupted_run(tmp_path / "other")
    (other / "rounds.parquet").unlink()
    os.mkfifo(other / "rounds.parquet")
    assert_user_error(cli("run", "--resume", str(other), timeout=60), "not a regular file")
    with pytest.raises(NotARunFolder, match="not a regular file"):  # the analysis side too
        RunFolder(other).rounds()


def _npz_declaring(real: bytes, victim: str, shape: tuple[int, ...]) -> bytes:
    """The real archive with ``victim`` replaced by a header declaring ``shape`` over 3 MB of data."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(real)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            if info.filename == f"{victim}.npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f8", "fortran_order": False, "shape": shape}
                )
                target.writestr(info.filename, header.getvalue() + bytes(3 << 20))
            else:
                target.writestr(info, source.read(info))
    return out.getvalue()


def test_small_arrays_file_declaring_a_huge_array_is_refused_before_allocating(tmp_path) -> None:
    folder = interrupted_run(tmp_path / "run")
    target = _arrays_file(folder)
    victim = "state.payoff_total" if "state.payoff_total.npy" in zipfile.ZipFile(target).namelist() else \
        sorted(zipfile.ZipFile(target).namelist())[0][:-4]
    hostile = _npz_declaring(target.read_bytes(), victim, (400_000_000,))  # 3.2 GB declared
    assert len(hostile) < 5 << 20
    target.write_bytes(hostile)
    _edit_manifest(folder, lambda m: m["arrays"].update(sha256=hashlib.sha256(hostile).hexdigest()))
    tracemalloc.start()
    try:
        with pytest.raises(checkpoint.CheckpointError, match="declares 3,200,000,000 bytes"):
            checkpoint.load(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20, peak


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_planted_lock_file_is_refused_in_one_line(tmp_path, kind) -> None:
    from hvae.simulation.lock import LOCK_FILE, FolderLock

    lock = tmp_path / LOCK_FILE
    if kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.symlink_to("/dev/zero")
    with pytest.raises(RunFolderError, match=f"cannot lock {tmp_path}: {LOCK_FILE}"):
        FolderLock.acquire(tmp_path, "resume")
