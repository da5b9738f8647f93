"""The TensorRT backend's own logic (buffers, copies, shapes, both I/O APIs, the sidecar check)
against a stand-in for ``tensorrt`` that computes a known function on the host, run once per
supported TensorRT version and once per CUDA binding (the cross product; each case is a few ms).
The stand-in is held to each supported version's recorded API (tests/trt_standin.py), so the
backend uses only names that version's bindings have; the CUDA bindings are pycuda, cuda-python
and cuda-python's older ``cuda.cudart`` (tests/cuda_fakes.py). No TensorRT or GPU here runs a real
engine (tests/test_export_trt.py does where both exist); this proves the data path through our code."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from edgeyolo.runtime.sidecar import sidecar_path

from cuda_fakes import BINDINGS, GPU, MEM, fake_binding, fake_pycuda
from trt_standin import VERSIONS, standin_module

IMGSZ, N, NC = 32, 4, 4


def expected(x: np.ndarray) -> np.ndarray:
    """What the fake engine computes: out[b, j, k] = mean(x[b]) * (j + 1) + k, shape (B, N, 5 + NC)."""
    m = x.reshape(len(x), -1).mean(1)
    return (m[:, None, None] * np.arange(1, N + 1)[None, :, None] + np.arange(5 + NC)[None, None, :]).astype(np.float32)


class _Context:
    def __init__(self, calls):
        self.calls, self.shape, self.addr = calls, None, {}

    def _run(self, in_addr: int, out_addr: int) -> None:
        x = np.frombuffer(bytes(MEM[in_addr].buf[: int(np.prod(self.shape)) * 4]), np.float32).reshape(self.shape)
        y = expected(x)
        MEM[out_addr].buf[: y.nbytes] = y.tobytes()

    # TensorRT >= 8.5 tensor API
    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return (self.shape[0], N, 5 + NC)

    def set_tensor_address(self, name, addr):
        self.addr[name] = addr

    def execute_async_v3(self, stream_handle):
        self.calls.append("v3")
        self._run(self.addr["images"], self.addr["output"])
        return True

    # TensorRT 8.x bindings API
    def set_binding_shape(self, i, shape):
        self.shape = tuple(shape)
        return True

    def get_binding_shape(self, i):
        return self.shape if i == 0 else (self.shape[0], N, 5 + NC)

    def execute_async_v2(self, bindings, stream_handle):
        self.calls.append("v2")
        self._run(bindings[0], bindings[1])
        return True


class _TensorEngine:
    num_io_tensors = 2

    def __init__(self, calls):
        self.calls = calls

    def get_tensor_name(self, i):
        return ("images", "output")[i]

    def get_tensor_mode(self, name):
        return self._trt.TensorIOMode.INPUT if name == "images" else self._trt.TensorIOMode.OUTPUT

    def get_tensor_shape(self, name):
        return (-1, 3, IMGSZ, IMGSZ) if name == "images" else (-1, N, 5 + NC)

    def get_tensor_profile_shape(self, name, profile):
        return [(1, 3, IMGSZ, IMGSZ), (2, 3, IMGSZ, IMGSZ), (2, 3, IMGSZ, IMGSZ)]

    def get_tensor_dtype(self, name):
        return self._trt.DataType.FLOAT

    def create_execution_context(self):
        return self._trt.IExecutionContext(self.calls)


class _BindingEngine:  # TensorRT 8.2: no num_io_tensors
    num_bindings = 2

    def __init__(self, calls):
        self.calls = calls

    def binding_is_input(self, i):
        return i == 0

    def get_binding_shape(self, i):
        return (-1, 3, IMGSZ, IMGSZ) if i == 0 else (-1, N, 5 + NC)

    def get_profile_shape(self, profile, i):
        return [(1, 3, IMGSZ, IMGSZ), (2, 3, IMGSZ, IMGSZ), (2, 3, IMGSZ, IMGSZ)]

    def get_binding_name(self, i):
        return ("images", "output")[i]

    def get_binding_dtype(self, i):
        return self._trt.DataType.FLOAT

    def create_execution_context(self):
        return self._trt.IExecutionContext(self.calls)


def _fake_trt(engine_cls, calls, version) -> types.ModuleType:
    """``tensorrt`` as ``version``'s bindings offer it, with ``engine_cls`` as its ICudaEngine."""
    class Logger:
        def __init__(self, min_severity=2):
            pass

    class Runtime:
        DLA_core = -1

        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, serialized_engine):
            calls.append("deserialize")
            return self._trt.ICudaEngine(calls)
    classes = {"Logger": Logger, "Runtime": Runtime, "ICudaEngine": engine_cls, "IExecutionContext": _Context}
    return standin_module(version, classes, {
        "init_libnvinfer_plugins": lambda logger, namespace: calls.append("plugins"),
        "nptype": lambda trt_type: {"FLOAT": np.float32}[trt_type.name]})


