"""The run store: one folder per run, written as the run goes.

Layout of a run folder::

    scenario.yaml          the resolved scenario (every default filled in; never secrets)
    summary.json           status (running / complete / interrupted / failed), counts, versions
    agents.parquet         one row per agent (rewritten with final figures at the end)
    menus.parquet          every menu's options (menu_id, option, self, other)
    network.parquet        the network's edges (u, v)
    decisions.parquet      one row per decision   } consolidated from parts/ when the run ends;
    rounds.parquet         per-round figures      } while it runs they live in parts/<table>/
    messages.parquet       pre-play talk, one row per message (only with communication.turns > 0)
    choice_counts.parquet  decisions per round, group, option and position shown (only with
                           records: {decisions: sample}, whose decisions.parquet holds a sample)
    checkpoint.json        the last checkpoint and its arrays file (hvae.simulation.checkpoint)
    .hvae.lock             while a process writes the folder (hvae.simulation.lock)

Rows are appended as part files (``parts/decisions/part-000003.parquet``) at least every
``output.flush_every`` rounds, each written to a temporary name and renamed, so a killed run
leaves only whole files behind. When the run ends (complete, interrupted or failed) the parts are
concatenated into the single ``<table>.parquet``; ``summary.json`` says which it was. Readers
(:mod:`hvae.analysis.runfolder`) accept either form, so a run killed with SIGKILL can still be
analysed.

:class:`MemoryStore` is the same store without a folder: a run played in memory (``hvae.Simulation
.run()`` with no ``out``) keeps its files as texts and its tables as pyarrow tables, consolidated the
same way, so the analysis reads the same rows from memory as from a folder
(:class:`hvae.analysis.rundata.MemoryRun`). It has nothing to lock, checkpoint or resume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hvae.files.atomic import replaced_atomically, write_bytes_atomic
from hvae.files.untrusted import UnsafeFile, check_regular, one_line, read_regular
from hvae.simulation.errors import RunFolderError

__all__ = ["PART_TABLES", "MemoryStore", "RunFolderError", "RunStore", "write_parquet_atomic"]

PART_TABLES = ("decisions", "rounds", "value_changes", "messages", "choice_counts")
#: Largest JSON file (``summary.json``) a store reads back.
MAX_JSON_BYTES = 64 << 20


def write_parquet_atomic(table: pa.Table, path: Path, **options: Any) -> None:
    """Write a parquet file under a temporary name, then rename it into place."""
    with replaced_atomically(path) as tmp:
        pq.write_table(table, tmp, **options)


#: Part files are short-lived: written fast (no compression, no statistics), merged at the end.
PART_OPTIONS: dict[str, Any] = {"compression": "none", "write_statistics": False}


class RunStore:
    """Writes one run folder, holding the folder's lock (:mod:`hvae.simulation.lock`) meanwhile.

    :meth:`create` makes a new folder (it refuses a non-empty one), :meth:`open` an existing one
    (to resume it); both take the lock, so a second writer is refused with one line naming the
    holder. :meth:`close` releases it.
    """

    def __init__(self, path: Path, lock: Any = None) -> None:
        self.path = Path(path)
        self._lock = lock
        self._part_counts = {name: len(self._parts(name)) for name in PART_TABLES}
        self.rows_written = {name: 0 for name in PART_TABLES}

    @classmethod
    def create(cls, path: str | Path, what: str = "run") -> RunStore:
        """A new run folder at ``path`` (created; an existing one must be empty), locked."""
        from hvae.simulation.lock import LOCK_FILE, FolderLock, check_unlocked

        path = Path(path)

        def used() -> bool:
            return any(entry.name != LOCK_FILE for entry in path.iterdir())

        if path.exists() and (not path.is_dir() or used()):
            if path.is_dir():
                check_unlocked(path)  # a live writer is named rather than "not empty"
            raise RunFolderError(
                f"{path} already exists and is not empty; choose another --out folder"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunFolderError(f"cannot create run folder {path}: {error.strerror}") from None
        lock = FolderLock.acquire(path, what)
        if used():  # another process wrote here between our check and our lock
            lock.release()
            raise RunFolderError(f"{path} already exists and is not empty; choose another --out folder")
        return cls(path, lock)

    @classmethod
    def open(cls, path: str | Path, what: str = "resume") -> RunStore:
        """The existing folder ``path``, locked for writing."""
        from hvae.simulation.lock import FolderLock

        path = Path(path)
        if not path.is_dir():
            raise RunFolderError(f"{path} is not a folder")
        return cls(path, FolderLock.acquire(path, what))

    def close(self) -> None:
        """Release the folder's lock (idempotent)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # ------------------------------------------------------------------ whole files
    def write_text(self, name: str, text: str) -> None:
        write_bytes_atomic(self.path / name, text.encode("utf-8"))

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        self.write_text(name, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        """A JSON file of the folder (a regular file of at most :data:`MAX_JSON_BYTES`; a mapping)."""
        path = self.path / name
        try:
            data = json.loads(read_regular(path, name, MAX_JSON_BYTES).decode("utf-8"))
        except (UnsafeFile, OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            raise RunFolderError(f"{path}: not a readable JSON file ({one_line(error, 120)})") from None
        if not isinstance(data, dict):
            raise RunFolderError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return data

    def file_size(self, name: str) -> int:
        """Size of a regular file of the folder (0 when it does not exist)."""
        try:
            return check_regular(self.path / name, name)
        except FileNotFoundError:
            return 0
        except UnsafeFile as error:
            raise RunFolderError(str(error)) from None

    def byte_at(self, name: str, offset: int) -> bytes:
        """One byte of a regular file of the folder."""
        with open(self.path / name, "rb") as handle:
            handle.seek(offset)
            return handle.read(1)

    def write_table(self, name: str, table: pa.Table) -> None:
        write_parquet_atomic(table, self.path / f"{name}.parquet")

    def write_frame(self, name: str, frame: Any) -> None:
        """Write a pandas DataFrame as ``<name>.parquet`` (atomically)."""
        self.write_table(name, pa.Table.from_pandas(frame, preserve_index=False))

    # ------------------------------------------------------------------ appended tables
    def _parts_dir(self, name: str) -> Path:
        return self.path / "parts" / name

    def _parts(self, name: str) -> list[Path]:
        folder = self._parts_dir(name)
        return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []

    def _pieces(self, name: str) -> list[Path]:
        """The consolidated file and part files of table ``name`` in order, each checked to be a regular file."""
        whole = self.path / f"{name}.parquet"
        paths = ([whole] if whole.exists() or whole.is_symlink() else []) + self._parts(name)
        for path in paths:
            try:
                check_regular(path, f"{name} table file")
            except UnsafeFile as error:
                raise RunFolderError(str(error)) from None
        return paths

    def round_column(self, name: str) -> np.ndarray | None:
        """The ``round`` column of table ``name`` in row order (None when the folder has no rows of it)."""
        pieces = self._pieces(name)
        if not pieces:
            return None
        try:
            columns = [pq.read_table(p, columns=["round"]).column("round").to_numpy() for p in pieces]
        except (OSError, ValueError, KeyError, pa.ArrowException) as error:
            raise RunFolderError(f"{self.path}: its {name} table cannot be read ({one_line(error, 120)})") from None
        return np.concatenate(columns) if columns else np.zeros(0, np.int64)

    def append(self, name: str, table: pa.Table) -> None:
        """Append rows to table ``name`` as a new part file (no-op for an empty table)."""
        if table.num_rows == 0:
            return
        folder = self._parts_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        self._part_counts[name] += 1
        self.rows_written[name] = self.rows_written.get(name, 0) + table.num_rows
        write_parquet_atomic(
            table.combine_chunks(), folder / f"part-{self._part_counts[name]:06d}.parquet", **PART_OPTIONS
        )

    def truncate_tables(self, rows: dict[str, int], schemas: dict[str, pa.Schema]) -> None:
        """Keep only the first ``rows[name]`` rows of each table (consolidated + parts).

        Used on resume: rows written after the last checkpoint are cut away so the round they
        belong to can be played again without duplicates.
        """
        for name, keep in rows.items():
            target = self.path / f"{name}.parquet"
            pieces = [pq.read_table(p) for p in self._pieces(name)]
            if not pieces and keep == 0:
                continue  # a table this run never wrote (messages without talk) stays absent
            table = pa.concat_tables([p.cast(schemas[name]) for p in pieces]) if pieces else schemas[name].empty_table()
            if table.num_rows < keep:
                raise RunFolderError(
                    f"{self.path}: {name} has {table.num_rows} rows but the checkpoint recorded {keep}; "
                    "the run folder was changed by hand"
                )
            write_parquet_atomic(table.slice(0, keep), target)
            shutil.rmtree(self._parts_dir(name), ignore_errors=True)
            self._part_counts[name] = 0
            self.rows_written[name] = keep

    def has_rows(self, name: str) -> bool:
        """Whether table ``name`` has a consolidated file or part files."""
        return (self.path / f"{name}.parquet").exists() or bool(self._parts(name))

    def consolidate(self, name: str, schema: pa.Schema) -> int:
        """Concatenate the parts of ``name`` into ``<name>.parquet``; return the row count."""
        parts = self._parts(name)
        target = self.path / f"{name}.parquet"
        if not parts and target.exists():
            return pq.ParquetFile(target).metadata.num_rows
        rows = 0
        with replaced_atomically(target) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            if target.exists():  # earlier consolidated rows (a resumed run) come first
                for batch in pq.ParquetFile(target).iter_batches():
                    writer.write_batch(batch)
                    rows += batch.num_rows
            for part in parts:
                table = pq.read_table(part, schema=schema)
                writer.write_table(table)
                rows += table.num_rows
        shutil.rmtree(self._parts_dir(name), ignore_errors=True)
        self._part_counts[name] = 0
        parts_root = self.path / "parts"
        if parts_root.is_dir() and not any(parts_root.iterdir()):
            parts_root.rmdir()
        return rows


class MemoryStore:
    """The run store's writing interface, kept in memory: no folder, no lock, no checkpoint.

    Whole files are kept as text (``texts["summary.json"]``), tables as pyarrow tables
    (``tables["decisions"]``); appended rows are held as parts until :meth:`consolidate`, which
    casts and concatenates them as :meth:`RunStore.consolidate` does into one parquet file.
    """

    path: None = None  # nothing on disk: the runner skips checkpoints and transcripts

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.tables: dict[str, pa.Table] = {}
        self._parts: dict[str, list[pa.Table]] = {name: [] for name in PART_TABLES}
        self.rows_written = {name: 0 for name in PART_TABLES}

    def close(self) -> None:
        """Nothing to release (the store holds no lock)."""

    def write_text(self, name: str, text: str) -> None:
        self.texts[name] = text

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        self.write_text(name, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        return json.loads(self.texts[name])

    def write_table(self, name: str, table: pa.Table) -> None:
        self.tables[name] = table

    def write_frame(self, name: str, frame: Any) -> None:
        self.write_table(name, pa.Table.from_pandas(frame, preserve_index=False))

    def append(self, name: str, table: pa.Table) -> None:
        """Append rows to table ``name`` (no-op for an empty table)."""
        if table.num_rows == 0:
            return
        self._parts.setdefault(name, []).append(table.combine_chunks())
        self.rows_written[name] = self.rows_written.get(name, 0) + table.num_rows

    def has_rows(self, name: str) -> bool:
        return name in self.tables or bool(self._parts.get(name))

    def consolidate(self, name: str, schema: pa.Schema) -> int:
        """Concatenate the parts of ``name`` (cast to ``schema``) after its earlier rows; return the row count."""
        pieces = [self.tables[name]] if name in self.tables else []
        pieces += [part.cast(schema) for part in self._parts.get(name, [])]
        self._parts[name] = []
        self.tables[name] = pa.concat_tables(pieces).combine_chunks() if pieces else schema.empty_table()
        return self.tables[name].num_rows
