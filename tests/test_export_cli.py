"""``edgeyolo export`` end to end: artifacts, export.json, verification, the mAP gate, refusals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import run_cli as run
from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("w") / "s.pt", build_model("yolov4s-mbv3s", nc=4),
                           ["motorcycle", "car", "bus", "truck"])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from edgeyolo.data import synthetic_data_yaml
    return synthetic_data_yaml(tmp_path_factory.mktemp("synth"), n_train=8, n_val=6, imgsz=96)




def test_export_verifies_and_reports(weights: Path, data: Path, tmp_path: Path, capsys) -> None:
    rc = run(["export", "--weights", str(weights), "--imgsz", "64", "--format", "torchscript,onnx", "--out", str(tmp_path),
              "--data", str(data), "--trt-target", "8.2", "--nms"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "fused 72 BN" in out and "rewrote 18 hswish" in out and "max abs err" in out
    rep = json.loads((tmp_path / "export.json").read_text())
    assert not rep["failed"] and rep["opset"] == 13 and rep["pytorch_map"]["images"] == 6
    arts = {Path(a["path"]).name: a for a in rep["artifacts"]}
    assert set(arts) == {"s.onnx", "s_nms.onnx", "s.torchscript"}
    for name in ("s.onnx", "s.torchscript"):
        assert arts[name]["parity"]["max_rel"] < 1e-4 and arts[name]["size_mb"] > 1
        assert arts[name]["map"]["drop"] == pytest.approx(0.0, abs=0.05)
        lo, hi = arts[name]["map"]["drop_ci95"]  # the paired bootstrap's interval holds the point estimate
        assert lo <= arts[name]["map"]["drop"] <= hi and hi - lo < 1.0
        assert arts[name]["parity"]["det_reference"] >= 0


def test_map_gate_fails_but_keeps_artifacts(weights: Path, data: Path, tmp_path: Path, capsys) -> None:
    rc = run(["export", "--weights", str(weights), "--imgsz", "64", "--format", "onnx", "--out", str(tmp_path),
              "--data", str(data), "--max-map-drop", "-1"])
    err = capsys.readouterr().err
    assert rc == 1 and "mAP drop" in err and "artifacts were kept" in err
    assert (tmp_path / "s.onnx").is_file() and json.loads((tmp_path / "export.json").read_text())["failed"]


def test_option_refused_with_reason(weights: Path, capsys) -> None:
    assert run(["export", "--weights", str(weights), "--format", "onnx", "--dla", "0"]) == 1
    assert capsys.readouterr().err.strip() == ("edgeyolo: error: --dla does not apply to --format onnx "
                                               "(it applies to engine)")
    assert run(["export", "--weights", str(weights), "--format", "onnx", "--int8", "implicit"]) == 1
    assert "needs --format engine" in capsys.readouterr().err


def test_calibration_choices_are_the_quantizer_s() -> None:
    """The CLI names the methods itself so --help loads no onnx; they must stay export.quantize's."""
    from edgeyolo.cli.export import CALIB_METHODS as offered
    from edgeyolo.export.quantize import CALIB_METHODS

    assert offered == CALIB_METHODS


def test_check_trt(weights: Path, capsys) -> None:
    assert run(["export", "--weights", str(weights), "--imgsz", "64", "--check-trt", "--trt-target", "8.2"]) == 0
    assert "every node imports in TensorRT 8.2" in capsys.readouterr().out
    assert run(["export", "--weights", str(weights), "--imgsz", "64", "--check-trt", "--target", "11.4.0"]) == 0
    assert "every node imports in TensorRT 11" in capsys.readouterr().out
    assert run(["export", "--weights", str(weights), "--check-trt", "--target", "7.1"]) == 2
    assert "unknown --target '7.1'" in capsys.readouterr().err


