"""``edgeyolo export --uint8-input``: the ONNX takes the letterboxed OpenCV image as it is, (B, H,
W, 3) uint8 BGR, and does BGR->RGB, /255 and the layout change in its graph; the runtime reads
that from the metadata and only letterboxes. Held to the float export run through the runtime's
usual pre-processing on the same image."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgeyolo.export.deploy import DeployModel
from edgeyolo.formats import parse_formats
from edgeyolo.export.onnx_export import export_onnx, read_metadata
from edgeyolo.export.pipeline import ExportOptions, run_export
from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import save_checkpoint
from edgeyolo.runtime.backends import OrtBackend, load_backend
from edgeyolo.runtime.detector import Detector
from edgeyolo.runtime.info import FLOAT_INPUT, UINT8_INPUT, model_info
from edgeyolo.runtime.processing import preprocess
from edgeyolo.runtime.sidecar import read_sidecar, write_sidecar
from runtime_helpers import labelled_images

IMGSZ = 96
NAMES = ["motorcycle", "car", "bus", "truck"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("w") / "s.pt", build_model("yolov4s-mbv3s", nc=4), NAMES)


@pytest.fixture(scope="module")
def exports(overfit_run, tmp_path_factory) -> dict[str, Path]:
    """The trained tiny model (real, distinct detections; an untrained one barely reacts to its
    input) exported twice: float input and --uint8-input."""
    out = {}
    for kind in ("float", "uint8"):
        o = ExportOptions(weights=overfit_run / "weights" / "best.pt", formats=parse_formats("onnx"), imgsz=IMGSZ,
                          dynamic=True, nms=True, out=tmp_path_factory.mktemp(kind), uint8_input=kind == "uint8",
                          verify=kind == "uint8")
        rep = run_export(o, log=lambda s: None)
        assert not rep.failed, rep.errors
        if kind == "uint8":  # verified against the float PyTorch model through the uint8 input
            assert rep.artifacts[0].parity is not None and not rep.errors
        out[kind] = Path(rep.artifacts[0].path)
        out[kind + "_nms"] = Path(rep.artifacts[1].path)
    return out


def _image(seed: int = 0) -> np.ndarray:
    """A BGR image of another size and aspect than the input (so the letterbox pads), with structure."""
    rng = np.random.default_rng(seed)
    im = cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (100, 60), interpolation=cv2.INTER_LINEAR)
    cv2.rectangle(im, (20, 10), (60, 50), (0, 40, 250), -1)  # red in BGR: the channel order matters
    return im


def _scenes(data_yaml: Path) -> list[np.ndarray]:
    """Two of the training images, cropped to another aspect (so the letterbox pads)."""
    return [cv2.imread(str(p))[:, 10:80] for p, _ in labelled_images(data_yaml, "train")[:2]]


def test_the_graph_takes_uint8_nhwc_and_says_so(exports):
    inp = onnx.load(str(exports["uint8"])).graph.input[0]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [IMGSZ, IMGSZ, 3] and isinstance(dims[0], str)  # dynamic batch
    assert read_metadata(exports["uint8"])["input"] == UINT8_INPUT
    assert read_metadata(exports["float"])["input"] == FLOAT_INPUT
    assert read_metadata(exports["uint8_nms"])["input"] == UINT8_INPUT  # the in-graph NMS copy keeps it
    b = load_backend(exports["uint8"])
    assert b.info.input == UINT8_INPUT and "input: uint8_nhwc_bgr" in b.info.describe()


def test_same_outputs_as_the_float_export_on_a_letterboxed_bgr_image(exports, overfit_data):
    ims = _scenes(overfit_data)
    x, lbs = preprocess(ims, IMGSZ)  # the runtime's usual float pre-processing
    u8, lbs8 = preprocess(ims, IMGSZ, uint8=True)
    assert u8.dtype == np.uint8 and u8.shape == (2, IMGSZ, IMGSZ, 3) and lbs8 == lbs
    np.testing.assert_array_equal(u8[..., ::-1].transpose(0, 3, 1, 2), np.rint(x * 255).astype(np.uint8))
    (y_float,) = load_backend(exports["float"])(x)
    (y_u8,) = load_backend(exports["uint8"])(u8)
    np.testing.assert_allclose(y_u8, y_float, rtol=1e-4, atol=1e-3)


class _Probe(nn.Module):
    """A "model" whose raw output is its input: what the network would see, exported as is."""

    def forward_raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x + 0.0]


def test_in_graph_conversion_is_the_runtimes_preprocessing(tmp_path):
    """An untrained detector barely reacts to its input, so the conversion itself is checked: the
    exported graph's view of a letterboxed BGR uint8 image equals the runtime's float blob (RGB,
    /255, NCHW), element by element."""
    deploy = DeployModel(_Probe(), decode=False, uint8_input=True).eval()
    path = export_onnx(deploy, tmp_path / "probe.onnx", IMGSZ, batch=2, simplify=False)
    ims = [_image(0), _image(1)]
    x, _ = preprocess(ims, IMGSZ)
    u8, _ = preprocess(ims, IMGSZ, uint8=True)
    (seen,) = OrtBackend(path)(u8)
    assert seen.shape == x.shape == (2, 3, IMGSZ, IMGSZ)
    np.testing.assert_allclose(seen, x, rtol=0, atol=1e-7)
    assert not np.allclose(seen, x[:, ::-1], atol=1e-2)  # RGB, not the input's BGR


@pytest.mark.parametrize("nms", [False, True])
def test_detector_gives_the_same_detections_and_skips_its_own_conversion(exports, overfit_data, monkeypatch, nms):
    suffix = "_nms" if nms else ""
    ims = _scenes(overfit_data)
    ref = Detector.load(exports["float" + suffix], conf=0.3)(ims)
    assert all(len(d) for d in ref)
    # the uint8 artifact's pre-processing is the letterbox alone: no float blob is made
    monkeypatch.setattr(cv2.dnn, "blobFromImages", lambda *a, **k: pytest.fail("float conversion on the host"))
    det = Detector.load(exports["uint8" + suffix], conf=0.3)
    assert det.preprocess(ims)[0].dtype == np.uint8
    got = det(ims)
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        np.testing.assert_allclose(g[:, :4], r[:, :4], atol=1e-2)  # pixels
        np.testing.assert_allclose(g[:, 4], r[:, 4], atol=1e-4)
        np.testing.assert_array_equal(g[:, 5], r[:, 5])


def test_engine_sidecar_carries_the_input_format(tmp_path):
    engine = tmp_path / "m.engine"
    meta = {"names": NAMES, "imgsz": IMGSZ, "stride": [8, 16, 32], "decode": True, "input": UINT8_INPUT}
    write_sidecar(engine, {"tensorrt": "10.3.0"}, "fp16", meta, {})
    side = read_sidecar(engine)
    assert side["input"] == UINT8_INPUT
    assert model_info(engine, "engine", side, ["output"], [3]).input == UINT8_INPUT
    with pytest.raises(ValueError, match=r"m.engine: unknown input format 'yuv'"):
        model_info(engine, "engine", {**side, "input": "yuv"}, ["output"], [3])


def test_uint8_input_is_refused_where_it_is_not_built(weights, tmp_path, capsys):
    for fmts, extra in (("onnx,torchscript", {}), ("onnx", {"int8": "on"})):
        o = ExportOptions(weights=weights, formats=parse_formats(fmts), imgsz=IMGSZ, out=tmp_path, uint8_input=True,
                          **extra)
        with pytest.raises(ValueError, match=r"--uint8-input takes --format onnx or engine without --int8"):
            run_export(o, log=lambda s: None)
    from edgeyolo.cli import main
    with pytest.raises(SystemExit):
        main(["export", "--weights", str(weights), "--format", "torchscript", "--uint8-input", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "--uint8-input does not apply to --format torchscript (it applies to onnx, engine)" in err


def test_fp16_onnx_keeps_the_uint8_input(weights, tmp_path):
    """--uint8-input --fp16: the FP16 ONNX (export/fp16.py) keeps the uint8 (B, H, W, 3) input and
    the metadata that says so; only the conversion after it runs in FP16. Same outputs as the FP32
    uint8 graph within FP16's error."""
    o = ExportOptions(weights=weights, formats=parse_formats("onnx"), imgsz=IMGSZ, fp16=True, uint8_input=True,
                      out=tmp_path, verify=False)
    rep = run_export(o, log=lambda s: None)
    assert not rep.failed, rep.errors
    art = {Path(a.path).name: a for a in rep.artifacts}
    assert set(art) == {"s.onnx", "s_fp16.onnx"} and art["s_fp16.onnx"].precision == "fp16"
    assert "uint8 input" in art["s_fp16.onnx"].notes[0]
    half = onnx.load(str(tmp_path / "s_fp16.onnx"))
    inp = half.graph.input[0].type.tensor_type
    assert inp.elem_type == onnx.TensorProto.UINT8 and [d.dim_value for d in inp.shape.dim] == [1, IMGSZ, IMGSZ, 3]
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert read_metadata(tmp_path / "s_fp16.onnx")["input"] == UINT8_INPUT
    u8, _ = preprocess([_image(0)], IMGSZ, uint8=True)
    b = load_backend(tmp_path / "s_fp16.onnx")
    assert b.info.input == UINT8_INPUT
    (y16,) = b(u8)
    (y32,) = load_backend(tmp_path / "s.onnx")(u8)
    assert y16.dtype == np.float32
    np.testing.assert_allclose(y16[..., :4], y32[..., :4], atol=0.02 * IMGSZ)  # box pixels within 2% of the image
    np.testing.assert_allclose(y16[..., 4:], y32[..., 4:], atol=0.02)
