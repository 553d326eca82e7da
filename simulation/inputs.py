"""Input files: the files a scenario names, fingerprinted so that a resume can tell they changed.

A scenario may name files outside its run folder (``network: {kind: file, path: …}``). The run
folder keeps what was built from them (``network.parquet``), but a resume rebuilds the model from
the scenario — from the file as it is *now*. A file replaced in between would silently switch the
run to another graph halfway. So a run records each input file's SHA-256 and size in
``summary.json`` (``inputs``) when it starts, and :func:`check_inputs_unchanged` refuses a resume
with one line when any of them differs::

    summary["inputs"] = input_fingerprints(scenario)       # at the start of a run
    check_inputs_unchanged(scenario, summary, run_dir)     # before a resume builds anything
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hvae.files.untrusted import UnsafeFile, one_line, read_regular
from hvae.scenarios.schema import Scenario
from hvae.simulation.store import RunFolderError

#: Largest input file hvae reads (a network edge list).
MAX_INPUT_BYTES = 512 << 20


def input_files(scenario: Scenario) -> dict[str, Path]:
    """The files ``scenario`` reads, by the key path that names them."""
    files = {}
    if scenario.network.kind == "file":
        files["network.path"] = Path(scenario.network.path)
    return files


def _fingerprint(path: Path, key: str) -> dict[str, Any]:
    try:
        data = read_regular(path, f"{key}: input file", MAX_INPUT_BYTES)
    except FileNotFoundError:
        raise RunFolderError(f"{key}: input file {path} does not exist") from None
    except UnsafeFile as error:
        raise RunFolderError(str(error)) from None
    except OSError as error:
        raise RunFolderError(f"{key}: input file {path} cannot be read ({error.strerror})") from None
    return {"path": str(path), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def input_fingerprints(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """``{key path: {path, bytes, sha256}}`` for every input file of ``scenario``."""
    return {key: _fingerprint(path, key) for key, path in input_files(scenario).items()}


def check_inputs_unchanged(scenario: Scenario, summary: dict[str, Any], run_dir: Path) -> None:
    """Refuse a resume whose input files differ from those the run started with.

    Raises:
        RunFolderError: an input file changed, disappeared, or has no recorded fingerprint.
    """
    recorded = summary.get("inputs")
    files = input_files(scenario)
    if not files:
        return
    if not isinstance(recorded, dict):
        raise RunFolderError(
            f"{run_dir}: summary.json records no fingerprints of the run's input files "
            f"({', '.join(files)}), so a resume cannot tell whether they changed; run the scenario again"
        )
    for key, path in files.items():
        now = _fingerprint(path, key)
        before = recorded.get(key)
        if not isinstance(before, dict) or before.get("sha256") != now["sha256"]:
            raise RunFolderError(
                f"{run_dir}: {key} {one_line(path, 200)} is not the file the run started with (its SHA-256 "
                "differs from the one in summary.json); a resume would continue on other input — restore the "
                "file or run the scenario again"
            )
