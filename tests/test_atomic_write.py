"""Atomic writes: the new contents replace the file whole, a failed write leaves it as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.atomic import atomic_write


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "data.bin"
    with atomic_write(path, "wb") as handle:
        handle.write(b"first")
    with atomic_write(path, "wb") as handle:
        handle.write(b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["data.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="generator failed"), atomic_write(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("generator failed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.txt"]
