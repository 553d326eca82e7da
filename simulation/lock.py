"""One writer per folder: an OS lock held while a process writes a run or sweep folder.

Run folders travel between terminals, colleagues and cluster nodes, and two processes writing
one folder (``hvae run --resume DIR`` while the run in DIR is still going, or the same ``--out``
twice) interleave part files and checkpoints. Every process that writes a folder therefore holds
an exclusive :func:`fcntl.flock` lock on ``DIR/.hvae.lock`` for as long as it writes, and a
second writer is refused at once with one line naming the holder::

    with FolderLock.acquire(run_dir, "run"):
        ...                      # write the folder
    # FolderLocked: runs/demo is being written by another hvae process
    #   (resume, pid 4711 on node07 since 2026-11-30T10:02:11+00:00)

The lock belongs to the open file, not to the file's existence: the kernel drops it when the
holding process ends in any way (exit, crash, SIGKILL, out of memory), so a lock file left behind
by a dead process never blocks anyone — the next writer just takes the lock and overwrites the
holder record. The file holds that record (pid, host, what, since) as JSON, only for the message.
On a clean release the file is removed; a writer that opened the file just before it was removed
notices (the path no longer names the inode it locked) and tries again, so two writers can never
both hold a lock. On network filesystems the lock works where the filesystem supports ``flock``
(Linux maps it to NFS byte-range locks on NFSv4); on one that does not, it guards only processes
on the same machine.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from hvae.files.untrusted import one_line
from hvae.simulation.errors import RunFolderError

LOCK_FILE = ".hvae.lock"


class FolderLocked(RunFolderError):
    """Another live process holds the folder's lock; the message names it."""


def _holder_text(fd: int | None, path: Path) -> str:
    """What the lock file says about its holder, as ``what, pid N on HOST since T``."""
    try:
        if fd is not None:
            raw = os.pread(fd, 4096, 0)
        else:
            raw = path.read_bytes()[:4096]
        record = json.loads(raw.decode("utf-8"))
        return one_line(  # the record is the folder's: quoted, never trusted as terminal text
            f"{record.get('what', 'hvae')}, pid {int(record['pid'])} on {record.get('host', '?')} "
            f"since {record.get('since', '?')}",
            limit=200,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _refusal(folder: Path, holder: str) -> FolderLocked:
    return FolderLocked(
        f"{folder} is being written by another hvae process ({holder}); wait for it to finish or "
        "stop it — only one process may write a folder at a time"
    )


class FolderLock:
    """An exclusive lock on one folder, held until :meth:`release` (see the module docstring)."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd
        self._owner = os.getpid()  # a forked child shares the lock but never removes it

    @classmethod
    def acquire(cls, folder: str | Path, what: str) -> FolderLock:
        """Lock ``folder`` (which must exist) for writing, as ``what`` (``run``, ``resume``, ``sweep``).

        Raises:
            FolderLocked: another live process holds the lock.
            RunFolderError: the lock file cannot be created (e.g. a read-only folder).
        """
        folder = Path(folder)
        path = folder / LOCK_FILE
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
            except OSError as error:
                raise RunFolderError(f"cannot lock {folder}: {LOCK_FILE}: {error.strerror}") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device planted as the lock file
                os.close(fd)
                raise RunFolderError(f"cannot lock {folder}: {LOCK_FILE} is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = _holder_text(fd, path)
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _refusal(folder, holder) from None
                raise RunFolderError(f"cannot lock {folder}: {error.strerror}") from None
            if _same_file(fd, path):
                break
            os.close(fd)  # the holder removed the file while we opened it: lock the new one
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "what": what,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        return cls(folder, fd)

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.getpid() == self._owner:
                (self.folder / LOCK_FILE).unlink(missing_ok=True)  # while still locked: no one else has it
        except OSError:
            pass
        finally:
            os.close(fd)  # the flock is dropped when the last descriptor of the open file closes

    def __del__(self) -> None:  # a lock that is no longer referenced is released, as files are
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def check_unlocked(folder: str | Path) -> None:
    """Raise :class:`FolderLocked` if a live process holds ``folder``'s lock (creates nothing)."""
    folder = Path(folder)
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as error:
        raise RunFolderError(f"cannot check the lock of {folder}: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise _refusal(folder, _holder_text(fd, path)) from None
    finally:
        os.close(fd)
