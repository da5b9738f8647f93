"""TensorRT pieces testable without TensorRT (sidecar checks, calibrator batching, profiles), and
the builds that need it, skipped with the reason where it or CUDA is missing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeyolo.export.tensorrt_build import EngineOptions, profile_shapes
from edgeyolo.export.trt_calibrator import BatchFeeder
from edgeyolo.runtime.sidecar import check_compatible, read_sidecar, sidecar_path, write_sidecar

ENV = {"tensorrt": "8.5.2.2", "gpu": "Orin", "compute_capability": "8.7", "jetson": "NVIDIA Jetson AGX Orin"}


def test_sidecar_roundtrip_and_mismatch(tmp_path: Path) -> None:
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"plan")
    write_sidecar(eng, ENV, "fp16", {"imgsz": 320, "names": ["a"], "stride": [8, 16, 32], "extra": 1}, {"fp16": True})
    side = read_sidecar(eng)
    assert sidecar_path(eng).name == "m.engine.json" and side["precision"] == "fp16" and "extra" not in side
    check_compatible(side, ENV)
    with pytest.raises(ValueError, match=r"built with TensorRT 8\.5\.2\.2, this machine has 10\.3\.0.*rebuild"):
        check_compatible(side, {**ENV, "tensorrt": "10.3.0"}, "m.engine")
    with pytest.raises(ValueError, match=r"built on GPU 'Orin', this machine has 'NVIDIA A100'"):
        check_compatible(side, {**ENV, "gpu": "NVIDIA A100"}, "m.engine")
    with pytest.raises(ValueError, match="Jetson model"):
        check_compatible(side, {**ENV, "jetson": "NVIDIA Jetson Xavier NX"}, "m.engine")


def test_missing_or_broken_sidecar(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no sidecar m.engine.json"):
        read_sidecar(tmp_path / "m.engine")
    sidecar_path(tmp_path / "m.engine").write_text("{")
    with pytest.raises(ValueError, match="unreadable sidecar"):
        read_sidecar(tmp_path / "m.engine")


def test_batch_feeder_regroups_to_fixed_batches() -> None:
    src = [np.full((n, 3, 4, 4), i, np.float32) for i, n in enumerate([1, 3, 2, 1])]  # 7 images
    f = BatchFeeder(src, 2)
    got = []
    while (b := f.next_batch()) is not None:
        got.append(b)
    assert [b.shape[0] for b in got] == [2, 2, 2] and f.batches_fed == 3  # the 7th image is dropped
    assert [b[:, 0, 0, 0].tolist() for b in got] == [[0, 1], [1, 1], [2, 2]]
    assert all(b.flags["C_CONTIGUOUS"] for b in got)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        BatchFeeder([np.zeros((3, 4, 4), np.float32)], 1).next_batch()
    with pytest.raises(ValueError, match=">= 1"):
        BatchFeeder([], 0)


def test_profile_shapes() -> None:
    assert profile_shapes(EngineOptions(imgsz=320, max_batch=4, dynamic_batch=True)) == (
        (1, 3, 320, 320), (4, 3, 320, 320), (4, 3, 320, 320))
    assert profile_shapes(EngineOptions(imgsz=320, max_batch=2))[0] == (2, 3, 320, 320)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_build_and_run_engine(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (pip install 'edgeyolo[trt]')")
    from edgeyolo.export.deploy import DeployModel, prepare_model
    from edgeyolo.export.onnx_export import export_onnx
    from edgeyolo.export.targets import get_target
    from edgeyolo.export.tensorrt_build import build_engine
    from edgeyolo.runtime.trt_backend import TrtBackend as TrtRunner
    from edgeyolo.models import build_model
    model = build_model("yolov4s-mbv3s", nc=4).eval()
    deploy, _ = prepare_model(model, get_target("10"))
    onnx_path = export_onnx(deploy, tmp_path / "m.onnx", 128, opset=17)
    eng = build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(imgsz=128, metadata={"imgsz": 128}))
    x = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    out = TrtRunner(eng)(x)[0]
    with torch.no_grad():
        ref = DeployModel(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-2)
    side = json.loads(sidecar_path(eng).read_text())
    side["tensorrt"] = "0.0.0"
    sidecar_path(eng).write_text(json.dumps(side))
    with pytest.raises(ValueError, match="built with TensorRT 0.0.0"):
        TrtRunner(eng)
