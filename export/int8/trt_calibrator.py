"""The implicit INT8 calibrator (IInt8EntropyCalibrator2 with a cache), for TensorRT 8.x only:
TensorRT 10 deprecates implicit quantization in favour of Q/DQ ONNX (``qdq.py``), 11 removed it.

``BatchFeeder`` holds the batching logic (testable without TensorRT); ``make_calibrator`` wraps
it in the TensorRT class, imported lazily.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from edgeyolo.atomic import atomic_write_bytes


class BatchFeeder:
    """Regroups float32 NCHW arrays of any batch size into contiguous batches of exactly
    ``batch_size`` (TensorRT's calibrator has a fixed batch); a short remainder is dropped."""

    def __init__(self, batches: Iterable[np.ndarray], batch_size: int):
        if batch_size < 1:
            raise ValueError(f"calibration batch size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._it: Iterator[np.ndarray] = iter(batches)
        self._pending: list[np.ndarray] = []
        self._count = 0
        self.batches_fed = 0

    def next_batch(self) -> np.ndarray | None:
        while self._count < self.batch_size:
            x = next(self._it, None)
            if x is None:
                return None
            x = np.asarray(x, dtype=np.float32)
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"calibration batches must be (B, 3, H, W), got {x.shape}")
            self._pending.append(x)
            self._count += len(x)
        allx = np.concatenate(self._pending)
        out, rest = allx[: self.batch_size], allx[self.batch_size:]
        self._pending, self._count = ([rest] if len(rest) else []), len(rest)
        self.batches_fed += 1
        return np.ascontiguousarray(out)


def make_calibrator(batches: Iterable[np.ndarray], batch_size: int, cache_file: str | Path):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` that reads/writes ``cache_file``."""
    import tensorrt as trt
    import torch

    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise ValueError(f"TensorRT {trt.__version__} has no implicit INT8 calibrator (removed in 11): use --int8 (Q/DQ)")
    feeder = BatchFeeder(batches, batch_size)
    cache_file = Path(cache_file)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.device_buffer: torch.Tensor | None = None  # kept alive while TensorRT reads it

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names, p_str=None):  # noqa: ANN001 - TensorRT's signature
            x = feeder.next_batch()
            if x is None:
                return None
            self.device_buffer = torch.from_numpy(x).cuda()
            return [int(self.device_buffer.data_ptr())]

        def read_calibration_cache(self):
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache) -> None:  # noqa: ANN001
            # atomic: an interrupted write would leave a truncated cache that TensorRT trusts next time
            atomic_write_bytes(cache_file, bytes(cache))

    return EntropyCalibrator()
