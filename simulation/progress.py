"""The one progress display of hvae: a rich bar on stderr with one line per counted task.

Runs show their rounds (and, while it lasts, the LLM agents being set up), sweeps their runs with
the number failed, ``hvae evaluate`` its questionnaire items — all with the same columns::

    bar = ProgressBar()
    rounds = bar.add("quickstart", total=6, unit="rounds")
    bar.update(rounds, advance=1)
    bar.stop()

Only callers that know stderr is a terminal create one; it is never written to a file or a log.
"""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """Counted tasks, each a line: bold label, bar, done/total, unit, a note, elapsed and remaining time.

    ``transient`` bars disappear when stopped (a run's bar leaves room for its summary table).
    """

    def __init__(self, transient: bool = False) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), transient=transient, console=Console(stderr=True),
        )
        self.progress.start()

    def add(self, label: str, total: int, unit: str, completed: int = 0, note: str = "") -> Any:
        """A new task line; returns its id for :meth:`update` and :meth:`remove`."""
        return self.progress.add_task(label, total=total, completed=completed, unit=unit, note=note)

    def update(self, task: Any, *, completed: int | None = None, advance: int | None = None, note: str | None = None) -> None:
        fields = {} if note is None else {"note": note}
        self.progress.update(task, completed=completed, advance=advance, **fields)

    def remove(self, task: Any) -> None:
        self.progress.remove_task(task)

    def stop(self) -> None:
        self.progress.stop()