@pytest.fixture(params=VERSIONS)
def trt_version(request) -> str:
    """The TensorRT version the engine was built with and this machine has (one run per version)."""
    return request.param


@pytest.fixture(params=BINDINGS)
def binding(request) -> str:
    """The CUDA binding the runtime finds (one run per binding; tests/cuda_fakes.py)."""
    return request.param


@pytest.fixture
def engine(tmp_path, trt_version) -> Path:
    path = tmp_path / "m.engine"
    path.write_bytes(b"plan")
    sidecar_path(path).write_text(json.dumps({
        "tensorrt": trt_version, "gpu": GPU, "compute_capability": "8.7", "jetson": None, "precision": "fp16",
        "imgsz": IMGSZ, "names": ["motorcycle", "car", "bus", "truck"], "stride": [8, 16, 32], "decode": True,
        "build": {"dynamic_batch": True, "max_batch": 2}}))
    return path


# The name-based tensor API on every supported version; the binding API of 8.2 (no num_io_tensors);
# each through every CUDA binding.
@pytest.mark.parametrize("trt_version,engine_cls,api", [(v, _TensorEngine, "v3") for v in VERSIONS] +
                         [("8.2.1.8", _BindingEngine, "v2")])
def test_engine_data_path(engine, monkeypatch, trt_version, engine_cls, api, binding):
    calls: list = []
    for name, mod in {**fake_binding(binding, calls), "tensorrt": _fake_trt(engine_cls, calls, trt_version)}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("edgeyolo.runtime.sidecar.jetson_model", lambda: None)
    from edgeyolo.runtime.backends import load_backend
    from edgeyolo.runtime.detector import Detector
    b = load_backend(engine)
    assert b.cuda.name == binding.replace("-legacy", "")
    assert calls.index("plugins") < calls.index("deserialize")  # EfficientNMS_TRT (--nms) resolvable
    assert b.runtime.DLA_core == -1  # built for the GPU: the runtime's default
    assert b.info.format == "engine" and b.info.precision == "fp16" and b.info.batch is None and b.info.imgsz == IMGSZ
    rng = np.random.default_rng(0)
    for batch in (1, 2, 1):  # shapes change between calls; buffers are reused
        x = rng.random((batch, 3, IMGSZ, IMGSZ), dtype=np.float32)
        calls.clear()
        (y,) = b(x)
        np.testing.assert_allclose(y, expected(x), rtol=1e-6)
        assert calls == ["htod", api, "dtoh", "sync"]  # one copy in, enqueue, copy out, one synchronize
    with pytest.raises(ValueError, match="does not fit the engine's images"):
        b(np.zeros((3, 3, IMGSZ, IMGSZ), np.float32))
    dets = Detector(b, conf=0.0)([np.zeros((20, 40, 3), np.uint8)])  # the whole runtime on top of it
    assert len(dets) == 1 and dets[0].shape[1] == 6
    assert b.info.max_batch == 2  # 5 images through a dynamic engine of max batch 2: chunks of 2, 2, 1
    assert len(Detector(b, conf=0.0)([np.zeros((20, 40, 3), np.uint8)] * 5)) == 5
    b.close()


