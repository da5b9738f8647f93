"""Real-data builder: tiling windows, boxes cut at tile borders, the area split, and each reader on
an archive laid out like its package's (made here: no network in tests)."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeyolo.data import load_data_config, scan_split
from edgeyolo.data.real import build_real_dataset
from edgeyolo.data.real_sources import SOURCES, boxes_from_instances, decode, read_member
from edgeyolo.data.tiling import crop_boxes, overlapping_windows, partition_windows


def test_overlapping_windows_cover_the_region() -> None:
    wins = overlapping_windows(700, 300, 256, 64)
    assert {w[0] for w in wins} == {0, 192, 384, 444} and {w[1] for w in wins} == {0, 44}
    assert all(x1 - x0 == 256 and y1 - y0 == 256 for x0, y0, x1, y1 in wins)
    cover = np.zeros((300, 700), bool)
    for x0, y0, x1, y1 in wins:
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    assert overlapping_windows(100, 80, 256, 64) == [(0, 0, 100, 80)]  # smaller than a tile: one window
    with pytest.raises(ValueError, match=r"overlap must be in \[0, tile\)"):
        overlapping_windows(700, 300, 256, 256)


def test_partition_windows_split_exactly() -> None:
    wins = partition_windows(700, 170, 320)
    counts = np.zeros((170, 700), int)
    for x0, y0, x1, y1 in wins:
        assert x1 - x0 <= 320 and y1 - y0 <= 320
        counts[y0:y1, x0:x1] += 1
    assert (counts == 1).all() and len(wins) == 3


def test_crop_boxes_keeps_halves_drops_slivers() -> None:
    boxes = np.array([[10, 10, 30, 30],     # inside
                      [90, 10, 110, 30],    # half in a 100 px window
                      [97, 97, 117, 117],   # a corner sliver: 3x3 px of 20x20
                      [150, 10, 170, 30]])  # outside
    kept, idx = crop_boxes(boxes, (0, 0, 100, 100))
    assert idx.tolist() == [0, 1]
    np.testing.assert_allclose(kept, [[10, 10, 30, 30], [90, 10, 100, 30]])
    kept, idx = crop_boxes(boxes, (100, 0, 200, 100))  # window coordinates are relative to its corner
    np.testing.assert_allclose(kept, [[0, 10, 10, 30], [50, 10, 70, 30]])


def test_decode_stretches_16_bit_grey_to_bgr() -> None:
    img = np.linspace(1000, 5000, 64 * 64).reshape(64, 64).astype(np.uint16)
    ok, buf = cv2.imencode(".tif", img)
    out = decode(buf.tobytes(), "x.tif")
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255 and (out[..., 0] == out[..., 2]).all()
    with pytest.raises(ValueError, match="x.png: OpenCV cannot decode it"):
        decode(b"not an image", "x.png")


def test_boxes_from_instances() -> None:
    mask = np.zeros((20, 30), np.uint16)
    mask[2:5, 3:9] = 1
    mask[10:19, 20:21] = 7
    np.testing.assert_array_equal(boxes_from_instances(mask), [[3, 2, 9, 5], [20, 10, 21, 19]])


def _craters_archive(tmp: Path, rng: np.random.Generator) -> tuple[Path, np.ndarray]:
    """A pycda-like source archive: a 600x600 grey image with bright discs and their CSV."""
    img = np.full((600, 600), 60, np.uint8)
    rows = []
    for _ in range(40):
        x, y, d = rng.uniform(20, 580), rng.uniform(20, 580), rng.uniform(8, 30)
        cv2.circle(img, (int(x), int(y)), int(d / 2), 200, -1)
        rows.append((x, y, d))
    ok, pgm = cv2.imencode(".pgm", img)
    csv = "long,lat,diameter\n" + "".join(f"{x},{y},{d}\n" for x, y, d in rows)
    path = tmp / "pycda-0.1.16.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for name, data in (("pycda-0.1.16/pycda/sample_imgs/holdout_tile.pgm", pgm.tobytes()),
                           ("pycda-0.1.16/pycda/sample_imgs/holdout_tile_labels.csv", csv.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path, np.array(rows)


def test_build_craters_split_by_area(tmp_path: Path) -> None:
    archive, rows = _craters_archive(tmp_path, np.random.default_rng(0))
    rep = build_real_dataset("craters", tmp_path / "ds", tile=160, overlap=0.25, val_fraction=0.25, archive=archive)
    cfg = load_data_config(tmp_path / "ds" / "data.yaml")
    assert cfg.names == ["crater"]
    train, val = scan_split(cfg, "train", log=False), scan_split(cfg, "val", log=False)
    assert not train.problems and not val.problems
    assert rep.tiles == {"train": len(train.im_files), "val": len(val.im_files)}
    assert rep.boxes["val"] == sum(len(lb) for lb in val.labels)
    # the val band is the bottom 150 rows, split without overlap: each crater inside it once
    inside_val = ((rows[:, 1] - rows[:, 2] / 2) >= 450).sum()
    assert rep.boxes["val"] >= inside_val
    assert sum(cv2.imread(f).shape[0] * cv2.imread(f).shape[1] for f in val.im_files) == 150 * 600
    # a label drawn back onto its tile covers a bright disc
    f, lb = next((f, lb) for f, lb in zip(train.im_files, train.labels) if len(lb))
    tile = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
    h, w = tile.shape
    cx, cy = int(lb[0][1] * w), int(lb[0][2] * h)
    assert tile[min(cy, h - 1), min(cx, w - 1)] > 128
    with pytest.raises(ValueError, match="already exists"):
        build_real_dataset("craters", tmp_path / "ds", archive=archive)


def test_stardist_reader_and_errors(tmp_path: Path) -> None:
    img = (np.random.default_rng(1).uniform(0, 300, (64, 64))).astype(np.uint16)
    mask = np.zeros((64, 64), np.uint16)
    mask[5:15, 5:20], mask[30:40, 40:60] = 1, 2
    whl = tmp_path / "stardist-0.9.2-cp311-cp311-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("stardist/data/images/img2d.tif", cv2.imencode(".tif", img)[1].tobytes())
        z.writestr("stardist/data/images/mask2d.tif", cv2.imencode(".tif", mask)[1].tobytes())
    (scene, boxes), = SOURCES["nuclei"].read(whl)
    assert scene.shape == (64, 64, 3)
    np.testing.assert_array_equal(boxes, [[5, 5, 20, 15], [40, 30, 60, 40]])
    with pytest.raises(ValueError, match=r"stardist-0.9.2.*has no file ending in 'nope'"):
        read_member(whl, "nope")
    with pytest.raises(ValueError, match="unknown real data set 'moon'"):
        build_real_dataset("moon", tmp_path / "x")
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0.05, 0.5\]"):
        build_real_dataset("nuclei", tmp_path / "x", val_fraction=0.9, archive=whl)


def test_sahi_reader(tmp_path: Path) -> None:
    ann = {"images": [{"id": 1, "file_name": "terrain2.png"}],
           "annotations": [{"bbox": [10, 20, 30, 40], "image_id": 1}], "categories": [{"id": 1, "name": "car"}]}
    arc = tmp_path / "sahi-0.12.8.tar.gz"
    with tarfile.open(arc, "w:gz") as t:
        for name, data in (("sahi-0.12.8/demo/demo_data/terrain2.png", cv2.imencode(".png", np.zeros((50, 60, 3), np.uint8))[1].tobytes()),
                           ("sahi-0.12.8/demo/demo_data/terrain2_coco.json", json.dumps(ann).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    (scene, boxes), = SOURCES["cars-smoke"].read(arc)
    assert scene.shape == (50, 60, 3)
    np.testing.assert_array_equal(boxes, [[10, 20, 40, 60]])
