"""Talk vs. no talk: one scenario played twice from the same seed, then compared.

A scenario with ``communication: {turns: N, compare: true}`` asks for the comparison; ``hvae run``
then calls :func:`run_comparison`, which makes one folder holding two ordinary run folders::

    runs/talk-<time>/
        comparison.json        kind, scenario, seed, arms, status (running / interrupted / failed / complete)
        no_talk/               the scenario with communication.turns = 0 (an ordinary run folder)
        talk/                  the scenario as given (its messages.parquet holds the conversations)
        talk_groups.*, talk_value_pairs.*, talk_promises.*    the comparison tables (parquet, csv)
        report.html, report_figures/                          the comparison report

Both arms use the scenario's seed, so they play the same pairs on the same menus with the same
option orders (talk draws nothing from the random streams; see :mod:`hvae.analysis.talk`).
The arms run one after the other, ``no_talk`` first. ``hvae run --resume FOLDER`` continues a
comparison that was stopped or killed: a complete arm is kept, an interrupted one is resumed
from its checkpoint (:func:`hvae.simulation.runner.resume_run`), a missing one is started; then
the comparison is written. The folder is locked while a comparison writes it.

    from hvae.experiments.talk import run_comparison
    result = run_comparison(load_scenario("talk"), "runs/talk")
    result.report            # runs/talk/report.html
"""

from __future__ import annotations

from hvae.files.status import FINISHED
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvae.analysis.talk import ARMS
from hvae.experiments.runs import resume_run, run_to_folder
from hvae.files.atomic import write_bytes_atomic
from hvae.scenarios.schema import Scenario
from hvae.simulation.lock import FolderLock
from hvae.simulation.runner import RunFailed, RunInterrupted
from hvae.simulation.store import RunFolderError

MARKER = "comparison.json"
KIND = "talk_comparison"


@dataclass
class ComparisonResult:
    """Where a comparison was written: its folder, the two arms' folders and the report."""

    path: Path
    arms: dict[str, Path]
    report: Path | None


def arm_scenario(scenario: Scenario, arm: str) -> Scenario:
    """The scenario of one arm: ``no_talk`` has ``turns: 0``; neither arm compares again."""
    turns = 0 if arm == "no_talk" else scenario.communication.turns
    communication = scenario.communication.model_copy(update={"turns": turns, "compare": False})
    return scenario.model_copy(update={"communication": communication})


def is_comparison(folder: str | Path) -> bool:
    """Whether ``folder`` is a talk comparison folder (it holds ``comparison.json``)."""
    return (Path(folder) / MARKER).is_file()


def _write_marker(folder: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(folder / MARKER, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def run_comparison(scenario: Scenario, out_dir: str | Path, **options: Any) -> ComparisonResult:
    """Play both arms of ``scenario`` into the new folder ``out_dir`` and write the comparison.

    ``options`` go to each arm's run (``progress``). Raises :class:`RunFolderError` when
    ``out_dir`` exists and is not empty, and what a run raises (an interrupted arm leaves the
    comparison resumable).
    """
    if not scenario.communication.compare:
        raise ValueError("run_comparison needs a scenario with communication.compare: true")
    arms = {arm: arm_scenario(scenario, arm) for arm in ARMS}
    from hvae.simulation.model import HvaeModel

    for arm_config in arms.values():  # bad input fails before any folder exists
        HvaeModel(arm_config).close()
    folder = Path(out_dir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise RunFolderError(f"{folder} already exists and is not empty; choose another --out folder")
    folder.mkdir(parents=True, exist_ok=True)
    with FolderLock.acquire(folder, "talk comparison"):
        marker = {
            "kind": KIND, "scenario": scenario.name, "seed": scenario.seed, "arms": list(ARMS),
            "turns": scenario.communication.turns, "status": "running",
        }
        _write_marker(folder, marker)
        with _resume_hint(folder):
            for arm in ARMS:
                run_to_folder(arms[arm], folder / arm, **options)
        return _finish(folder, marker)


def resume_comparison(folder: str | Path, *, trust_backends: bool = False, **options: Any) -> ComparisonResult:
    """Continue a stopped or killed comparison (see the module docstring).

    ``trust_backends`` as in :func:`hvae.simulation.runner.resume_run`: the folder's backends may
    read environment variables only with the user's consent.
    """
    from hvae.analysis.runfolder import RunFolder
    from hvae.scenarios.loader import load_scenario
    from hvae.simulation.credentials import check_backends_trusted

    folder = Path(folder)
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    if marker.get("kind") != KIND:
        raise RunFolderError(f"{folder / MARKER} is not a talk comparison")
    with FolderLock.acquire(folder, "talk comparison"), _resume_hint(folder):
        for arm in ARMS:
            path = folder / arm
            if (path / "summary.json").is_file():
                if RunFolder(path).status not in FINISHED:
                    resume_run(path, trust_backends=trust_backends, **options)
                continue
            # never started: its scenario is the other arm's with this arm's talk setting
            source = next(folder / other for other in ARMS if (folder / other / "scenario.yaml").is_file())
            base = load_scenario(source / "scenario.yaml")
            check_backends_trusted(base, folder, trust_backends)  # a folder's scenario, not the user's
            turns = 0 if arm == "no_talk" else int(marker.get("turns") or base.communication.turns)
            if turns == 0 and arm == "talk":
                raise RunFolderError(f"{folder}: the talk arm was never started and its turns are unknown; run the scenario again")
            config = base.model_copy(update={"communication": base.communication.model_copy(update={"turns": turns})})
            if path.exists() and any(path.iterdir()):
                raise RunFolderError(f"{path} is not a run folder; remove it and resume again")
            run_to_folder(config, path, **options)
        return _finish(folder, marker)


@contextmanager
def _resume_hint(folder: Path) -> Iterator[None]:
    """A stopped arm names the comparison folder to resume (resuming it finishes both arms)."""
    try:
        yield
    except RunInterrupted:
        _mark(folder, "interrupted")
        raise RunInterrupted(folder) from None
    except RunFailed as failed:
        _mark(folder, "failed")
        raise RunFailed(folder, failed.cause) from failed.cause


def _mark(folder: Path, status: str) -> None:
    """Record how a comparison stopped in its marker (never "complete": only :func:`_finish` says that)."""
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    _write_marker(folder, {**marker, "status": status})


def _finish(folder: Path, marker: dict[str, Any]) -> ComparisonResult:
    from hvae.analysis.report import write_report
    from hvae.analysis.talk_report import write_talk_report

    for arm in ARMS:  # each arm's own report, as hvae run writes for any run
        write_report([folder / arm], folder / arm / "report.html")
    report = write_talk_report(folder)
    marker = {**marker, "status": "complete"}
    _write_marker(folder, marker)
    return ComparisonResult(folder, {arm: folder / arm for arm in ARMS}, report)
