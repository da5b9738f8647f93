"""TensorRT pieces testable without TensorRT (sidecar checks, calibrator batching, profiles), and
the builds that need it, skipped with the reason where it or CUDA is missing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeyolo.export.tensorrt_build import EngineOptions, profile_shapes
from edgeyolo.export.int8.trt_calibrator import BatchFeeder
from edgeyolo.runtime.sidecar import check_compatible, read_sidecar, sidecar_path, write_sidecar
from trt_standin import VERSIONS

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
    # --uint8-input: the letterboxed OpenCV frame, (B, H, W, 3)
    assert profile_shapes(EngineOptions(imgsz=320, max_batch=2, nhwc=True))[2] == (2, 320, 320, 3)


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


def _builder_trt(version: str, calls: list, drop: tuple[str, ...] = ()):
    """A stand-in for the builder half of the TensorRT API, held to ``version``'s recorded surface
    (tests/trt_standin.py), recording what build_engine sets. ``drop`` removes members the recorded
    surface has (``IBuilderConfig.set_memory_pool_limit``: TensorRT 8.2, only ``max_workspace_size``)."""
    from trt_standin import standin_module

    class Logger:
        def __init__(self, min_severity=2):
            pass

    class ITensor:
        name = "images"

    class INetworkDefinition:
        def get_input(self, index):
            return self._trt.ITensor()

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse(self, model):
            return True

    class ITimingCache:
        def serialize(self):
            return b"timing"

    class IOptimizationProfile:
        def set_shape(self, input, min, opt, max):  # noqa: A002 - TensorRT's parameter names
            calls.append(("profile", (input, min, opt, max)))

    class IBuilderConfig:
        def set_flag(self, flag):
            calls.append(flag.name)

        def set_memory_pool_limit(self, pool, pool_size):
            calls.append(("pool", pool_size))

        def create_timing_cache(self, serialized_timing_cache):
            return self._trt.ITimingCache()

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append("timing")

        def get_timing_cache(self):
            return self._trt.ITimingCache()

        def add_optimization_profile(self, profile):
            return 0

        def set_calibration_profile(self, profile):
            calls.append("calibration_profile")

        def __setattr__(self, k, v):
            calls.append((k, getattr(v, "name", v)))

    class Builder:
        num_DLA_cores = 2

        def __init__(self, logger):
            calls.append("builder")

        def create_network(self, flags=0):
            calls.append(("network", flags))
            return self._trt.INetworkDefinition()

        def create_builder_config(self):
            return self._trt.IBuilderConfig()

        def create_optimization_profile(self):
            return self._trt.IOptimizationProfile()

        def build_serialized_network(self, network, config):
            return b"plan"

    class IInt8EntropyCalibrator2:
        def __init__(self):
            pass
    for name in drop:
        cls, member = name.split(".")
        delattr(locals()[cls], member)
    classes = {c.__name__: c for c in (Logger, ITensor, INetworkDefinition, OnnxParser, ITimingCache,
                                       IOptimizationProfile, IBuilderConfig, Builder, IInt8EntropyCalibrator2)}
    return standin_module(version, classes, {"init_libnvinfer_plugins": lambda logger, ns: calls.append("plugins")})


def _fp16_onnx(path: Path, fp16: bool) -> Path:
    """A one-node ONNX whose weight is FP16 or FP32: what build_engine's strongly typed check reads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((1,), np.float16 if fp16 else np.float32), "w")
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", w.data_type, [1])], [w])
    onnx.save(helper.make_model(g), str(path))
    return path


# Each supported generation; 8.2 is the 8.6 surface without the memory pool API (its only difference
# that build_engine touches: 8.2 has no wheel on PyPI).
BUILD_CASES = [(v, ()) for v in VERSIONS] + [("8.2.1.8", ("IBuilderConfig.set_memory_pool_limit",))]


@pytest.mark.parametrize("version,drop", BUILD_CASES)
def test_builder_calls_per_tensorrt_version(version, drop, tmp_path: Path, monkeypatch) -> None:
    """The builder's calls on each API generation: plugins registered first (EfficientNMS_TRT for
    --nms), EXPLICIT_BATCH only before 10 and STRONGLY_TYPED from 11, the workspace through the pool
    API or 8.2's property, precision flags only where they exist, DLA with GPU fallback on a fixed batch."""
    import sys

    from edgeyolo.export.tensorrt_build import build_engine
    calls: list = []
    trt = _builder_trt(version, calls, drop)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr("edgeyolo.runtime.sidecar.current_environment", lambda: ENV)
    major = int(version.split(".")[0])
    onnx_path = _fp16_onnx(tmp_path / "m.onnx", fp16=True)
    eng = build_engine(onnx_path, tmp_path / "m.engine", EngineOptions(imgsz=64, workspace_gib=1, dla_core=1, fp16=True,
                                                                        metadata={"imgsz": 64}))
    assert eng.read_bytes() == b"plan" and read_sidecar(eng)["build"]["dla_core"] == 1
    assert calls[:2] == ["plugins", "builder"]
    assert ("network", 0 if major == 10 else 1) in calls  # 1 << EXPLICIT_BATCH (8.x) or 1 << STRONGLY_TYPED (11)
    assert (("max_workspace_size", 2**30) if drop else ("pool", 2**30)) in calls
    assert {"GPU_FALLBACK", ("default_device_type", "DLA"), ("DLA_core", 1)} <= set(calls)
    assert ("FP16" in calls) == (major < 11)
    assert ("profile", ("images", (1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64))) in calls
    with pytest.raises(ValueError, match="--dla needs a fixed batch"):
        build_engine(onnx_path, tmp_path / "d.engine", EngineOptions(imgsz=64, dla_core=0, dynamic_batch=True))
    calls.clear()
    build_engine(onnx_path, tmp_path / "q.engine", EngineOptions(imgsz=64, int8=True))  # a Q/DQ ONNX
    assert ("INT8" in calls) == (major < 11) and "FP16" not in calls


