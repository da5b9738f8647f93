"""The torch-free runtime: no torch import, pre/post-processing parity with the PyTorch path, every
output layout, the runtime against `edgeyolo val` on a trained model, the CLI and the packaging."""
from __future__ import annotations

import configparser
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgeyolo.cli import cli
from edgeyolo.models.checkpoint import load_model
from edgeyolo.ops.boxes import scale_boxes
from edgeyolo.ops.metrics import DetectionEvaluator
from edgeyolo.ops.nms import non_max_suppression
from edgeyolo.runtime.backends import load_backend
from edgeyolo.runtime.detector import Detector
from edgeyolo.runtime.info import DECODED, EFFICIENT_NMS, ONNX_NMS, RAW, ModelInfo
from edgeyolo.runtime.processing import decode_raw, postprocess, preprocess
from runtime_helpers import export_tiny, gt_pixels, labelled_images

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_MODULES = sorted(f"edgeyolo.runtime.{p.stem}" for p in (ROOT / "edgeyolo" / "runtime").glob("*.py")
                         if p.stem not in ("__init__", "__main__"))
BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"  # import torch -> ImportError


@pytest.fixture(scope="module")
def trained(overfit_run) -> Path:
    return overfit_run / "weights" / "best.pt"


@pytest.fixture(scope="module")
def onnx_models(trained, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("rt")
    return {"decoded": export_tiny(trained, out / "dec"), "raw": export_tiny(trained, out / "raw", raw=True),
            "nms": export_tiny(trained, out / "nms", nms=True)}


def _images(data_yaml: Path, n: int) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p, _ in labelled_images(data_yaml, "train")[:n]]


def test_importing_the_runtime_never_imports_torch():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in ["edgeyolo.runtime", *RUNTIME_MODULES])
            + "import edgeyolo.runtime as r; [getattr(r, n) for n in r.__all__]\n"
            + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'click', 'yaml'))\n"
            + "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_cli_runs_without_torch(onnx_models, overfit_data, tmp_path):
    """detect, info and latency through `python -m edgeyolo.runtime` with torch made unimportable."""
    src = tmp_path / "src"
    src.mkdir()
    for i, im in enumerate(_images(overfit_data, 2)):
        cv2.imwrite(str(src / f"im{i}.png"), im)
    for args in (["detect", "--model", str(onnx_models["decoded"]), "--source", str(src), "--save-dir",
                  str(tmp_path / "out"), "--save-json", "--conf", "0.3"],
                 ["info", "--model", str(onnx_models["raw"])],
                 ["latency", "--model", str(onnx_models["nms"]), "--iters", "3", "--warmup", "1"]):
        code = BLOCK_TORCH + f"import runpy; sys.argv = ['edgeyolo-run', *{args!r}]; runpy.run_module('edgeyolo.runtime', run_name='__main__')"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode == 0, (args[0], r.stderr[-2000:])
        if args[0] == "info":
            assert "raw" in r.stdout and "motorcycle" in r.stdout
        if args[0] == "latency":
            assert "end2end: p50" in r.stdout
    dets = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert dets and {d["image"] for d in dets} == {"im0", "im1"} and all(d["conf"] >= 0.3 for d in dets)
    assert (tmp_path / "out" / "im0.jpg").is_file()


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"not a model")
    for model, msg in ((tmp_path / "missing.onnx", "file not found"), (bad, "ONNX Runtime cannot load it"),
                       (tmp_path / "m.tflite", "file not found")):
        r = subprocess.run([sys.executable, "-m", "edgeyolo.runtime", "info", "--model", str(model)],
                           capture_output=True, text=True)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and msg in r.stderr, r.stderr
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown artifact type '.tflite'"):
        load_backend(tmp_path / "m.tflite")


