"""Detection confusion matrix with a background class (YOLOv5's ``ConfusionMatrix``, numpy)."""
from __future__ import annotations

import numpy as np

from .boxes import box_iou


class ConfusionMatrix:
    """``matrix`` (nc + 1, nc + 1) of counts indexed [predicted, true]; index ``nc`` is background
    (row nc: missed GTs, column nc: detections matching no GT).

    Detections below ``conf`` are dropped; a GT and a detection pair up when IoU > ``iou_thres``,
    each GT and each detection at most once, best IoU first (YOLOv5's rule, whatever the classes).
    """

    def __init__(self, nc: int, conf: float = 0.25, iou_thres: float = 0.45):
        if nc < 1:
            raise ValueError(f"nc must be >= 1, got {nc}")
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou_thres <= 1.0:
            raise ValueError(f"conf and iou_thres must be in [0, 1], got {conf} and {iou_thres}")
        self.nc, self.conf, self.iou_thres = nc, conf, iou_thres
        self.matrix = np.zeros((nc + 1, nc + 1), dtype=np.int64)

    def update(self, dets: np.ndarray, gts: np.ndarray) -> None:
        """One image: dets (n, 6) = x1, y1, x2, y2, conf, cls; gts (m, 5) = cls, x1, y1, x2, y2."""
        d = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
        g = np.asarray(gts, dtype=np.float64).reshape(-1, 5)
        d = d[d[:, 4] > self.conf]
        gc, dc = g[:, 0].astype(np.int64), d[:, 5].astype(np.int64)
        if ((gc < 0) | (gc >= self.nc)).any() or ((dc < 0) | (dc >= self.nc)).any():
            raise ValueError(f"classes must be in [0, {self.nc - 1}]")
        iou_all = box_iou(g[:, 1:], d[:, :4])  # (m, n)
        gi, di = np.nonzero(iou_all > self.iou_thres)
        if len(gi):
            iou = iou_all[gi, di]
            order = np.argsort(-iou, kind="stable")  # best IoU first, then one pair per det / per GT
            gi, di = gi[order], di[order]
            _, first = np.unique(di, return_index=True)
            gi, di, iou = gi[first], di[first], iou[order][first]
            order = np.argsort(-iou, kind="stable")
            gi, di = gi[order], di[order]
            _, first = np.unique(gi, return_index=True)
            gi, di = gi[first], di[first]
        matched_gt = np.full(len(g), -1)
        matched_gt[gi] = di
        for k, c in enumerate(gc):
            self.matrix[dc[matched_gt[k]] if matched_gt[k] >= 0 else self.nc, c] += 1
        # Unmatched detections are background false positives. (YOLOv5 counts them only when the
        # image has at least one match, which hides false positives on images with no match.)
        unmatched = np.ones(len(d), dtype=bool)
        unmatched[di] = False
        np.add.at(self.matrix, (dc[unmatched], self.nc), 1)

    def tp_fp(self) -> tuple[np.ndarray, np.ndarray]:
        """(nc,) true positives (diagonal) and false positives (row sum minus diagonal) per class."""
        tp = np.diag(self.matrix)[:-1]
        return tp, self.matrix.sum(1)[:-1] - tp

    def normalized(self) -> np.ndarray:
        """Columns (true classes) normalised to sum 1; empty columns stay 0."""
        col = self.matrix.sum(0, keepdims=True)
        return np.divide(self.matrix, col, out=np.zeros(self.matrix.shape), where=col > 0)
