"""``edgeyolo detect`` on images (and a short video) the test writes, with a checkpoint and with
an ONNX artifact: drawn outputs, YOLO txt and JSON detections."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgeyolo.bench.detect import DetectOptions, run_detect
from edgeyolo.runtime.draw import yolo_lines


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import torch

    from edgeyolo.models import build_model
    from edgeyolo.models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    m = build_model("yolov4s-mbv3s", nc=4).eval()
    return save_checkpoint(tmp_path_factory.mktemp("dw") / "det.pt", m, ["motorcycle", "car", "bus", "truck"])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for name, (h, w) in (("wide", (90, 150)), ("square", (70, 70))):
        im = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        cv2.rectangle(im, (10, 10), (50, 40), (0, 0, 255), -1)
        cv2.imwrite(str(d / f"{name}.png"), im)
    return d


def _check_txt(path, n_min=1):
    lines = path.read_text().splitlines()
    assert len(lines) >= n_min
    for ln in lines:
        f = ln.split()
        assert len(f) == 6 and 0 <= int(f[0]) < 4
        assert all(0.0 <= float(v) <= 1.0 for v in f[1:])
    return len(lines)


def test_detect_checkpoint_on_folder(tmp_path, weights, images):
    out = tmp_path / "det"
    # conf 0 with random weights: every box passes, so the outputs are non-empty and checkable
    res = run_detect(DetectOptions(weights, images, conf=0.0, iou=0.45, imgsz=64, save_dir=out, save_txt=True,
                                   save_json=True, max_det=20), log=lambda m: None)
    assert res["images"] == 2 and res["detections"] > 0
    for name, shape in (("wide", (90, 150, 3)), ("square", (70, 70, 3))):
        vis = cv2.imread(str(out / f"{name}.jpg"))
        assert vis is not None and vis.shape == shape  # drawn on the original image, not the letterbox
    n_txt = _check_txt(out / "labels" / "wide.txt") + _check_txt(out / "labels" / "square.txt")
    recs = json.loads((out / "detections.json").read_text())
    assert len(recs) == n_txt == res["detections"]
    for r in recs:
        x1, y1, x2, y2 = r["box_xyxy"]
        w, h = (150, 90) if r["image"] == "wide" else (70, 70)
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h  # scaled back and clipped to the original image
        assert r["name"] in ("motorcycle", "car", "bus", "truck") and 0 <= r["conf"] <= 1


def test_detect_onnx_artifact_and_errors(tmp_path, weights, images):
    from edgeyolo.formats import FORMATS
    from edgeyolo.export.pipeline import ExportOptions, run_export
    rep = run_export(ExportOptions(weights, [FORMATS["onnx"]], imgsz=64, out=tmp_path / "exp", verify=False), log=lambda m: None)
    onnx_path = next(a.path for a in rep.artifacts if a.path.endswith(".onnx"))
    one = images / "wide.png"
    ref = run_detect(DetectOptions(weights, one, conf=0.0, imgsz=64, save_dir=tmp_path / "a", save_img=False, max_det=10),
                     log=lambda m: None)
    got = run_detect(DetectOptions(onnx_path, one, conf=0.0, save_dir=tmp_path / "b", save_json=True, max_det=10),
                     log=lambda m: None)  # imgsz from the artifact's metadata
    assert got["images"] == 1 and got["detections"] == ref["detections"] == 10
    assert (tmp_path / "b" / "wide.jpg").is_file() and not (tmp_path / "a" / "wide.jpg").exists()
    with pytest.raises(ValueError, match="exported at 64"):
        run_detect(DetectOptions(onnx_path, one, imgsz=128, save_dir=tmp_path / "c"), log=lambda m: None)
    with pytest.raises(ValueError, match="--source"):
        run_detect(DetectOptions(weights, tmp_path / "nothing", save_dir=tmp_path / "d"), log=lambda m: None)
    with pytest.raises(ValueError, match="--conf"):
        run_detect(DetectOptions(weights, one, conf=1.5, save_dir=tmp_path / "e"), log=lambda m: None)


def test_detect_video(tmp_path, weights):
    src = tmp_path / "clip.mp4"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    if not vw.isOpened():
        pytest.skip("this OpenCV build cannot write mp4v video")
    for i in range(3):
        vw.write(np.full((64, 96, 3), 40 * i, np.uint8))
    vw.release()
    cap = cv2.VideoCapture(str(src))
    ok = cap.isOpened() and cap.read()[0]
    cap.release()
    if not ok:
        pytest.skip("this OpenCV build cannot read back mp4v video")
    out = tmp_path / "vid"
    res = run_detect(DetectOptions(weights, src, conf=0.0, imgsz=64, save_dir=out, save_txt=True, max_det=5),
                     log=lambda m: None)
    assert res["images"] == 3 and res["frames"] == 3
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["clip_000000.txt", "clip_000001.txt", "clip_000002.txt"]
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)  # the source's rate, so it plays at its speed
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 3


def test_yolo_lines():
    dets = np.array([[10, 20, 30, 60, 0.9, 2]], dtype=np.float32)
    assert yolo_lines(dets, (100, 200)) == ["2 0.100000 0.400000 0.100000 0.400000 0.90000"]


def test_detect_folder_edge_cases(tmp_path, weights):
    """Two files sharing a stem keep their own outputs; an unreadable file is reported and skipped
    (a folder run keeps going); the source folder as --save-dir is refused (it would overwrite the
    originals); a single unreadable file is still an error."""
    src = tmp_path / "src"
    src.mkdir()
    im = np.full((64, 96, 3), 90, np.uint8)
    cv2.imwrite(str(src / "a.jpg"), im)
    cv2.imwrite(str(src / "a.png"), im[:48])
    cv2.imwrite(str(src / "b.jpg"), im)
    (src / "._b.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # what a macOS copy leaves beside b.jpg
    logs: list[str] = []
    out = tmp_path / "out"
    res = run_detect(DetectOptions(weights, src, conf=0.0, imgsz=64, save_dir=out, save_txt=True, save_json=True,
                                   max_det=3), log=logs.append)
    assert res["images"] == 3 and len(res["skipped"]) == 1 and "._b.jpg: not a readable image" in res["skipped"][0]
    assert sorted(p.name for p in out.glob("*.jpg")) == ["a_jpg.jpg", "a_png.jpg", "b.jpg"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a_jpg.txt", "a_png.txt", "b.txt"]
    assert cv2.imread(str(out / "a_png.jpg")).shape[:2] == (48, 96)
    assert {r["file"] for r in json.loads((out / "detections.json").read_text())} == {"a.jpg", "a.png", "b.jpg"}
    assert any("1 unreadable file(s) skipped" in m for m in logs)
    before = (src / "a.jpg").read_bytes()
    with pytest.raises(ValueError, match="that is the source folder"):
        run_detect(DetectOptions(weights, src, imgsz=64, save_dir=src), log=lambda m: None)
    assert (src / "a.jpg").read_bytes() == before
    with pytest.raises(ValueError, match="._b.jpg: not a readable image"):
        run_detect(DetectOptions(weights, src / "._b.jpg", imgsz=64, save_dir=tmp_path / "x"), log=lambda m: None)
