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