def test_preprocess_matches_the_letterbox_reference():
    rng = np.random.default_rng(0)
    ims = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((50, 90), (96, 64))]
    x, lbs = preprocess(ims, 96)
    assert x.shape == (2, 3, 96, 96) and x.dtype == np.float32
    from edgeyolo.data.letterbox import letterbox
    for i, im in enumerate(ims):
        lb, r, pad = letterbox(im, 96)
        ref = lb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0  # what val feeds the model
        np.testing.assert_allclose(x[i], ref, atol=1e-6)
        assert (lbs[i].ratio, lbs[i].pad, lbs[i].shape0) == (r, pad, im.shape[:2])
        h0, w0 = im.shape[:2]  # the resized content, measured on the letterboxed image: the gains are exact
        content = (lb[:, :, 0] != 114).any(1).sum(), (lb[:, :, 0] != 114).any(0).sum()
        assert lbs[i].gains == (content[0] / h0, content[1] / w0)
    with pytest.raises(ValueError, match=r"image 0: expected an \(H, W, 3\) uint8 BGR image"):
        preprocess([np.zeros((10, 10), np.uint8)], 96)


def test_postprocess_identical_to_the_pytorch_path(trained, overfit_data):
    """The same raw head outputs through the PyTorch path (Detect.decode, torchvision NMS,
    scale_boxes) and the runtime's (numpy decode, OpenCV NMS) give the same boxes."""
    model, _ = load_model(trained)
    ims = _images(overfit_data, 4)
    x, lbs = preprocess(ims, 96)
    with torch.no_grad():
        raw = model.forward_raw(torch.from_numpy(x))
        decoded = model.head.decode(raw)
    raw_np = [r.numpy() for r in raw]
    np.testing.assert_allclose(decode_raw(raw_np, model.head.anchors.numpy(), model.stride.tolist()), decoded.numpy(),
                               rtol=1e-5, atol=1e-4)
    info = ModelInfo("m", "onnx", ["motorcycle", "car", "bus", "truck"], 96, None, model.stride.int().tolist(),
                     model.head.anchors.tolist(), RAW)
    total = 0
    for conf, iou in ((0.001, 0.65), (0.25, 0.45)):
        ref = non_max_suppression(decoded, conf, iou, max_det=300)
        ref = [d.numpy().copy() for d in ref]
        for d, lb in zip(ref, lbs):
            d[:, :4] = scale_boxes(lb.shape, d[:, :4], lb.shape0, (lb.gains, lb.pad))
        for layout, outs in ((RAW, raw_np), (DECODED, [decoded.numpy()])):
            info.layout = layout
            got = postprocess(outs, info, lbs, conf, iou, 300)
            for g, r in zip(got, ref):
                assert g.shape == r.shape and np.array_equal(g[:, 5], r[:, 5])
                np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-3)
                total += len(r)
    assert total > 20  # a trained model: real detections were compared


def test_in_graph_nms_layouts(onnx_models, overfit_data):
    ims = _images(overfit_data, 3)
    ref = Detector.load(onnx_models["decoded"], conf=0.25, iou=0.45)(ims)
    nms = Detector.load(onnx_models["nms"], conf=0.25, iou=0.45)
    assert nms.info.layout == ONNX_NMS
    got = [nms([im])[0] for im in ims]  # the NMS export has a static batch of 1
    for g, r in zip(got, ref):  # same boxes; ONNX keeps at most 100 per class, far above what is here
        assert len(g) == len(r) and len(r) > 0
        np.testing.assert_allclose(g[np.lexsort(g.T[::-1])], r[np.lexsort(r.T[::-1])], atol=1e-3)
    # EfficientNMS_TRT outputs (engines only): num_dets, boxes, scores, classes, padded to max_det
    info = ModelInfo("e", "engine", ["a", "b"], 64, 2, layout=EFFICIENT_NMS)
    _, lbs = preprocess([np.zeros((32, 64, 3), np.uint8)] * 2, 64)
    outs = [np.array([[2], [0]], np.int32), np.array([[[8, 20, 40, 40], [10, 20, 30, 40], [0, 0, 0, 0]]] * 2, np.float32),
            np.array([[0.9, 0.2, 0.0]] * 2, np.float32), np.array([[1, 0, 0]] * 2, np.int32)]
    d = postprocess(outs, info, lbs, conf=0.25)
    assert len(d[1]) == 0 and d[0].shape == (1, 6)
    np.testing.assert_allclose(d[0][0], [8, 4, 40, 24, 0.9, 1])  # 64x32 image letterboxed with 16 px top pad


