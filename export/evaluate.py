"""The mAP gate's evaluator: any artifact's runner over a validation split, at edgeyolo val's
settings (conf 0.001, NMS IoU 0.65, every image of the split), COCO-style mAP from
``edgeyolo.ops.metrics``. Independent of ``edgeyolo.train`` by design (export never imports it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def labels_to_xyxy(labels: np.ndarray, w: int, h: int) -> np.ndarray:
    """Dataset labels (n, 6) ``[_, cls, cx, cy, w, h]`` normalised -> (n, 5) ``cls, x1, y1, x2, y2`` pixels."""
    lb = np.asarray(labels, dtype=np.float64).reshape(-1, 6)
    cx, cy, bw, bh = lb[:, 2] * w, lb[:, 3] * h, lb[:, 4] * w, lb[:, 5] * h
    return np.stack([lb[:, 1], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)


def evaluate_map(runner: Backend, data: str | Path, imgsz: int, nc: int, split: str = "val",
                 max_images: int | None = None) -> MapResult:
    """mAP of ``runner`` (decoded (B, N, 5 + nc) output) on ``split`` of ``data``, in the
    letterboxed image's pixels (IoU is unchanged by the letterbox's uniform scale and shift)."""
    from edgeyolo.ops.boxes import clip_to_content  # noqa: PLC0415
    from edgeyolo.ops.metrics import DetectionEvaluator  # noqa: PLC0415
    from edgeyolo.ops.nms import non_max_suppression  # noqa: PLC0415

    from .images import dataset, to_float
    from .adapters import fit_batch
    runner = fit_batch(runner)  # images go one by one: a static-batch artifact pads them
    ds = dataset(data, split, imgsz)
    if ds.nc != nc:
        raise ValueError(f"{data}: {ds.nc} classes, the model has {nc}")
    ev = DetectionEvaluator(nc)
    n = len(ds) if max_images is None else min(len(ds), max_images)
    for i in range(n):
        img, labels, _, shapes = ds[i]
        pred = runner(to_float(img.numpy()))[0]
        if pred.ndim != 3 or pred.shape[-1] != nc + 5:
            raise ValueError(f"mAP needs the decoded (B, N, {nc + 5}) output, got {pred.shape} (--raw or --nms?)")
        det = non_max_suppression(torch.from_numpy(pred), CONF_THRES, IOU_THRES)[0].numpy()
        det[:, :4] = clip_to_content(det[:, :4], img.shape[1:], *shapes)  # as scoring in the original pixels would
        ev.update(det, labels_to_xyxy(labels.numpy(), img.shape[2], img.shape[1]))
    m = ev.compute()
    return MapResult(float(np.nan_to_num(m.map)), float(np.nan_to_num(m.map50)), n, ev)
