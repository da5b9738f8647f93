"""The synthetic set: deterministic files, valid labels, atomic cached generation."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgeyolo.data.synthetic as synthetic
from edgeyolo.cli import main
from edgeyolo.data import generate_synthetic, load_data_config, scan_split, synthetic_data_yaml


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".cache")}


def test_deterministic_files(tmp_path: Path) -> None:
    a = generate_synthetic(tmp_path / "a", n_train=6, n_val=2, imgsz=96, seed=3).parent
    b = generate_synthetic(tmp_path / "b", n_train=6, n_val=2, imgsz=96, seed=3).parent
    c = generate_synthetic(tmp_path / "c", n_train=6, n_val=2, imgsz=96, seed=4).parent
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert len(ha) == 1 + 2 * 8 and ha == hb
    assert ha["images/train/000000.jpg"] != hc["images/train/000000.jpg"]
    # an image depends only on (seed, split, index): a bigger set starts with the same files
    d = generate_synthetic(tmp_path / "d", n_train=9, n_val=2, imgsz=96, seed=3).parent
    assert all(_hashes(d)[k] == v for k, v in ha.items() if k != "data.yaml")


def test_labels_valid_and_varied(tmp_path: Path) -> None:
    cfg = load_data_config(generate_synthetic(tmp_path / "s", n_train=40, n_val=4, imgsz=128))
    assert cfg.names == ["motorcycle", "car", "bus", "truck"]
    scan = scan_split(cfg, "train", log=False)
    assert scan.problems == [] and len(scan.im_files) == 40
    counts = [len(lb) for lb in scan.labels]
    assert min(counts) >= 1 and max(counts) <= 6
    allb = np.concatenate(scan.labels)
    assert set(allb[:, 0].astype(int)) == {0, 1, 2, 3}
    assert allb[:, 3:].min() * 96 >= 8  # objects are not tiny (>= 8 px at the short side 96)
    assert len({tuple(s) for s in scan.shapes}) > 1  # several image aspect ratios
    ar = allb[:, 3] / allb[:, 4] * np.array([w / h for (h, w), lb in zip(scan.shapes, scan.labels) for _ in lb])
    for cls, (lo, hi) in {0: (1.0, 1.6), 2: (2.0, 3.1)}.items():  # class-specific aspect ranges
        assert lo <= ar[allb[:, 0] == cls].min() and ar[allb[:, 0] == cls].max() <= hi


def test_objects_fill_their_boxes(tmp_path: Path) -> None:
    """Drawn on a flat background, every object's saturated pixels span its label box (+-1 px)."""
    rng = np.random.default_rng(0)
    for cls in range(4):
        img = np.full((120, 200, 3), 128, np.uint8)
        bw, bh = synthetic.shapes.object_size(rng, cls, 120, 200)
        box = (30, 20, 30 + bw, 20 + bh)
        synthetic.shapes.draw_object(img, rng, cls, box)
        ys, xs = np.nonzero((np.abs(img.astype(int) - 128).max(2) > 40))
        assert abs(xs.min() - box[0]) <= 1 and abs(xs.max() + 1 - box[2]) <= 1, cls
        assert abs(ys.min() - box[1]) <= 1 and abs(ys.max() + 1 - box[3]) <= 1, cls


def test_cached_yaml_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEYOLO_CACHE", str(tmp_path / "cache"))
    y1 = synthetic_data_yaml(n_train=4, n_val=2, imgsz=64)
    assert y1 == tmp_path / "cache/synth-v1-64px-4-2-s0/data.yaml" and y1.is_file()
    mtime = y1.stat().st_mtime_ns
    assert synthetic_data_yaml(n_train=4, n_val=2, imgsz=64) == y1 and y1.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["synth-v1-64px-4-2-s0"]  # no temp left
    assert synthetic_data_yaml(tmp_path / "other", n_train=4, n_val=2, imgsz=64).parent.parent == tmp_path / "other"


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = synthetic._write_one

    def flaky(*args: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(synthetic, "_write_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        synthetic_data_yaml(tmp_path, n_train=4, n_val=2, imgsz=64)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synthetic, "_write_one", real)
    assert synthetic_data_yaml(tmp_path, n_train=4, n_val=2, imgsz=64).is_file()


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    main(["data", "synth", "--out", str(out), "--train", "3", "--val", "1", "--imgsz", "64", "--seed", "1"])
    assert f"wrote {out / 'data.yaml'}" in capsys.readouterr().out
    assert len(list((out / "images/train").iterdir())) == 3
    assert cv2.imread(str(out / "images/val/000000.jpg")).shape[1] in (48, 64)
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(out), "--train", "3", "--val", "1", "--imgsz", "64"])
    assert "exists and is not empty (pass --force" in capsys.readouterr().err