def test_metadata_drives_layout_and_errors(onnx_models, tmp_path):
    for kind, layout in (("decoded", DECODED), ("raw", RAW), ("nms", ONNX_NMS)):
        info = load_backend(onnx_models[kind]).info
        assert info.layout == layout and info.names == ["motorcycle", "car", "bus", "truck"] and info.imgsz == 96
    assert load_backend(onnx_models["raw"]).info.anchors is not None
    import onnx
    proto = onnx.load(str(onnx_models["decoded"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="no class names in the ONNX metadata"):
        load_backend(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="--imgsz 128: decoded.onnx|was exported at 96"):
        Detector.load(onnx_models["decoded"], imgsz=128)
    with pytest.raises(ValueError, match=r"--conf must be in \[0, 1\]"):
        Detector.load(onnx_models["decoded"], conf=2)


def test_runtime_map_matches_edgeyolo_val(trained, onnx_models, overfit_data, tmp_path):
    """The runtime on the ONNX export, scored against the labels, equals `edgeyolo val --no-rect`
    (square letterbox: what a fixed-input export sees) on the checkpoint within 0.1 mAP point
    (edgeyolo val's settings: conf 0.001, IoU 0.65, 300 detections)."""
    json_path = tmp_path / "val.json"
    r = CliRunner().invoke(cli, ["val", "--weights", str(trained), "--data", str(overfit_data), "--split", "train",
                                 "--imgsz", "96", "--batch", "16", "--workers", "0", "--no-rect", "--save-json", str(json_path)])
    assert r.exit_code == 0, r.output
    row = next(line.split() for line in r.output.splitlines() if line.split()[:1] == ["all"])
    val_map50, val_map = float(row[5]), float(row[6])

    det = Detector.load(onnx_models["decoded"], conf=0.001, iou=0.65, max_det=300)
    ev_rt, ev_val = DetectionEvaluator(4), DetectionEvaluator(4)
    val_dets = json.loads(json_path.read_text())
    for path, labels in labelled_images(overfit_data, "train"):
        im = cv2.imread(str(path))
        h, w = im.shape[:2]
        gts = gt_pixels(labels, w, h)
        ev_rt.update(det([im])[0], gts)
        mine = [d for d in val_dets if str(d["image_id"]) == path.stem.lstrip("0") or d["image_id"] == path.stem
                or d["image_id"] == int(path.stem)]
        vd = np.array([[x, y, x + bw, y + bh, d["score"], d["category_id"]] for d in mine for x, y, bw, bh in [d["bbox"]]],
                      np.float32).reshape(-1, 6)
        ev_val.update(vd, gts)
    m_rt, m_val = ev_rt.compute(), ev_val.compute()
    assert m_val.map > 0.3, "the tiny model should have learnt its 48 images"
    assert abs(m_rt.map - m_val.map) <= 1e-3, (m_rt.map, m_val.map)
    assert abs(m_rt.map50 - m_val.map50) <= 1e-3, (m_rt.map50, m_val.map50)
    # and against the table `edgeyolo val` prints (3 decimals: up to 5e-4 of rounding on top)
    assert abs(m_rt.map - val_map) <= 1.5e-3 and abs(m_rt.map50 - val_map50) <= 1.5e-3, (m_rt.map, val_map)


def test_packaging_runtime_extra_is_torch_free():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    base = cfg["options"]["install_requires"].split()
    runtime = cfg["options.extras_require"]["runtime"].split()
    heavy = ("torch", "torchvision", "onnx>", "onnxslim", "matplotlib", "pycocotools", "faster-coco-eval", "click", "pyyaml")
    assert not [r for r in base + runtime if r.startswith(heavy)], base + runtime
    assert any(r.startswith("onnxruntime") for r in runtime)
    assert "edgeyolo-run = edgeyolo.runtime.cli:main" in cfg["options.entry_points"]["console_scripts"]
    assert "edgeyolo.runtime" in cfg["options"]["packages"].split()


def test_edgeyolo_entry_explains_a_runtime_only_install(monkeypatch, capsys):
    import importlib.util

    from edgeyolo import entry
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(SystemExit, match=r"torch not installed.*edgeyolo\[full\].*edgeyolo-run"):
        entry.main()
