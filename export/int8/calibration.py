"""INT8 calibration data: the images (float32 (B, 3, H, W) RGB 0..1 batches), how they are fed to
ONNX Runtime's calibrators, and the cache files their ranges are kept in (Q/DQ: ORT's JSON;
implicit TensorRT 8.x: the calibrator's binary cache), named by what makes them valid."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

CALIB_METHODS = ("entropy", "minmax", "percentile")
MIN_CALIB_IMAGES = 300  # below this, activation ranges of rare classes/scenes are poorly sampled
# ONNX Runtime's calibrators keep every intermediate tensor of every image they are given before
# reducing them: 512 images at 320 px took 24 GB and were OOM-killed. Calibration is therefore fed
# in chunks of at most this many images (ORT reduces and frees after each chunk; MinMax ranges
# merge exactly, histograms are merged bin-wise).
CALIB_CHUNK = 8


def calibration_source(calib_data: Path | None, data: Path | None) -> Path:
    """The data YAML to calibrate on: --calib-data, else --data, else the built-in synthetic set."""
    if calib_data is not None:
        return calib_data
    if data is not None:
        return data
    from edgeyolo.data import synthetic_data_yaml  # noqa: PLC0415
    warnings.warn("no --calib-data: calibrating INT8 on the built-in synthetic set; pass your own images", stacklevel=3)
    return synthetic_data_yaml()


def calibration_batches(data: str | Path, imgsz: int, n: int = 512, batch: int = 1) -> list[np.ndarray]:
    """The calibration set: ``n`` training images (all of them if fewer), warning below 300."""
    from ..images import image_batches  # noqa: PLC0415
    if n < 1:
        raise ValueError(f"--calib-images must be >= 1, got {n}")
    batches = list(image_batches(data, imgsz, n, batch, split="train"))
    got = sum(len(b) for b in batches)
    if got < MIN_CALIB_IMAGES:
        warnings.warn(f"calibrating INT8 on {got} images; use >= {MIN_CALIB_IMAGES} representative images "
                      "or the activation ranges may not cover your data", stacklevel=2)
    return batches


class BatchReader:
    """onnxruntime's CalibrationDataReader over in-memory float32 NCHW batches."""

    def __init__(self, batches: Sequence[np.ndarray], input_name: str = "images"):
        self.batches, self.input_name, self._i = list(batches), input_name, 0
        self._end = len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Serve only batches[start_index:end_index] (ORT's chunked calibration calls this)."""
        self._i, self._end = start_index, min(end_index, len(self.batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= self._end:
            return None
        self._i += 1
        return {self.input_name: np.ascontiguousarray(self.batches[self._i - 1], dtype=np.float32)}

    def rewind(self) -> None:
        self._i, self._end = 0, len(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def calib_chunk(n: int, limit: int = CALIB_CHUNK) -> int:
    """The largest chunk size <= ``limit`` that divides ``n`` (ORT requires equal chunks)."""
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def calibration_reader(batches: Sequence[np.ndarray] | None) -> tuple[BatchReader | None, dict[str, Any]]:
    """ORT's data reader over ``batches`` (None: ranges come from a cache) and the extra options
    that make it calibrate in chunks of at most ``CALIB_CHUNK`` images."""
    reader = BatchReader(batches) if batches is not None else None
    extra: dict[str, Any] = {}
    if reader is not None and len(reader) > CALIB_CHUNK:
        extra["CalibStridedMinMax"] = calib_chunk(len(reader))  # despite the name: chunks for every method
    return reader, extra


def ort_method(method: str) -> Any:
    """--calib-method -> onnxruntime's CalibrationMethod."""
    from onnxruntime.quantization import CalibrationMethod  # noqa: PLC0415
    table = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}
    if method not in table:
        raise ValueError(f"--calib-method must be one of {', '.join(CALIB_METHODS)}, got {method!r}")
    return table[method]


def batches_digest(batches: Iterable[np.ndarray]) -> str:
    """Content hash of calibration batches (part of the calibration cache key)."""
    h = hashlib.sha256()
    for b in batches:
        h.update(np.ascontiguousarray(b, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def _cache_key(onnx_path: str | Path, batches: Sequence[np.ndarray], *extra: str) -> str:
    """16 hex digits over the model bytes, the images and ``extra``: a retrained model or other
    images never reuse stale ranges (ORT and TensorRT both trust any cache they read)."""
    h = hashlib.sha256(Path(onnx_path).read_bytes())
    h.update(batches_digest(batches).encode())
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


def calibration_cache_path(fp32_onnx: str | Path, batches: Sequence[np.ndarray], method: str,
                           cache_dir: str | Path) -> Path:
    """``cache_dir/calib-<hash>.json``, ORT's ranges for the Q/DQ model; the hash covers the model
    bytes, the images and the method, so a cache is reused exactly when its ranges are still valid."""
    return Path(cache_dir) / f"calib-{_cache_key(fp32_onnx, batches, method)}.json"


def implicit_calibration_cache(onnx_path: str | Path, calibration: Sequence[np.ndarray], folder: Path) -> Path:
    """``folder/calib-<hash>.trtcache``, the implicit TensorRT calibrator's scale cache, named by the
    ONNX and the calibration images."""
    return Path(folder) / f"calib-{_cache_key(onnx_path, calibration)}.trtcache"
