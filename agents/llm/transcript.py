"""Transcripts: every LLM request and response of a run, one JSON object a line.

``transcripts.jsonl`` in the run folder gets one record per model call (cache hits included):
agent, group, round, phase (``value``, ``goal``, ``decision``, ``reask``), attempt, the messages
sent (role and text), the sampling settings, the reply, finish reason, tokens, latency, whether it
came from the cache, retries and any error. Credentials are never part of a record: API keys live
only in the environment and in the HTTP client, never in the request description.

    >>> import io, json
    >>> sink = io.StringIO(); TranscriptWriter(sink).write({"phase": "decision"})
    >>> json.loads(sink.getvalue())["phase"]
    'decision'
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any


class TranscriptWriter:
    """Appends JSON lines to a file (or any text stream), flushing each record."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")
            self._owns = True
        else:
            self._stream = target
            self._owns = False
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._owns and not self._stream.closed:
            self._stream.close()