def test_engine_failures_raise_and_dla_core_is_set(engine, monkeypatch, trt_version, binding):
    """A False from execute/set_input_shape raises (the reused buffers would hold the previous
    results); an engine built for a DLA core is deserialized for that core."""
    calls: list = []
    for name, mod in {**fake_binding(binding, calls), "tensorrt": _fake_trt(_TensorEngine, calls, trt_version)}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("edgeyolo.runtime.sidecar.jetson_model", lambda: None)
    side = json.loads(sidecar_path(engine).read_text())
    sidecar_path(engine).write_text(json.dumps({**side, "build": {**side["build"], "dla_core": 1}}))
    from edgeyolo.runtime.trt_backend import TrtBackend
    b = TrtBackend(engine)
    assert b.runtime.DLA_core == 1
    monkeypatch.setattr(_Context, "execute_async_v3", lambda self, stream_handle: False)
    with pytest.raises(RuntimeError, match="TensorRT execute_async_v3 failed"):
        b(np.zeros((1, 3, IMGSZ, IMGSZ), np.float32))


def test_sidecar_mismatch_is_refused_before_the_plan_is_touched(engine, monkeypatch, trt_version, binding):
    calls: list = []
    here = VERSIONS[(VERSIONS.index(trt_version) + 1) % len(VERSIONS)]  # another supported version
    for name, mod in {**fake_binding(binding, calls), "tensorrt": _fake_trt(_TensorEngine, calls, here)}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("edgeyolo.runtime.sidecar.jetson_model", lambda: None)
    from edgeyolo.runtime.sidecar import gpu_identity
    from edgeyolo.runtime.trt_backend import TrtBackend
    assert gpu_identity() == (GPU, "8.7")  # asked through this binding
    with pytest.raises(ValueError, match=rf"built with TensorRT {trt_version}, this machine has {here}"):
        TrtBackend(engine)
    assert "deserialize" not in calls
    sidecar_path(engine).unlink()
    with pytest.raises(ValueError, match="no sidecar m.engine.json"):
        TrtBackend(engine)


def test_missing_bindings_are_one_line(engine, monkeypatch, trt_version):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    from edgeyolo.runtime.trt_backend import TrtBackend
    with pytest.raises(ValueError, match=r"needs TensorRT's Python bindings and pycuda or cuda-python \(tensorrt is"):
        TrtBackend(engine)
    calls: list = []
    for name, mod in fake_binding("cuda-python", calls).items():
        monkeypatch.setitem(sys.modules, name, None)  # neither binding importable
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(_TensorEngine, calls, trt_version))
    with pytest.raises(ValueError, match=r"\(pycuda or cuda-python is missing; .*pip install cuda-python"):
        TrtBackend(engine)
    assert "deserialize" not in calls


def test_pycuda_is_preferred_when_both_are_installed(engine, monkeypatch, trt_version):
    calls: list = []
    mods = {**fake_binding("cuda-python", calls), **fake_pycuda(calls),
            "tensorrt": _fake_trt(_TensorEngine, calls, trt_version)}
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("edgeyolo.runtime.sidecar.jetson_model", lambda: None)
    from edgeyolo.runtime.trt_backend import TrtBackend
    assert TrtBackend(engine).cuda.name == "pycuda"


def test_cuda_python_errors_raise_and_close_frees(engine, monkeypatch, trt_version):
    """A cudaError_t other than cudaSuccess raises, naming the call and the error; close() frees
    every device and pinned buffer (cuda-python has no garbage-collected allocations)."""
    calls: list = []
    mods = {**fake_binding("cuda-python", calls, fail=frozenset({"cudaMemcpyAsync"})),
            "tensorrt": _fake_trt(_TensorEngine, calls, trt_version)}
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("edgeyolo.runtime.sidecar.jetson_model", lambda: None)
    from edgeyolo.runtime.trt_backend import TrtBackend
    b = TrtBackend(engine)
    with pytest.raises(RuntimeError, match=r"CUDA cudaMemcpyAsync\(host to device\) failed: cudaErrorInvalidValue"):
        b(np.zeros((1, 3, IMGSZ, IMGSZ), np.float32))
    devices = [io.device for io in b.io]
    assert all(d in MEM for d in devices)
    b.close()
    assert not any(d in MEM for d in devices) and len(mods["cuda.bindings.runtime"].freed) == 2 * len(devices)
