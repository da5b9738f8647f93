"""Non-maximum suppression in numpy / OpenCV, for the torch-free runtime (no torch import here).

Same steps and arguments as ``edgeyolo.ops.nms.non_max_suppression`` so both keep the same boxes
on the same input. The suppression itself is ``cv2.dnn.NMSBoxesBatched`` when the installed OpenCV
has it (C++, per-class by coordinate offset, IoU without +1 and "suppress if IoU > thr" like
torchvision), else a greedy numpy loop per class.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

MAX_NMS = 30000  # candidates kept (by score) before NMS, as YOLOv5: bounds the NMS cost at low conf_thres
CV2_MAX_BOXES = 2000  # above this many candidates the early-stopping numpy loop beats OpenCV (see batched_nms_numpy)


def _check_args(pred_shape: tuple[int, ...], conf_thres: float, iou_thres: float, max_det: int) -> None:
    """Shared with edgeyolo.ops.nms (which imports it from here, the torch-free side)."""
    if len(pred_shape) != 3 or pred_shape[-1] < 6:
        raise ValueError(f"pred must have shape (B, N, 5 + nc) with nc >= 1, got {tuple(pred_shape)}")
    if not 0.0 <= conf_thres <= 1.0:
        raise ValueError(f"conf_thres must be in [0, 1], got {conf_thres}")
    if not 0.0 <= iou_thres <= 1.0:
        raise ValueError(f"iou_thres must be in [0, 1], got {iou_thres}")
    if max_det < 1:
        raise ValueError(f"max_det must be >= 1, got {max_det}")


def _has_cv2_batched() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "dnn") and hasattr(cv2.dnn, "NMSBoxesBatched")


def nms_greedy(boxes: np.ndarray, scores: np.ndarray, iou_thres: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS of (n, 4) xyxy ``boxes`` sorted by decreasing ``scores`` (n,) -> kept indices,
    in order. A box is dropped when its IoU with a kept box is > ``iou_thres`` (torchvision's rule).
    ``max_keep`` stops after that many kept boxes: the first ``max_keep`` are the same as without
    it, and at conf 0.001 it bounds the loop (thousands of non-overlapping low-score boxes)."""
    x1, y1, x2, y2 = boxes.astype(np.float64).T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def batched_nms_numpy(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_thres: float,
                      backend: Literal["auto", "cv2", "numpy"] = "auto", max_keep: int | None = None) -> np.ndarray:
    """NMS done independently per ``idxs`` category (torchvision ``batched_nms`` semantics):
    (n, 4) xyxy, (n,) scores, (n,) int categories -> kept indices sorted by decreasing score.
    ``max_keep``: only the first ``max_keep`` of that list are needed (the numpy loop stops early).

    ``auto`` uses OpenCV's C++ NMS for up to ``CV2_MAX_BOXES`` candidates and the numpy loop with
    its early stop above that: OpenCV has no such stop and took 4.6 s (numpy: 0.17 s) on the 30,000
    candidates of a conf-0.001 evaluation (benchmarks/studies/runtime_overhead.py)."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    use_cv2 = backend == "cv2" or (backend == "auto" and boxes.shape[0] <= CV2_MAX_BOXES and _has_cv2_batched())
    if use_cv2:
        import cv2

        xywh = np.concatenate((boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]), 1).astype(np.float64)  # Rect2d
        keep = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), idxs.astype(np.int32),
                                       -1.0, float(iou_thres))  # scores already thresholded
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    elif backend in ("auto", "numpy"):
        # Per-class loop rather than the coordinate-offset trick: no precision loss on big offsets.
        keep = np.concatenate([np.flatnonzero(idxs == c)[nms_greedy(boxes[idxs == c], scores[idxs == c], iou_thres,
                                                                     max_keep)] for c in np.unique(idxs)])
    else:
        raise ValueError(f"backend must be 'auto', 'cv2' or 'numpy', got {backend!r}")
    return keep[np.argsort(-scores[keep], kind="stable")]


def non_max_suppression_numpy(pred: np.ndarray, conf_thres: float = 0.001, iou_thres: float = 0.65,
                              classes: list[int] | None = None, agnostic: bool = False, multi_label: bool = True,
                              max_det: int = 300, max_wh: int = 7680,
                              backend: Literal["auto", "cv2", "numpy"] = "auto") -> list[np.ndarray]:
    """Per-image NMS of ``pred`` (B, N, 5 + nc) = cx, cy, w, h (pixels), objectness, class probs ->
    B arrays (n, 6) = x1, y1, x2, y2, conf, cls sorted by conf. See
    ``edgeyolo.ops.nms.non_max_suppression`` for the arguments; ``backend`` picks the suppression
    (``auto``: OpenCV if it has ``dnn.NMSBoxesBatched``, else numpy)."""
    pred = np.asarray(pred)
    _check_args(tuple(pred.shape), conf_thres, iou_thres, max_det)
    if backend not in ("auto", "cv2", "numpy"):
        raise ValueError(f"backend must be 'auto', 'cv2' or 'numpy', got {backend!r}")
    nc = pred.shape[2] - 5
    multi_label &= nc > 1
    out = [np.zeros((0, 6), dtype=pred.dtype)] * pred.shape[0]
    for bi, x in enumerate(pred):  # x (N, 5 + nc)
        x = x[x[:, 4] > conf_thres]
        x = x[(x[:, 2:4] < max_wh).all(1)]
        if not x.shape[0]:
            continue
        conf_all = x[:, 5:] * x[:, 4:5]  # (n, nc), same dtype as pred: same products as torch
        box = np.concatenate((x[:, 0:2] - x[:, 2:4] / 2, x[:, 0:2] + x[:, 2:4] / 2), 1)  # xywh -> xyxy
        if multi_label:
            i, j = np.nonzero(conf_all > conf_thres)
            box, conf, cls = box[i], conf_all[i, j], j
        else:
            cls = conf_all.argmax(1)
            conf = conf_all[np.arange(len(cls)), cls]
            keep = conf > conf_thres
            box, conf, cls = box[keep], conf[keep], cls[keep]
        if classes is not None:
            keep = np.isin(cls, np.asarray(classes))
            box, conf, cls = box[keep], conf[keep], cls[keep]
        if not box.shape[0]:
            continue
        order = np.argsort(-conf, kind="stable")[:MAX_NMS]
        box, conf, cls = box[order], conf[order], cls[order]
        idxs = np.zeros_like(cls) if agnostic else cls
        keep = batched_nms_numpy(box, conf, idxs, iou_thres, backend, max_keep=max_det)[:max_det]
        out[bi] = np.concatenate((box[keep], conf[keep, None], cls[keep, None].astype(box.dtype)), 1)
    return out