@pytest.mark.parametrize("version", VERSIONS)
def test_implicit_int8_per_version(version, tmp_path: Path, monkeypatch) -> None:
    """The implicit calibrator is set (with its profile) on 8.x only; 10 refuses it as deprecated,
    11 (no calibrator classes) in one line before anything is built."""
    import sys

    from edgeyolo.export.tensorrt_build import build_engine
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", _builder_trt(version, calls))
    monkeypatch.setattr("edgeyolo.runtime.sidecar.current_environment", lambda: ENV)
    onnx_path = _fp16_onnx(tmp_path / "m.onnx", fp16=False)
    imgs = [np.zeros((1, 3, 8, 8), np.float32)]
    o = EngineOptions(imgsz=8, int8=True)
    if version.startswith("8."):
        pytest.importorskip("torch")
        build_engine(onnx_path, tmp_path / "m.engine", o, calibration=imgs)
        calib = [v for k, v in (c for c in calls if isinstance(c, tuple)) if k == "int8_calibrator"]
        assert len(calib) == 1 and "calibration_profile" in calls and "INT8" in calls
        return
    msg = (r"implicit INT8 calibration is deprecated from TensorRT 10 \(this is 10" if version.startswith("10")
           else rf"TensorRT {version} has no implicit INT8 calibration \(removed in 11\): use --int8 \(Q/DQ\)")
    with pytest.raises(ValueError, match=msg):
        build_engine(onnx_path, tmp_path / "m.engine", o, calibration=imgs)


def test_strongly_typed_build_refuses_what_it_would_build_in_fp32(tmp_path: Path, monkeypatch) -> None:
    import sys

    from edgeyolo.export.tensorrt_build import build_engine
    monkeypatch.setitem(sys.modules, "tensorrt", _builder_trt("11.4.0.106", []))
    fp32 = _fp16_onnx(tmp_path / "m.onnx", fp16=False)
    with pytest.raises(ValueError, match=r"m.onnx: an FP32 ONNX builds an FP32 engine on TensorRT 11.4.0.106.*"
                                         r"export --format onnx --fp16 --target 11"):
        build_engine(fp32, tmp_path / "m.engine", EngineOptions(imgsz=64, fp16=True))
    with pytest.raises(ValueError, match="--dla on TensorRT 11.4.0.106 needs --fp16 or --int8"):
        build_engine(fp32, tmp_path / "m.engine", EngineOptions(imgsz=64, dla_core=0))


def test_implicit_int8_cache_is_named_by_model_and_images(tmp_path: Path) -> None:
    from edgeyolo.export.int8.calibration import implicit_calibration_cache
    from edgeyolo.export.tensorrt_build import trt_major
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"model a")
    b.write_bytes(b"model b")
    imgs = [np.zeros((1, 3, 8, 8), np.float32)]
    assert implicit_calibration_cache(a, imgs, tmp_path) != implicit_calibration_cache(b, imgs, tmp_path)
    assert implicit_calibration_cache(a, imgs, tmp_path) != implicit_calibration_cache(a, [imgs[0] + 1], tmp_path)
    assert trt_major("11.0.1") == 11 and trt_major("8.6.1") == 8 and trt_major("10.16.1.11") == 10


def test_calibration_cache_is_written_atomically(tmp_path: Path, monkeypatch) -> None:
    """The calibrator's cache goes through a temporary file and a rename: a write that fails before
    the rename leaves the previous cache and no temporary file, never a truncated cache TensorRT would trust."""
    import sys

    from edgeyolo.export.int8.trt_calibrator import make_calibrator
    pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "tensorrt", _builder_trt("8.5.2.2", []))
    cache = tmp_path / "c.trtcache"
    cal = make_calibrator([np.zeros((1, 3, 8, 8), np.float32)], 1, cache)
    cal.write_calibration_cache(b"scales-1")
    assert cache.read_bytes() == b"scales-1" and cal.read_calibration_cache() == b"scales-1"
    monkeypatch.setattr("edgeyolo.atomic.os.replace", lambda a, b: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        cal.write_calibration_cache(b"scales-2-longer")
    assert cache.read_bytes() == b"scales-1" and [p.name for p in tmp_path.iterdir()] == ["c.trtcache"]
    monkeypatch.setitem(sys.modules, "tensorrt", _builder_trt("11.4.0.106", []))
    with pytest.raises(ValueError, match=r"TensorRT 11.4.0.106 has no implicit INT8 calibrator \(removed in 11\)"):
        make_calibrator([], 1, cache)
