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


def _builder_trt(version: str, calls: list, pool_api: bool = True):
    """A stand-in for the builder half of the TensorRT Python API, recording what build_engine sets:
    ``pool_api`` False is TensorRT 8.2 (no memory pools, only ``max_workspace_size``)."""
    import types

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})
    trt.init_libnvinfer_plugins = lambda logger, ns: calls.append("plugins")
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8", GPU_FALLBACK="GPU_FALLBACK")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.DeviceType = types.SimpleNamespace(DLA="DLA")
    cache = types.SimpleNamespace(serialize=lambda: b"timing")

    class Config:
        def set_flag(self, f):
            calls.append(f)

        def create_timing_cache(self, data):
            return cache

        def set_timing_cache(self, c, ignore_mismatch):
            calls.append("timing")

        def get_timing_cache(self):
            return cache

        def add_optimization_profile(self, p):
            calls.append(("profile", p.shapes))

        def __setattr__(self, k, v):
            calls.append((k, v))
    if pool_api:
        Config.set_memory_pool_limit = lambda self, pool, size: calls.append(("pool", size))

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            self.shapes = (name, lo, opt, hi)

    class Builder:
        num_DLA_cores = 2

        def __init__(self, logger):
            calls.append("builder")

        def create_network(self, flags):
            calls.append(("network", flags))
            return types.SimpleNamespace(get_input=lambda i: types.SimpleNamespace(name="images"))

        create_builder_config = staticmethod(lambda: Config())
        create_optimization_profile = staticmethod(lambda: Profile())
        build_serialized_network = staticmethod(lambda network, config: b"plan")
    trt.Builder = Builder
    trt.OnnxParser = lambda network, logger: types.SimpleNamespace(parse=lambda data: True, num_errors=0)
    return trt


@pytest.mark.parametrize("version,pool_api", [("10.3.0", True), ("8.5.2.2", True), ("8.2.1.8", False)])
def test_builder_calls_per_tensorrt_version(version, pool_api, tmp_path: Path, monkeypatch) -> None:
    """The builder's calls on each API generation: plugins registered first (EfficientNMS_TRT for
    --nms), EXPLICIT_BATCH only before 10, the workspace through the pool API or 8.2's property,
    DLA with FP16 and GPU fallback on a fixed batch."""
    import sys

    from edgeyolo.export.tensorrt_build import build_engine
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", _builder_trt(version, calls, pool_api))
    monkeypatch.setattr("edgeyolo.runtime.sidecar.current_environment", lambda: ENV)
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"onnx")
    eng = build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(imgsz=64, workspace_gib=1, dla_core=1,
                                                                        metadata={"imgsz": 64}))
    assert eng.read_bytes() == b"plan" and read_sidecar(eng)["build"]["dla_core"] == 1
    assert calls[:2] == ["plugins", "builder"]
    assert ("network", 0 if version.startswith("10") else 1) in calls
    assert (("pool", 2**30) if pool_api else ("max_workspace_size", 2**30)) in calls
    assert {"FP16", "GPU_FALLBACK", ("default_device_type", "DLA"), ("DLA_core", 1)} <= set(calls)
    assert ("profile", ("images", (1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64))) in calls
    with pytest.raises(ValueError, match="--dla needs a fixed batch"):
        build_engine(onnx_path, tmp_path / "d.engine", EngineOptions(imgsz=64, dla_core=0, dynamic_batch=True))


def test_implicit_int8_cache_is_named_by_model_and_images(tmp_path: Path, monkeypatch) -> None:
    import sys

    from edgeyolo.export.tensorrt_build import build_engine, implicit_calibration_cache, trt_major
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"model a")
    b.write_bytes(b"model b")
    imgs = [np.zeros((1, 3, 8, 8), np.float32)]
    assert implicit_calibration_cache(a, imgs, tmp_path) != implicit_calibration_cache(b, imgs, tmp_path)
    assert implicit_calibration_cache(a, imgs, tmp_path) != implicit_calibration_cache(a, [imgs[0] + 1], tmp_path)
    assert trt_major("11.0.1") == 11 and trt_major("8.6.1") == 8
    monkeypatch.setitem(sys.modules, "tensorrt", _builder_trt("11.0.0", []))
    with pytest.raises(ValueError, match="implicit INT8 calibration is deprecated from TensorRT 10 "
                                         r"\(this is 11.0.0\)"):
        build_engine(a, tmp_path / "m.engine", EngineOptions(imgsz=64, int8=True), calibration=imgs)
