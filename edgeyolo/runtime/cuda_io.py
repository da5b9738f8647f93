"""Device memory, copies and one stream for the TensorRT backend, through pycuda or cuda-python.

pycuda is used when it is installed (JetPack images often have it); otherwise cuda-python
(``cuda-bindings``, a pip wheel, NVIDIA's own samples use it): pycuda builds from source against
the CUDA toolkit headers, which a fresh Jetson or a desktop venv may lack. Both give the same
thing: pinned host arrays, device allocations addressed by an int, async copies on one stream and
a synchronize. cuda-python's runtime API calls return tuples whose first element is a
``cudaError_t``; every one is checked, since a failed copy would leave the previous results in the
reused buffers. The names used from ``cudart`` are held to the real module's in
tests/data/cudart_api.json (tests/test_runtime_cuda.py).
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable

import numpy as np


class PycudaIO:
    name = "pycuda"

    def __init__(self, driver: Any):
        try:  # device 0's primary context, the one torch uses: a pycuda.autoinit context would clash with it
            import pycuda.autoprimaryctx  # noqa: F401, PLC0415
        except ImportError:  # pycuda < 2021.1
            import pycuda.autoinit  # noqa: F401, PLC0415
        self.drv = driver
        self.stream = driver.Stream()
        self.stream_handle = int(self.stream.handle)

    def host(self, n: int, dtype: np.dtype) -> np.ndarray:
        return self.drv.pagelocked_empty(n, dtype)

    def alloc(self, nbytes: int) -> Any:
        return self.drv.mem_alloc(max(nbytes, 1))  # freed with the object

    def htod(self, device: Any, host: np.ndarray) -> None:
        self.drv.memcpy_htod_async(device, host, self.stream)

    def dtoh(self, host: np.ndarray, device: Any) -> None:
        self.drv.memcpy_dtoh_async(host, device, self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def close(self) -> None:
        pass


class CudartIO:
    """cuda-python's runtime API (the primary context, as torch and TensorRT use)."""

    name = "cuda-python"

    def __init__(self, cudart: Any):
        self.cudart = cudart
        self._success = int(cudart.cudaError_t.cudaSuccess)
        self._device: list[int] = []
        self._host: list[int] = []
        self.stream = self._check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.stream_handle = int(self.stream)

    def _check(self, result: tuple[Any, ...], call: str) -> Any:
        err, rest = result[0], tuple(result[1:])
        if int(err) != self._success:
            try:
                name = self.cudart.cudaGetErrorName(err)[1].decode()
            except Exception:  # noqa: BLE001  (the code alone still says what failed)
                name = str(err)
            raise RuntimeError(f"CUDA {call} failed: {name}")
        return rest[0] if len(rest) == 1 else None

    def host(self, n: int, dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(n * dtype.itemsize, 1)
        ptr = int(self._check(self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        self._host.append(ptr)
        return np.frombuffer((ctypes.c_char * nbytes).from_address(ptr), dtype, count=n)

    def alloc(self, nbytes: int) -> int:
        ptr = int(self._check(self.cudart.cudaMalloc(max(nbytes, 1)), f"cudaMalloc({nbytes})"))
        self._device.append(ptr)
        return ptr

    def htod(self, device: int, host: np.ndarray) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.cudart.cudaMemcpyAsync(device, host.ctypes.data, host.nbytes, kind, self.stream),
                    "cudaMemcpyAsync(host to device)")

    def dtoh(self, host: np.ndarray, device: int) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.cudart.cudaMemcpyAsync(host.ctypes.data, device, host.nbytes, kind, self.stream),
                    "cudaMemcpyAsync(device to host)")

    def synchronize(self) -> None:
        self._check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def close(self) -> None:
        """Free what was allocated; the host arrays handed out must not be used afterwards."""
        for ptr in self._device:
            self.cudart.cudaFree(ptr)
        for ptr in self._host:
            self.cudart.cudaFreeHost(ptr)
        self._device, self._host = [], []
        if self.stream is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None


def import_cudart() -> Any:
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (12.6+), else ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime  # noqa: PLC0415
        return runtime
    except ImportError:
        from cuda import cudart  # noqa: PLC0415  (cuda-python < 12.6, e.g. 11.8 on JetPack 5)
        return cudart


def find_cuda_io() -> Callable[[], PycudaIO | CudartIO]:
    """pycuda when installed, else cuda-python, as a constructor: nothing touches the GPU until it
    is called (after the engine's sidecar check). ImportError naming both when neither is there."""
    try:
        import pycuda.driver as driver  # noqa: PLC0415
    except ImportError:
        pass
    else:
        return lambda: PycudaIO(driver)
    try:
        cudart = import_cudart()
    except ImportError:
        raise ImportError("neither pycuda nor cuda-python is installed", name="pycuda or cuda-python") from None
    return lambda: CudartIO(cudart)
