"""Detector: backend + pre-processing + post-processing, one call from BGR images to boxes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends import Backend, load_backend
from .info import UINT8_INPUT
from .processing import Letterboxed, pad_to_batch, postprocess, preprocess


class Detector:
    """``Detector.load("model.onnx")([bgr_image])`` -> per image (n, 6) ``x1, y1, x2, y2, conf, cls``
    in the image's pixels. ``preprocess`` / ``infer`` / ``postprocess`` are exposed separately so a
    video loop can overlap them."""

    def __init__(self, backend: Backend, conf: float = 0.25, iou: float = 0.45, max_det: int = 300,
                 imgsz: int | None = None):
        for name, v in (("conf", conf), ("iou", iou)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"--{name} must be in [0, 1], got {v}")
        if max_det < 1:
            raise ValueError(f"--max-det must be >= 1, got {max_det}")
        self.backend, self.info = backend, backend.info
        stride = max(self.info.stride)
        size = imgsz or self.info.imgsz or 640
        if self.info.imgsz and size != self.info.imgsz:
            raise ValueError(f"--imgsz {size}: {Path(self.info.path).name} was exported at {self.info.imgsz} "
                             "(a static input size)")
        if size % stride:
            raise ValueError(f"--imgsz must be a multiple of {stride}, got {size}")
        self.imgsz, self.conf, self.iou, self.max_det = size, conf, iou, max_det

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", threads: int | None = None, **kw: Any) -> "Detector":
        return cls(load_backend(path, device, threads), **kw)

    @property
    def names(self) -> list[str]:
        return self.info.names

    def preprocess(self, images_bgr: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterboxed]]:
        if self.info.batch and len(images_bgr) > self.info.batch:
            raise ValueError(f"{len(images_bgr)} images but {Path(self.info.path).name} takes batch "
                             f"{self.info.batch} (export with --batch N or --dynamic)")
        x, lbs = preprocess(images_bgr, self.imgsz, uint8=self.info.input == UINT8_INPUT)
        return (pad_to_batch(x, self.info.batch) if self.info.batch else x), lbs  # a static batch: blank images

    def infer(self, x: np.ndarray) -> list[np.ndarray]:
        return self.backend(x)

    def postprocess(self, outputs: Sequence[np.ndarray], letterboxes: Sequence[Letterboxed]) -> list[np.ndarray]:
        return postprocess(outputs, self.info, letterboxes, self.conf, self.iou, self.max_det,
                           getattr(self.backend, "output_names", None))

    def __call__(self, images_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Any number of images: a static-batch artifact runs them in chunks of its batch size, a
        dynamic engine in chunks of its profile's largest batch."""
        step = self.info.batch or self.info.max_batch or max(len(images_bgr), 1)
        out: list[np.ndarray] = []
        for i in range(0, len(images_bgr), step):
            x, lbs = self.preprocess(images_bgr[i:i + step])
            out += self.postprocess(self.infer(x), lbs)
        return out
