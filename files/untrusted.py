"""Untrusted input: text to quote on one terminal line, and files to read without hanging.

Run folders, network files and backend replies come from outside — a co-author's folder, a paper's
attachment, a server that answers anything. Two rules keep such input harmless, and this module is
the one place both live:

* **Quoting.** Everything quoted from outside (an error body, a model's reply, a line of a file, a
  name from a folder) goes through :func:`one_line` before it reaches an error line, a warning or a
  progress bar: escape sequences (``ESC [31m``, ``ESC ]0;title BEL``) are removed whole, other control
  characters (newlines included) become spaces, and the text is cut to a length, so a "one line"
  error stays one line and a terminal never receives live escape codes::

      >>> one_line("boom\\n\\x1b[31mred\\x1b[0m \\x1b]0;pwned\\x07done")
      'boom red done'
      >>> one_line("x" * 500, limit=10)
      'xxxxxxxxx…'

* **Reading.** A file named by a folder is opened only if it is a regular file (a FIFO would block
  forever, a symlink to ``/dev/zero`` never ends) and no larger than a bound the caller states, all
  checked on the open descriptor before a byte is read (:func:`read_regular`, :func:`check_regular`).
  Problems are :class:`UnsafeFile` errors, one line each.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

__all__ = ["UnsafeFile", "check_regular", "one_line", "read_regular"]

#: Longest text quoted from outside in one message (characters).
QUOTE_LIMIT = 300

# Whole escape sequences first (CSI ``ESC [ … final``, OSC ``ESC ] … BEL|ESC \``, other ``ESC x``),
# then any remaining C0/C1 control character or DEL.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (terminated or not)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x9d[^\x07\x1b]*(?:\x07|\x1b\\)?"  # 8-bit OSC
    r"|\x1b[@-_]?"  # any other escape
)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``text`` safe to print on one line: no escape sequences or control characters, at most ``limit`` characters."""
    clean = _CONTROLS.sub(" ", _ESCAPES.sub("", str(text)))
    clean = re.sub(r" {2,}", " ", clean).strip()
    if len(clean) > limit:
        clean = clean[: max(limit - 1, 0)] + "…"
    return clean


class UnsafeFile(ValueError):
    """A file that is not a regular file, or larger than allowed (one line, names the file)."""


def _describe(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _check(status: os.stat_result, path: Path, what: str, max_bytes: int | None) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise UnsafeFile(f"{what} {path} is {_describe(status.st_mode)}, not a regular file")
    if max_bytes is not None and status.st_size > max_bytes:
        raise UnsafeFile(f"{what} {path} is {status.st_size:,} bytes, more than the {max_bytes:,} allowed")


def check_regular(path: str | Path, what: str = "file", max_bytes: int | None = None) -> int:
    """Raise :class:`UnsafeFile` unless ``path`` is a regular file of at most ``max_bytes``; return its size.

    Symbolic links are followed (a link to a regular file is fine; a link to a device is not).
    A missing file raises :class:`FileNotFoundError`, as :func:`open` would.
    """
    path = Path(path)
    status = os.stat(path)
    _check(status, path, what, max_bytes)
    return status.st_size


def read_regular(path: str | Path, what: str = "file", max_bytes: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes`` (checked before reading).

    The file is opened non-blocking (a FIFO cannot stall the open) and checked on its descriptor,
    so the file checked is the file read; at most ``max_bytes`` are read even if it grows meanwhile.

    Raises:
        UnsafeFile: not a regular file, or too large.
        OSError: it cannot be opened (``FileNotFoundError`` when missing).
    """
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        _check(status, path, what, max_bytes)
        os.set_blocking(fd, True)
        budget = status.st_size if max_bytes is None else min(status.st_size, max_bytes)
        chunks, left = [], budget
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
