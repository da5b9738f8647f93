"""The mAP gate's evaluator: any artifact's runner over a validation split, at edgeyolo val's
settings (conf 0.001, NMS IoU 0.65, every image of the split), scored by the core evaluator
(``edgeyolo.ops.evaluate``). Independent of ``edgeyolo.train`` by design (export never imports it)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeyolo.runtime.backends import Backend

CONF_THRES, IOU_THRES = 0.001, 0.65


@dataclass
class MapResult:
    map50_95: float  # fraction (0..1)
    map50: float
    images: int
    evaluator: Any = field(default=None, repr=False)  # the per-image matches, for a paired bootstrap of a drop

    def as_dict(self) -> dict:
        return {"mAP50-95": round(self.map50_95 * 100, 3), "mAP50": round(self.map50 * 100, 3), "images": self.images}


def evaluate_map(runner: Backend, data: str | Path, imgsz: int, nc: int, split: str = "val",
                 max_images: int | None = None) -> MapResult:
    """mAP of ``runner`` (decoded (B, N, 5 + nc) output) on ``split`` of ``data``, image by image,
    in the letterboxed image's pixels (IoU is unchanged by the letterbox's uniform scale and shift)."""
    from edgeyolo.data import build_dataloader  # noqa: PLC0415
    from edgeyolo.ops.evaluate import artifact_predictor, evaluate  # noqa: PLC0415

    from .adapters import fit_batch
    from .images import dataset
    ds = dataset(data, split, imgsz)
    if ds.nc != nc:
        raise ValueError(f"{data}: {ds.nc} classes, the model has {nc}")
    n = len(ds) if max_images is None else min(len(ds), max_images)
    loader = build_dataloader(ds, 1, 0, shuffle=False, distributed=False)
    # images go one by one: a static-batch artifact pads them (fit_batch)
    result = evaluate(artifact_predictor(fit_batch(runner), nc), itertools.islice(loader, n), list(ds.names),
                      conf_thres=CONF_THRES, iou_thres=IOU_THRES, progress=False)
    m = result.metrics
    return MapResult(float(np.nan_to_num(m.map)), float(np.nan_to_num(m.map50)), n, result.matches)
