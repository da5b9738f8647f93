"""Non-maximum suppression of decoded YOLO outputs (YOLOv5's ``non_max_suppression``, torch).

``edgeyolo.ops.nms_numpy`` is the torch-free twin used by the runtime; both follow the same steps
so that they keep the same boxes (tests/test_nms.py checks it).
"""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from .boxes import xywh2xyxy

# Torch-free shared pieces: both NMS versions reject the same inputs with the same words.
from .nms_numpy import MAX_NMS, _check_args  # noqa: E402


def non_max_suppression(pred: torch.Tensor, conf_thres: float = 0.001, iou_thres: float = 0.65,
                        classes: list[int] | None = None, agnostic: bool = False, multi_label: bool = True,
                        max_det: int = 300, max_wh: int = 7680) -> list[torch.Tensor]:
    """Per-image NMS of ``pred`` (B, N, 5 + nc) = cx, cy, w, h (pixels), objectness, class probs
    (``Detect.decode`` output) -> B tensors (n, 6) = x1, y1, x2, y2, conf, cls, sorted by conf.

    conf = objectness * class probability (YOLOv5). ``multi_label``: a box is kept once per class
    whose conf > ``conf_thres`` (validation, better mAP), otherwise only for its best class.
    ``classes`` keeps only those class ids; ``agnostic`` suppresses across classes. Boxes with a
    side >= ``max_wh`` pixels are dropped as degenerate (the class separation itself is left to
    ``torchvision.ops.batched_nms``, which offsets boxes per class or loops over classes).
    """
    _check_args(tuple(pred.shape), conf_thres, iou_thres, max_det)
    nc = pred.shape[2] - 5
    multi_label &= nc > 1  # one class: the best class is the only class
    out = [torch.zeros((0, 6), device=pred.device, dtype=pred.dtype)] * pred.shape[0]
    for bi, x in enumerate(pred):  # x (N, 5 + nc)
        x = x[x[:, 4] > conf_thres]  # objectness alone bounds conf: a cheap first cut
        x = x[(x[:, 2:4] < max_wh).all(1)]
        if not x.shape[0]:
            continue
        conf_all = x[:, 5:] * x[:, 4:5]  # (n, nc) conf = obj * cls
        box = xywh2xyxy(x[:, :4])  # (n, 4)
        if multi_label:
            i, j = (conf_all > conf_thres).nonzero(as_tuple=False).T
            box, conf, cls = box[i], conf_all[i, j], j
        else:
            conf, cls = conf_all.max(1)
            keep = conf > conf_thres
            box, conf, cls = box[keep], conf[keep], cls[keep]
        if classes is not None:
            keep = torch.isin(cls, torch.as_tensor(classes, device=cls.device))
            box, conf, cls = box[keep], conf[keep], cls[keep]
        if not box.shape[0]:
            continue
        order = conf.argsort(descending=True, stable=True)[:MAX_NMS]
        box, conf, cls = box[order], conf[order], cls[order]
        idxs = torch.zeros_like(cls) if agnostic else cls
        keep = _first_kept(box, conf, idxs, iou_thres, max_det)  # sorted by decreasing conf
        out[bi] = torch.cat((box[keep], conf[keep, None], cls[keep, None].to(box.dtype)), 1)
    return out


def _first_kept(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_thres: float,
                max_det: int) -> torch.Tensor:
    """``batched_nms(boxes, scores, idxs, iou_thres)[:max_det]`` for (n, 4) xyxy ``boxes`` already
    sorted by decreasing ``scores``, run on a growing head of the list: whether a box is kept
    depends only on the boxes scored above it, so once a head keeps ``max_det`` boxes the rest
    cannot change them. torchvision has no such early stop, and at validation's conf 0.001 an
    early-training model sends all ~7,600 candidates of a 320 image through NMS (~80 ms an image
    on a 2-core CPU, more than its forward pass); a head of 4 x ``max_det`` usually suffices."""
    n = boxes.shape[0]
    head = min(n, 4 * max_det)
    while True:
        keep = batched_nms(boxes[:head], scores[:head], idxs[:head], iou_thres)
        if keep.numel() >= max_det or head == n:
            return keep[:max_det]
        head = min(n, 4 * head)
