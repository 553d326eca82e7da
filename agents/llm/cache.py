"""The response cache: a finished request is never sent twice.

autogen-ext's ``ChatCompletionCache`` keys only on the messages and per-call arguments: it ignores
the wrapped client's model, server and sampling settings, so a temperature-0 client can be served
an answer stored at temperature 1 (see ``shared/NOTES.md``). This cache keys on the **full
request** instead — backend kind, model (file name and size for a local GGUF), server URL,
every sampling argument including the per-call seed, the response format, and every message with
its role and sender — hashed with SHA-256. It is a single SQLite file, safe to share between
processes (sweep workers), and stores the reply text, finish reason and token usage.

Location: ``$HVAE_CACHE_DIR`` or ``~/.cache/hvae`` (``responses.sqlite``); a scenario's
``cache.path`` or ``hvae run --cache-dir`` override it, and ``--no-cache`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

DEFAULT_FILE = "responses.sqlite"


def default_cache_dir() -> Path:
    """``$HVAE_CACHE_DIR``, else ``$XDG_CACHE_HOME/hvae``, else ``~/.cache/hvae``."""
    if os.environ.get("HVAE_CACHE_DIR"):
        return Path(os.environ["HVAE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hvae"


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a full request description."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """A persistent key → reply store (SQLite, WAL mode, one connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix != ".sqlite":
            path = path / DEFAULT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._connection() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                "created REAL DEFAULT (julianday('now')))"
            )

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._connection().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._connection().execute(
            "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def __len__(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
