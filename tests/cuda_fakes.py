"""Stand-ins for the runtime's two CUDA bindings, pycuda and cuda-python, on the host: device
memory is a bytearray found by an int address (``MEM``), copies move real bytes, and each call is
logged in ``calls``. The cuda-python one follows the recorded API in tests/data/cudart_api.json
(tests/test_runtime_cuda.py holds it there): every call returns a tuple whose first element is a
``cudaError_t``, pointers are ints, host pointers are real addresses (read with ctypes)."""
from __future__ import annotations

import ctypes
import enum
import types

import numpy as np

GPU, CC = "Fake GPU", (8, 7)
MEM: dict[int, "DevMem"] = {}


class DevMem:
    def __init__(self, nbytes: int):
        self.buf = bytearray(nbytes)
        MEM[id(self)] = self

    def __int__(self) -> int:
        return id(self)


def fake_pycuda(calls: list) -> dict[str, types.ModuleType]:
    drv = types.ModuleType("pycuda.driver")
    drv.init = lambda: None
    drv.Device = lambda i: types.SimpleNamespace(name=lambda: GPU, compute_capability=lambda: CC)
    drv.pagelocked_empty = lambda n, dtype: np.empty(n, dtype)
    drv.mem_alloc = DevMem

    def htod(dev, host, stream):
        calls.append("htod")
        dev.buf[: host.nbytes] = host.tobytes()

    def dtoh(host, dev, stream):
        calls.append("dtoh")
        host[...] = np.frombuffer(bytes(dev.buf[: host.nbytes]), host.dtype)
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = htod, dtoh
    drv.Stream = lambda: types.SimpleNamespace(handle=1, synchronize=lambda: calls.append("sync"))
    pkg = types.ModuleType("pycuda")
    pkg.driver = drv
    return {"pycuda": pkg, "pycuda.driver": drv, "pycuda.autoinit": types.ModuleType("pycuda.autoinit"),
            "pycuda.autoprimaryctx": types.ModuleType("pycuda.autoprimaryctx")}


class cudaError_t(enum.IntEnum):  # noqa: N801  (the real names)
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class cudaStream_t:  # noqa: N801
    def __int__(self) -> int:
        return 7


def fake_cudart_module(calls: list, fail: frozenset = frozenset()) -> types.ModuleType:
    """The runtime module; a function named in ``fail`` returns cudaErrorInvalidValue."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t, rt.cudaMemcpyKind, rt.cudaStream_t = cudaError_t, cudaMemcpyKind, cudaStream_t
    ok, pinned, freed = cudaError_t.cudaSuccess, {}, []
    rt.freed = freed

    def status(name):
        return cudaError_t.cudaErrorInvalidValue if name in fail else ok

    def cudaMallocHost(size):  # noqa: N802
        buf = ctypes.create_string_buffer(size)
        pinned[ctypes.addressof(buf)] = buf
        return status("cudaMallocHost"), ctypes.addressof(buf)

    def cudaMalloc(size):  # noqa: N802
        return status("cudaMalloc"), int(DevMem(size))

    def cudaFree(dev_ptr):  # noqa: N802
        freed.append(MEM.pop(int(dev_ptr)))
        return (ok,)

    def cudaFreeHost(ptr):  # noqa: N802
        freed.append(pinned.pop(int(ptr)))
        return (ok,)

    def cudaMemcpyAsync(dst, src, count, kind, stream):  # noqa: N802
        assert isinstance(dst, int) and isinstance(src, int) and isinstance(stream, cudaStream_t)
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            calls.append("htod")
            MEM[dst].buf[:count] = ctypes.string_at(src, count)
        else:
            calls.append("dtoh")
            ctypes.memmove(dst, bytes(MEM[src].buf[:count]), count)
        return (status("cudaMemcpyAsync"),)

    def cudaStreamCreate():  # noqa: N802
        return status("cudaStreamCreate"), cudaStream_t()

    def cudaStreamSynchronize(stream):  # noqa: N802
        calls.append("sync")
        return (status("cudaStreamSynchronize"),)

    def cudaStreamDestroy(stream):  # noqa: N802
        return (ok,)

    def cudaGetErrorName(error):  # noqa: N802
        return ok, cudaError_t(int(error)).name.encode()

    def cudaGetDeviceProperties(device):  # noqa: N802
        return status("cudaGetDeviceProperties"), types.SimpleNamespace(name=GPU.encode() + b"\0\0", major=CC[0],
                                                                         minor=CC[1])
    for f in (cudaMallocHost, cudaMalloc, cudaFree, cudaFreeHost, cudaMemcpyAsync, cudaStreamCreate,
              cudaStreamSynchronize, cudaStreamDestroy, cudaGetErrorName, cudaGetDeviceProperties):
        setattr(rt, f.__name__, f)
    return rt


def fake_cuda_python(calls: list, legacy: bool = False, fail: frozenset = frozenset()) -> dict[str, types.ModuleType]:
    """sys.modules entries for cuda-python: ``cuda.bindings.runtime`` (12.6+) or, with ``legacy``,
    only ``cuda.cudart`` (11.8 and older 12.x); pycuda made unimportable."""
    rt = fake_cudart_module(calls, fail)
    pkg = types.ModuleType("cuda")
    mods: dict = {"cuda": pkg, "pycuda": None, "pycuda.driver": None}
    if legacy:
        pkg.cudart = rt
        mods.update({"cuda.cudart": rt, "cuda.bindings": None, "cuda.bindings.runtime": None})
    else:
        bindings = types.ModuleType("cuda.bindings")
        bindings.runtime = pkg.bindings = rt
        mods.update({"cuda.bindings": bindings, "cuda.bindings.runtime": rt, "cuda.cudart": None})
    return mods


BINDINGS = ("pycuda", "cuda-python", "cuda-python-legacy")


def fake_binding(kind: str, calls: list, fail: frozenset = frozenset()) -> dict[str, types.ModuleType]:
    if kind == "pycuda":
        return fake_pycuda(calls)
    return fake_cuda_python(calls, legacy=kind == "cuda-python-legacy", fail=fail)
