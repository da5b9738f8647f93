"""The COCO converter on a small COCO JSON: ids, crowd boxes, class order, empty images."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeyolo.cli import main
from edgeyolo.data import DetectionDataset, convert_coco, load_data_config

CATEGORIES = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 4, "name": "motorcycle"},
              {"id": 6, "name": "bus"}, {"id": 8, "name": "truck"}, {"id": 10, "name": "traffic light"}]


def _ann(aid: int, image_id: int, cat: int, bbox: list[float], crowd: int = 0) -> dict:
    return {"id": aid, "image_id": image_id, "category_id": cat, "bbox": bbox, "iscrowd": crowd,
            "area": bbox[2] * bbox[3]}


@pytest.fixture()
def coco(tmp_path: Path) -> tuple[Path, Path]:
    """4 images of 200x100: #1 car + motorcycle + truck + a crowd car, #2 person only,
    #3 bus + a zero-width box, #4 listed but missing from the folder (background)."""
    images = tmp_path / "val2017"
    images.mkdir()
    for i in (1, 2, 3):
        cv2.imwrite(str(images / f"{i:012d}.jpg"), np.zeros((100, 200, 3), np.uint8))
    data = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 200, "height": 100} for i in (3, 1, 2, 4)],
        "annotations": [
            _ann(1, 1, 3, [10, 20, 40, 30]),  # car
            _ann(2, 1, 4, [100, 0, 50, 100]),  # motorcycle
            _ann(3, 1, 8, [150, 50, 60, 60]),  # truck, overflowing the image: clipped to 150..200, 50..100
            _ann(4, 1, 3, [0, 0, 200, 100], crowd=1),  # crowd car: skipped
            _ann(5, 2, 1, [10, 10, 20, 20]),  # person: not selected
            _ann(6, 3, 6, [0, 0, 100, 50]),  # bus
            _ann(7, 3, 6, [50, 50, 0, 10]),  # zero width: skipped
        ],
        "categories": CATEGORIES,
    }
    ann = tmp_path / "instances_val2017.json"
    ann.write_text(json.dumps(data))
    return ann, images


def _labels(out: Path, split: str, image_id: int) -> list[list[float]]:
    text = (out / "labels" / split / f"{image_id:012d}.txt").read_text()
    return [[float(v) for v in line.split()] for line in text.splitlines()]


def test_seed_classes_default_order(coco: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = coco
    out = tmp_path / "out"
    r = convert_coco(ann, images, out)
    assert (r.split, r.images, r.empty, r.boxes, r.crowd, r.bad_boxes, r.dropped) == ("val2017", 3, 1, 4, 1, 1, 0)
    assert r.missing == ["000000000004.jpg"]
    assert r.per_class == {"motorcycle": 1, "car": 1, "bus": 1, "truck": 1}
    # motorcycle 0, car 1, bus 2, truck 3 (the seeds' order, not COCO's ids)
    np.testing.assert_allclose(_labels(out, "val2017", 1), [[1, 0.15, 0.35, 0.2, 0.3], [0, 0.625, 0.5, 0.25, 1.0],
                                                            [3, 0.875, 0.75, 0.25, 0.5]], atol=1e-6)
    assert _labels(out, "val2017", 2) == []  # kept, as background
    np.testing.assert_allclose(_labels(out, "val2017", 3), [[2, 0.25, 0.25, 0.5, 0.5]], atol=1e-6)
    img = out / "images/val2017/000000000001.jpg"
    assert img.is_symlink() and img.resolve() == (images / "000000000001.jpg").resolve()
    cfg = load_data_config(r.yaml_path)
    assert cfg.names == ["motorcycle", "car", "bus", "truck"]
    assert cfg.train == cfg.val == [(out / "images/val2017").resolve()]  # a lone split serves as both
    ds = DetectionDataset(cfg, "val", 64, augment=False)
    assert len(ds) == 3 and ds.report == [] and sum(len(lb) for lb in ds.labels) == 4


def test_custom_classes_drop_empty_copy(coco: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = coco
    out = tmp_path / "out"
    r = convert_coco(ann, images, out, classes="bus, person", keep_empty=False, mode="copy", split="train")
    assert (r.images, r.empty, r.boxes, r.dropped) == (2, 0, 2, 2)  # #1 (car/moto/truck) and #4 dropped
    assert sorted(p.name for p in (out / "labels/train").iterdir()) == ["000000000002.txt", "000000000003.txt"]
    assert _labels(out, "train", 2)[0][0] == 1 and _labels(out, "train", 3)[0][0] == 0
    assert not (out / "images/train/000000000002.jpg").is_symlink()
    # a second split into the same folder: the YAML lists both
    convert_coco(ann, images, out, classes=["bus", "person"], split="val")
    cfg = load_data_config(out / "data.yaml")
    assert cfg.train == [(out / "images/train").resolve()] and cfg.val == [(out / "images/val").resolve()]
    with pytest.raises(ValueError, match=r"already holds classes \['bus', 'person'\], not \['car'\]"):
        convert_coco(ann, images, out, classes="car", split="other")


def test_unknown_class_lists_valid_names(coco: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = coco
    with pytest.raises(ValueError) as e:
        convert_coco(ann, images, tmp_path / "out", classes="car,cars,plane")
    msg = str(e.value)
    assert msg.startswith(f"{ann}: unknown COCO class name(s) cars, plane; valid names: ")
    assert msg.endswith("person, car, motorcycle, bus, truck, traffic light")


def test_not_coco_and_no_images(coco: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = coco
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(ValueError, match="not a COCO instances file"):
        convert_coco(bad, images, tmp_path / "o1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="none of the 4 images of instances_val2017.json found there"):
        convert_coco(ann, empty, tmp_path / "o2")


def test_cli(coco: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann, images = coco
    out = tmp_path / "out"
    main(["data", "coco", "--ann", str(ann), "--images", str(images), "--out", str(out)])
    text = capsys.readouterr()
    assert "val2017: 3 images (1 without objects), 4 boxes; skipped 1 crowd and 1 zero-size boxes" in text.out
    assert f"wrote {out / 'data.yaml'}" in text.out and "1 images not found" in text.err
    with pytest.raises(SystemExit) as e:
        main(["data", "coco", "--ann", str(ann), "--images", str(images), "--out", str(out), "--classes", "lorry"])
    assert e.value.code == 1 and "edgeyolo: error:" in capsys.readouterr().err


def test_converting_in_place_keeps_the_images(coco: tuple[Path, Path], tmp_path: Path) -> None:
    """YOLOv5's layout converts into the folder that holds the images (coco/images/val2017 with
    --out coco): the images must survive, in every mode."""
    ann, images = coco
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    in_place = root / "images" / "val2017"
    images.rename(in_place)
    before = (in_place / "000000000001.jpg").read_bytes()
    for mode in ("symlink", "hardlink", "copy"):
        r = convert_coco(ann, in_place, root, mode=mode)
        img = in_place / "000000000001.jpg"
        assert not img.is_symlink() and img.read_bytes() == before, mode
        assert r.images == 3 and cv2.imread(str(img)) is not None


def test_split_names_train_and_val_never_overlap(coco: tuple[Path, Path], tmp_path: Path) -> None:
    """COCO 2014's trainval35k is a training split: it must not also be listed as val."""
    ann, images = coco
    out = tmp_path / "out"
    convert_coco(ann, images, out, split="trainval35k")
    convert_coco(ann, images, out, split="minival2014")
    cfg = load_data_config(out / "data.yaml")
    assert cfg.train == [(out / "images/trainval35k").resolve()]
    assert cfg.val == [(out / "images/minival2014").resolve()]
