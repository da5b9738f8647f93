"""Images for verification, the mAP gate and INT8 calibration (``int8.calibration``), from a data
YAML through ``edgeyolo.data`` (imported inside the functions: the export graph code does not need it).

Everything downstream takes plain iterables of float32 NCHW batches (0..1, RGB), so a caller
can calibrate on any image source.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np


def dataset(data: str | Path, split: str, imgsz: int):
    """A non-augmented, square-letterboxed ``DetectionDataset`` of ``split``."""
    from edgeyolo.data import DetectionDataset  # noqa: PLC0415 - keeps edgeyolo.data off the import path
    return DetectionDataset(data, split, imgsz, augment=False, rect=False)


def to_float(img_uint8: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) or (3, H, W) uint8 RGB -> float32 0..1 with a batch dim."""
    x = np.asarray(img_uint8, dtype=np.float32) / 255.0
    return x[None] if x.ndim == 3 else x


def image_batches(data: str | Path, imgsz: int, n: int, batch: int = 1, split: str = "train",
                  seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` images of ``split`` (a seeded random subset when the split has more) as float32
    (batch, 3, imgsz, imgsz) arrays; the last batch may be smaller."""
    ds = dataset(data, split, imgsz)
    idx = np.arange(len(ds))
    if n < len(ds):
        idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    for i in range(0, len(idx), batch):
        yield np.concatenate([to_float(ds[int(j)][0].numpy()) for j in idx[i:i + batch]])


def verification_batches(data: str | Path | None, imgsz: int, n: int = 4, batch: int = 1) -> list[np.ndarray]:
    """Real images to compare artifacts on: the val split of ``data``, else the built-in synthetic
    set (generated on first use)."""
    if data is None:
        from edgeyolo.data import synthetic_data_yaml  # noqa: PLC0415
        data = synthetic_data_yaml()
    return list(image_batches(data, imgsz, n, batch, split="val"))

