"""Atomic writes: the destination is whole or untouched, temporaries never stay behind."""
from __future__ import annotations

import pytest

from edgeyolo.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_replaces_whole_and_leaves_no_temporary(tmp_path) -> None:
    p = tmp_path / "sub" / "report.json"
    atomic_write_text(p, "old")
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and sorted(x.name for x in p.parent.iterdir()) == ["report.json"]
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_failed_write_keeps_the_previous_file(tmp_path) -> None:
    p = tmp_path / "model.onnx"
    p.write_text("previous")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_path(p) as tmp:
            assert tmp.parent == p.parent and tmp.suffix == ".onnx"  # writers that infer the format from it
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert p.read_text() == "previous" and [x.name for x in tmp_path.iterdir()] == ["model.onnx"]


def test_written_files_get_the_umask_mode(tmp_path) -> None:
    """mkstemp creates 0600 files: renamed into place as they are, checkpoints and results would be
    unreadable to the group/others a plain open() lets read them."""
    import stat

    p = atomic_write_text(tmp_path / "r.csv", "x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(p.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) != 0o600