def test_ort_target_export(weights: Path, data: Path, tmp_path: Path, capsys) -> None:
    """--target ort: the ONNX Runtime graph (no Softplus), its uint8 INT8 and its TorchScript, verified
    like any other."""
    from edgeyolo.export.onnx_export import op_counts
    rc = run(["export", "--weights", str(weights), "--imgsz", "64", "--format", "torchscript,onnx", "--out", str(tmp_path),
              "--target", "ORT", "--int8", "--calib-data", str(data), "--calib-images", "4", "--calib-method", "minmax"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "rewrote 36 mish" in out and "ONNX Runtime (CPU) target" in out
    rep = json.loads((tmp_path / "export.json").read_text())
    assert rep["target"] == "ort"
    arts = {Path(a["path"]).name: a for a in rep["artifacts"]}
    assert arts["s.onnx"]["parity"]["max_rel"] < 1e-4 and "int8" == arts["s_int8.onnx"]["precision"]
    assert arts["s.torchscript"]["parity"]["max_rel"] < 1e-4  # the ONNX-only symbolic stays out of TorchScript
    assert "Softplus" not in op_counts(tmp_path / "s.onnx") and op_counts(tmp_path / "s_int8.onnx")["QuantizeLinear"]


def test_ort_target_refused_for_tensorrt(weights: Path, capsys) -> None:
    assert run(["export", "--weights", str(weights), "--format", "onnx,engine", "--target", "ort"]) == 1
    assert "TensorRT formats need a TensorRT target" in capsys.readouterr().err
    assert run(["export", "--weights", str(weights), "--check-trt", "--target", "ort"]) == 1
    assert "--check-trt lints for a TensorRT parser" in capsys.readouterr().err


# (this machine's TensorRT, --target, --nms) -> the engine's NMS: NonMaxSuppression (INMSLayer) where
# the parser builds it, EfficientNMS_TRT on 8.2 or when asked for
# (the built target is this machine's version's when --target is not given)
ENGINE_NMS = [("10.3.0", None, True, "NonMaxSuppression", "10.3"),
              ("11.4.0.106", None, "auto", "NonMaxSuppression", "11"),
              ("8.5.2.2", "8.2", True, "EfficientNMS_TRT", "8.2"),
              ("10.16.1.11", None, "efficient", "EfficientNMS_TRT", "10.16")]


@pytest.mark.parametrize("version,target,nms,op,built_for", ENGINE_NMS)
def test_engine_nms_graph_per_target(weights: Path, tmp_path: Path, monkeypatch, version, target, nms, op,
                                     built_for) -> None:
    """--format onnx,engine --nms: ONNX Runtime gets a NonMaxSuppression graph (verified), the engine
    is built from the decoded graph plus its own NMS tail (it was built without any NMS, and the
    plugin graph was run in ONNX Runtime, which failed the export). TensorRT is not installed here:
    the builder is replaced by a recorder, ``tensorrt`` by the version's stand-in."""
    import sys

    import onnx
    from trt_standin import standin_module

    import edgeyolo.export.tensorrt_build as tb
    from edgeyolo.export.formats import FORMATS
    from edgeyolo.export.formats import parse_formats
    from edgeyolo.export.onnx_export import read_metadata
    from edgeyolo.export.pipeline import ExportOptions, run_export

    built = {}

    def fake_build(src, dst, opts, calibration=None, cache_dir=None):
        built.update(src=Path(src), meta=opts.metadata, target=opts.target)
        Path(dst).write_bytes(b"engine")
        return Path(dst)
    monkeypatch.setattr(tb, "build_engine", fake_build)
    monkeypatch.setitem(sys.modules, "tensorrt", standin_module(version, {}))
    monkeypatch.setattr(type(FORMATS["engine"]), "missing", lambda self: ["tensorrt"] if self.name == "engine" else [])
    verify = version == "10.3.0"  # the graphs' own checks once; the per-target choice is the rest
    rep = run_export(ExportOptions(weights=weights, formats=parse_formats("onnx,engine"), imgsz=64, nms=nms,
                                   target=target, out=tmp_path, verify=verify), log=lambda s: None)
    assert not rep.errors, rep.errors
    assert built["src"].name == "s_trtnms.onnx" and built["target"] == built_for
    ops = [n.op_type for n in onnx.load(str(built["src"])).graph.node]
    assert op in ops
    if op == "EfficientNMS_TRT":
        assert ops[-1] == op and built["meta"]["nms"] == {"conf": 0.25, "iou": 0.45, "max_det": 300}
    else:  # a fixed (300, 7) output: no data-dependent shape for the engine's output buffers
        out = onnx.load(str(built["src"])).graph.output
        assert [d.dim_value for d in out[0].type.tensor_type.shape.dim] == [300, 7]
        assert built["meta"]["nms"] == {"conf": 0.25, "iou": 0.45, "max_det_per_class": 300, "rows": 300}
    names = {Path(a.path).name: a for a in rep.artifacts}
    assert set(names) == {"s.onnx", "s_nms.onnx", "s.engine"}
    assert "NonMaxSuppression" in {n.op_type for n in onnx.load(str(tmp_path / "s_nms.onnx")).graph.node}
    assert read_metadata(tmp_path / "s_nms.onnx")["nms"]["max_det_per_class"] == 300
    assert any("s.engine: not verified here" in p for p in rep.pending) == verify


def test_static_batch_exports_verify_score_and_calibrate(weights: Path, data: Path, tmp_path: Path) -> None:
    """--batch 3 with 4 verification images, the mAP gate (images one by one) and INT8 calibration:
    the static-batch ONNX gets padded batches (these crashed in ONNX Runtime: 'Got: 1 Expected: 3')."""
    rc = run(["export", "--weights", str(weights), "--imgsz", "64", "--format", "onnx", "--batch", "3",
              "--out", str(tmp_path), "--data", str(data), "--int8", "on", "--calib-data", str(data),
              "--calib-images", "7", "--max-int8-drop", "100"])
    assert rc == 0
    rep = json.loads((tmp_path / "export.json").read_text())
    arts = {Path(a["path"]).name: a for a in rep["artifacts"]}
    assert arts["s.onnx"]["parity"]["images"] == 4 and arts["s.onnx"]["map"]["images"] == 6
    assert arts["s_int8.onnx"]["map"]["images"] == 6
    assert any("calibrated on 6 images" in n for n in arts["s_int8.onnx"]["notes"])  # 2 whole batches of 3
