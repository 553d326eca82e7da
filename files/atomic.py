"""Replacing a file atomically: write a temporary file next to it, then rename it into place.

A reader (a report, a resume, a sweep reading its table) sees either the old file or the new one,
never half of one: the content goes to ``.<name>.tmp`` in the same folder and ``os.replace``
swaps it in. ``sync=True`` also forces the bytes to disk before the swap (checkpoints must
survive a power cut, not only a killed process). If the writing fails, the temporary file is
removed and the target is untouched::

    with replaced_atomically(path) as tmp:
        table.to_csv(tmp, index=False)
    write_bytes_atomic(path / "summary.json", data)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(target: Path) -> Path:
    """Where the new content of ``target`` is written before it replaces ``target``."""
    return target.with_name(f".{target.name}.tmp")


@contextmanager
def replaced_atomically(target: str | Path, sync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` (fsynced first if ``sync``)."""
    target = Path(target)
    tmp = temporary_name(target)
    try:
        yield tmp
        if sync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | Path, data: bytes, sync: bool = False) -> None:
    """Replace ``target`` with ``data`` atomically."""
    with replaced_atomically(target, sync=sync) as tmp:
        tmp.write_bytes(data)
