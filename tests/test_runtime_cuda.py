"""cuda-python as the runtime uses it, held to the real module: tests/data/cudart_api.json records,
per cuda-bindings release (tools/record_cudart_api.py), the signature and returned tuple length of
each runtime-API function the runtime calls, the enum members and struct fields it reads. The
runtime may use only recorded names, the tests' stand-in (tests/cuda_fakes.py) must take the same
arguments and return the same tuples, and, where cuda-bindings is installed (it imports without a
GPU), the recording must still describe it."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from cuda_fakes import fake_cudart_module

ROOT = Path(__file__).resolve().parents[1]
API = json.loads((ROOT / "tests" / "data" / "cudart_api.json").read_text())
MODULES = ("cuda.bindings.runtime", "cuda.cudart")
RECORDS = [(v, m, rec) for v, mods in API["versions"].items() for m, rec in mods.items()]
# the runtime names its cuda-python module `cudart` everywhere, so its uses can be found
_USE = re.compile(r"\bcudart\.(\w+)(?:\.(\w+))?")


def runtime_uses() -> dict[str, set[str]]:
    """{name: {members read from it}} for every ``cudart.X`` / ``cudart.X.Y`` in edgeyolo/runtime."""
    uses: dict[str, set[str]] = {}
    for p in (ROOT / "edgeyolo" / "runtime").glob("*.py"):
        for name, member in _USE.findall(p.read_text()):
            uses.setdefault(name, set()).update({member} if member else set())
    return uses


def _arity(version: str, module: str, fn: str) -> int:
    rec = API["versions"][version][module]["functions"][fn]["returns"]
    if rec is None:  # 11.8's cuda.cudart re-exports cuda.bindings.runtime (its shim has no source)
        rec = API["versions"][version]["cuda.bindings.runtime"]["functions"][fn]["returns"]
    return rec


def _params(signature: str) -> int:
    inner = signature[signature.index("(") + 1: signature.rindex(")")].strip()
    return len(inner.split(",")) if inner else 0


def test_the_recording_covers_the_versions_and_both_module_names():
    assert {"11.8.7", "12.9.4", "13.5.0"} <= set(API["versions"])
    assert "cuda.cudart" in API["versions"]["11.8.7"] and "cuda.bindings.runtime" in API["versions"]["13.5.0"]
    uses = runtime_uses()
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaStreamSynchronize", "cudaMemcpyKind"} <= set(uses)


@pytest.mark.parametrize("version,module", [(v, m) for v, m, _ in RECORDS])
def test_runtime_uses_only_recorded_names(version, module):
    rec = API["versions"][version][module]
    missing = []
    for name, members in runtime_uses().items():
        if name in rec["functions"]:
            continue
        have = rec["enums"].get(name, rec["structs"].get(name))
        if have is None:
            missing.append(name)
        missing += [f"{name}.{m}" for m in members if m not in have]
    assert not missing, f"cuda-python {version} ({module}) has no {missing}"


def test_device_properties_fields_are_recorded():
    src = (ROOT / "edgeyolo" / "runtime" / "sidecar.py").read_text()
    used = set(re.findall(r"\bprop\.(\w+)", src))
    assert used == {"name", "major", "minor"}
    for _, _, rec in RECORDS:
        assert used <= set(rec["structs"]["cudaDeviceProp"])


@pytest.mark.parametrize("version,module", [(v, m) for v, m, _ in RECORDS])
def test_stand_in_has_the_recorded_signatures_and_returns(version, module):
    rt = fake_cudart_module([])
    rec = API["versions"][version][module]
    for fn, r in rec["functions"].items():
        fake = getattr(rt, fn)
        assert len(inspect.signature(fake).parameters) == _params(r["signature"]), (fn, r["signature"])
    for enum_name, members in rec["enums"].items():
        assert all(hasattr(getattr(rt, enum_name), m) for m in members)
    # the calls the runtime makes, with ints for pointers as it passes them: tuples of the real length
    host_ptr = rt.cudaMallocHost(8)[1]
    dev_ptr = rt.cudaMalloc(8)[1]
    stream = rt.cudaStreamCreate()[1]
    kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
    results = {"cudaMallocHost": rt.cudaMallocHost(8), "cudaMalloc": rt.cudaMalloc(8),
               "cudaStreamCreate": rt.cudaStreamCreate(),
               "cudaMemcpyAsync": rt.cudaMemcpyAsync(dev_ptr, host_ptr, 8, kind, stream),
               "cudaStreamSynchronize": rt.cudaStreamSynchronize(stream), "cudaFree": rt.cudaFree(dev_ptr),
               "cudaFreeHost": rt.cudaFreeHost(host_ptr), "cudaStreamDestroy": rt.cudaStreamDestroy(stream),
               "cudaGetErrorName": rt.cudaGetErrorName(rt.cudaError_t.cudaErrorInvalidValue),
               "cudaGetDeviceProperties": rt.cudaGetDeviceProperties(0)}
    assert set(results) == set(rec["functions"])
    for fn, result in results.items():
        assert isinstance(result, tuple) and len(result) == _arity(version, module, fn), fn
        assert isinstance(result[0], rt.cudaError_t), fn


def test_installed_cuda_bindings_matches_the_recording():
    try:
        from edgeyolo.runtime.cuda_io import import_cudart
        cudart = import_cudart()
        import cuda.bindings as cb  # noqa: PLC0415
    except ImportError:
        pytest.skip("cuda-bindings is not installed (pip install cuda-bindings; it imports without a GPU)")
    version = getattr(cb, "__version__", "")
    same_major = [v for v in API["versions"] if v.split(".")[0] == version.split(".")[0]]
    if not same_major:
        pytest.fail(f"tests/data/cudart_api.json: no recording for cuda-bindings {version}'s major; "
                    "run tools/record_cudart_api.py")
    rec = API["versions"][max(same_major, key=lambda v: tuple(map(int, v.split("."))))]["cuda.bindings.runtime"]
    for fn, r in rec["functions"].items():
        doc = inspect.cleandoc(getattr(cudart, fn).__doc__ or "")
        assert doc.splitlines()[0] == r["signature"], fn
    for name, members in {**rec["enums"], **rec["structs"]}.items():
        obj = getattr(cudart, name)
        obj = obj() if name in rec["structs"] else obj
        assert all(hasattr(obj, m) for m in members), name


def test_gpu_identity_falls_through_to_torch_when_cuda_python_sees_no_gpu(monkeypatch):
    """cuda-bindings newer than the driver answers with an error where torch's CUDA may still work:
    the build machine's sidecar must then name the GPU torch sees, not none."""
    import sys

    import torch

    from cuda_fakes import GPU, fake_cuda_python
    from edgeyolo.runtime.sidecar import gpu_identity
    for name, mod in fake_cuda_python([], fail=frozenset({"cudaGetDeviceProperties"})).items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Torch GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (9, 0))
    assert gpu_identity() == ("Torch GPU", "9.0")
    for name, mod in fake_cuda_python([]).items():
        monkeypatch.setitem(sys.modules, name, mod)
    assert gpu_identity() == (GPU, "8.7")
