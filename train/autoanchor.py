"""Autoanchor: before a new run trains, check that the model's anchors fit the training labels at
the training size, and evolve new ones when they do not (PyTorch_YOLOv4 u5's ``check_anchors``,
on by default there as here; ``--no-autoanchor`` keeps the config's anchors)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgeyolo.models.yolo import YOLO
from edgeyolo.ops.anchors import BPR_OK, anchor_fit, evolve_anchors, label_sizes


@dataclass(frozen=True)
class AnchorCheck:
    bpr: float  # best possible recall of the config's anchors
    aat: float  # anchors per target above the threshold
    new_bpr: float | None  # of the evolved anchors (None: not evolved)
    changed: bool
    skipped: str = ""  # why no anchors were evolved although the fit is poor

    def message(self, imgsz: int, anchors: torch.Tensor) -> str:
        head = f"autoanchor: {self.aat:.2f} anchors/target, best possible recall {self.bpr:.4f} at {imgsz} px"
        if self.skipped:
            return f"{head}; keeping the config's anchors ({self.skipped})"
        if self.new_bpr is None:
            return f"{head}: the anchors fit the data"
        if not self.changed:
            return f"{head}; evolved anchors reach only {self.new_bpr:.4f}, keeping the config's"
        wh = ", ".join(f"{w:.0f},{h:.0f}" for w, h in anchors.reshape(-1, 2).tolist())
        return f"{head}; new anchors reach {self.new_bpr:.4f}: {wh} (saved in the checkpoints' config)"


def check_anchors(model: YOLO, labels: list[np.ndarray], shapes: np.ndarray, imgsz: int, thr: float,
                  seed: int = 0, generations: int = 1000) -> AnchorCheck:
    """Measure the fit of ``model``'s anchors to the labels (``(n, 5) cls cx cy w h`` per image,
    ``shapes`` (N, 2) original h, w) and replace them (``model.set_anchors``) when their best
    possible recall is under ``BPR_OK`` and evolved anchors do better. Sizes are jittered by the
    augmentation's ~±10 % zoom, as in u5."""
    rng = np.random.default_rng(seed)
    wh = label_sizes(labels, shapes, imgsz, scale=rng.uniform(0.9, 1.1, size=len(shapes)))
    current = model.head.anchors.detach().cpu().numpy().reshape(-1, 2)
    fit = anchor_fit(wh, current, thr)
    if fit.bpr > BPR_OK:
        return AnchorCheck(fit.bpr, fit.aat, None, False)
    # k-means on the un-jittered sizes, as u5's kmean_anchors
    try:
        new = evolve_anchors(label_sizes(labels, shapes, imgsz), len(current), thr, generations, seed)
    except ValueError as e:  # too few labels to fit anchors to
        return AnchorCheck(fit.bpr, fit.aat, None, False, skipped=str(e))
    new_bpr = anchor_fit(wh, new, thr).bpr
    if new_bpr <= fit.bpr:
        return AnchorCheck(fit.bpr, fit.aat, new_bpr, False)
    model.set_anchors(torch.from_numpy(new))
    return AnchorCheck(fit.bpr, fit.aat, new_bpr, True)
