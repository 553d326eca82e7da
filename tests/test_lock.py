"""One writer per folder (issue 11, item 2): a second writer is refused; a dead holder blocks nobody."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from conftest import assert_user_error

from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import load_scenario
from hvae.simulation.runner import play_scenario

LOCK_FILE = ".hvae.lock"
OVERRIDES = ["rounds=40", "size=40"]

# A run that reports each finished round and then waits for a line on stdin, so the test holds it
# between rounds, alive, with its folder open.
SLOW_CHILD = textwrap.dedent(
    """
    import sys
    from hvae.scenarios.loader import load_scenario
    from hvae.simulation.runner import play_scenario

    def report(model):
        print(model.round, flush=True)
        sys.stdin.readline()

    play_scenario(load_scenario("ring_continuous", sys.argv[2:]), sys.argv[1], on_round=report)
    """
)


@pytest.fixture
def running_child(tmp_path):
    folder = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, str(folder), *OVERRIDES],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "1"  # round 1 done; the child waits, folder locked
    yield folder, child
    if child.poll() is None:
        child.kill()
    child.wait(timeout=60)


@pytest.mark.slow
def test_second_writer_is_refused_and_a_killed_holder_blocks_nobody(running_child, cli, tmp_path) -> None:
    folder, child = running_child
    host = socket.gethostname()

    resumed = cli("run", "--resume", str(folder), "--quiet", "--no-report")
    assert_user_error(resumed, "is being written by another hvae process")
    assert f"pid {child.pid} on {host}" in resumed.stderr and "(run," in resumed.stderr

    again = cli("run", "ring_continuous", *sum((["--set", o] for o in OVERRIDES), []), "--out", str(folder),
                "--quiet", "--no-report")
    assert_user_error(again, f"pid {child.pid}")
    assert RunFolder(folder).status == "running"

    os.kill(child.pid, signal.SIGKILL)  # the lock file stays behind, but its lock dies with the process
    child.wait(timeout=60)
    assert (folder / LOCK_FILE).exists()
    finished = cli("run", "--resume", str(folder), "--quiet", "--no-report")
    assert finished.returncode == 0, finished.stderr
    full = play_scenario(load_scenario("ring_continuous", OVERRIDES), tmp_path / "full").path
    for name in ("decisions", "rounds", "agents"):
        pd.testing.assert_frame_equal(RunFolder(full).frame(name), RunFolder(folder).frame(name), obj=name)
    assert not (folder / LOCK_FILE).exists()  # a clean end removes it


def test_lock_left_by_a_dead_process_does_not_block(tmp_path) -> None:
    from hvae.simulation.lock import FolderLock

    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"pid": int(dead.stdout), "host": socket.gethostname(), "what": "run", "since": "2026-01-01T00:00:00+00:00"}
    (folder / LOCK_FILE).write_text(json.dumps(record))
    with FolderLock.acquire(folder, "resume") as lock:
        assert lock.held
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_FILE).exists()


def test_lock_names_its_holder_in_another_process(tmp_path) -> None:
    from hvae.simulation.lock import FolderLock, FolderLocked

    folder = tmp_path / "sweep"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            f"""
            import sys
            from hvae.simulation.lock import FolderLock
            lock = FolderLock.acquire({str(folder)!r}, "sweep")
            print("locked", flush=True)
            sys.stdin.readline()
            """
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLocked, match=rf"\(sweep, pid {holder.pid} on "):
            FolderLock.acquire(folder, "run")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    FolderLock.acquire(folder, "run").release()  # the holder ended: free again


def test_second_sweep_into_one_folder_is_refused(tmp_path, cli) -> None:
    from hvae.simulation.lock import FolderLock

    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("name: locked\nscenario: sweep_base\nseeds: [1]\noverrides: {rounds: 2}\n")
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock.acquire(out, "sweep"):  # as if another `hvae sweep` were writing it
        result = cli("sweep", str(sweep_file), "--out", str(out), "--workers", "1")
        assert_user_error(result, "is being written by another hvae process")
        assert f"pid {os.getpid()}" in result.stderr
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written
