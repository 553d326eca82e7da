"""Atomic replacement: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import pytest

from hvae.files.atomic import replaced_atomically, temporary_name, write_bytes_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with replaced_atomically(target) as tmp:
            tmp.write_text("half a ta")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert not temporary_name(target).exists()


def test_a_finished_write_replaces_the_file(tmp_path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("{}")
    write_bytes_atomic(target, b'{"status": "complete"}', sync=True)
    assert target.read_bytes() == b'{"status": "complete"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
