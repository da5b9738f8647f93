"""benchmarks/studies/common_scorer.py: a peer's COCO-format detections scored by edgeyolo's
scorer against the YOLO labels of the validation split."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture()
def data_yaml(tmp_path: Path) -> Path:
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        for stem, (h, w) in (("a", (100, 200)), ("b", (80, 80))):
            cv2.imwrite(str(tmp_path / "images" / split / f"{stem}.png"), np.zeros((h, w, 3), np.uint8))
        # a: one box 20..60 x 10..50 of class 1; b: none
        (tmp_path / "labels" / split / "a.txt").write_text("1 0.2 0.3 0.2 0.4\n")
        (tmp_path / "labels" / split / "b.txt").write_text("")
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [x, y]\n")
    return tmp_path / "data.yaml"


def test_ground_truth_in_pixels(data_yaml: Path) -> None:
    from edgeyolo.bench.studies.common_scorer import ground_truth
    stems, gts, nc = ground_truth(str(data_yaml))
    assert stems == ["a", "b"] and nc == 2
    np.testing.assert_allclose(gts[0], [[1, 20, 10, 60, 50]], atol=1e-4)  # float32 labels
    assert gts[1].shape == (0, 5)


def test_peer_detections_scored_with_its_class_offset(data_yaml: Path, tmp_path: Path) -> None:
    from edgeyolo.bench.studies.common_scorer import detections, ground_truth, score
    stems, gts, nc = ground_truth(str(data_yaml))
    path = tmp_path / "predictions.json"
    exact = {"image_id": "a", "category_id": 2, "bbox": [20, 10, 40, 40], "score": 0.9}  # Ultralytics: class + 1
    path.write_text(json.dumps([exact, {"image_id": "b", "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.1}]))
    dets = detections(path, stems, 1)
    np.testing.assert_allclose(dets[0], [[20, 10, 60, 50, 0.9, 1]])
    m = score(dets, gts, nc).compute()
    assert m.map50 == pytest.approx(1.0) and m.map == pytest.approx(1.0)
    # shifted 8 px of its 40: IoU 2/3, a hit at thresholds 0.50-0.65 only -> mAP@0.5:0.95 0.4
    path.write_text(json.dumps([{**exact, "bbox": [28, 10, 40, 40]}]))
    m = score(detections(path, stems, 1), gts, nc).compute()
    assert m.map50 == pytest.approx(1.0) and m.map == pytest.approx(0.4)
    path.write_text(json.dumps([{**exact, "image_id": "c"}]))
    with pytest.raises(ValueError, match=r"predictions.json: detection for image 'c', which is not in the validation split"):
        detections(path, stems, 1)


def test_breakdown_by_iou_and_box_size() -> None:
    from edgeyolo.bench.studies.common_scorer import breakdown, size_ranges
    assert size_ranges([32, 96]) == [("0-32 px", (0.0, 1024.0)), ("32-96 px", (1024.0, 9216.0)),
                                     (">96 px", (9216.0, 1e10))]
    with pytest.raises(ValueError, match="positive and increasing"):
        size_ranges([96, 32])
    # one image: a 10 px box found exactly, a 40 px box found shifted by 8 px (IoU 0.667), a 40 px miss
    gts = [np.array([[0, 0, 0, 10, 10], [0, 100, 100, 140, 140], [0, 200, 200, 240, 240]], float)]
    dets = [np.array([[0, 0, 10, 10, 0.9, 0], [108, 100, 148, 140, 0.8, 0]], float)]
    out = breakdown(dets, gts, 1, [20])
    small, large = out["by_size"]
    assert (small["size"], small["boxes"], large["size"], large["boxes"]) == ("0-20 px", 1, ">20 px", 2)
    assert small["map50"] == pytest.approx(1.0) and small["map"] == pytest.approx(1.0)
    # large: one of two found, at thresholds 0.50-0.65 only; the small box's exact hit is ignored there
    assert large["map50"] == pytest.approx(0.50, abs=0.01) and large["map"] == pytest.approx(0.2, abs=0.01)
    # all sizes: at 0.50-0.65 both found hits rank first (AP 2/3 over 3 boxes); above, only the small one
    ap = out["ap_per_iou"]
    assert ap[0] == pytest.approx(0.67, abs=0.01) and ap[3] == pytest.approx(0.67, abs=0.01)
    assert ap[4] == pytest.approx(0.34, abs=0.01) and ap[9] == pytest.approx(0.34, abs=0.01)


def test_numeric_stems_match_their_int_image_ids(tmp_path: Path) -> None:
    from edgeyolo.bench.studies.common_scorer import detections
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps([{"image_id": 7, "category_id": 0, "bbox": [1, 2, 3, 4], "score": 0.5}]))
    dets = detections(path, ["007", "b"], 0)  # a numeric stem is written as an int id, as COCO's
    np.testing.assert_allclose(dets[0], [[1, 2, 4, 6, 0.5, 0]])
    assert dets[1].shape == (0, 6)
