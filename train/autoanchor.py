"""Autoanchor: before a new run trains, check that the model's anchors fit the training labels at
the training size, and evolve new ones when they do not (PyTorch_YOLOv4 u5's ``check_anchors``,
on by default there as here, with one more test of the fit: ``AnchorFit.problem``).
``--autoanchor evolve`` evolves anchors for every new run and keeps them when they fit more
closely; ``off`` keeps the config's anchors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgeyolo.models.yolo import YOLO
from edgeyolo.ops.anchors import AnchorFit, anchor_fit, evolve_anchors, label_sizes


@dataclass(frozen=True)
class AnchorCheck:
    fit: AnchorFit  # of the config's anchors
    new: AnchorFit | None  # of the evolved anchors (None: not evolved)
    changed: bool
    skipped: str = ""  # why no anchors were evolved although asked for

    def message(self, imgsz: int, anchors: torch.Tensor) -> str:
        head = f"autoanchor at {imgsz} px: {_describe(self.fit)}"
        if self.skipped:
            return f"{head}; keeping the config's anchors ({self.skipped})"
        if self.new is None:
            return f"{head}: the anchors fit the data"
        if not self.changed:
            return f"{head}; evolved anchors reach only {_describe(self.new)}, keeping the config's"
        wh = ", ".join(f"{w:.0f},{h:.0f}" for w, h in anchors.reshape(-1, 2).tolist())
        return f"{head}; new anchors reach {_describe(self.new)}: {wh} (saved in the checkpoints' config)"


def _describe(fit: AnchorFit) -> str:
    return (f"{fit.aat:.2f} anchors/target ({fit.one_match:.1%} at most one), best possible recall {fit.bpr:.4f}, "
            f"fitness {fit.fitness:.4f}")


def check_anchors(model: YOLO, labels: list[np.ndarray], shapes: np.ndarray, imgsz: int, thr: float,
                  seed: int = 0, generations: int = 1000, mode: str = "check") -> AnchorCheck:
    """Measure the fit of ``model``'s anchors to the labels (``(n, 5) cls cx cy w h`` per image,
    ``shapes`` (N, 2) original h, w) and replace them (``model.set_anchors``) with evolved ones.
    ``mode`` check evolves anchors when the fit has a ``problem()`` (too few targets can match an
    anchor, or too many match only one), evolve always; either keeps the evolved anchors when their
    best possible recall is higher, or as high with a higher fitness. Sizes are jittered by the
    augmentation's ~±10 % zoom, as in u5."""
    if mode not in ("check", "evolve"):
        raise ValueError(f"autoanchor mode must be check or evolve, got {mode!r}")
    rng = np.random.default_rng(seed)
    wh = label_sizes(labels, shapes, imgsz, scale=rng.uniform(0.9, 1.1, size=len(shapes)))
    current = model.head.anchors.detach().cpu().numpy().reshape(-1, 2)
    fit = anchor_fit(wh, current, thr)
    if mode == "check" and not fit.problem():
        return AnchorCheck(fit, None, False)
    # k-means on the un-jittered sizes, as u5's kmean_anchors
    try:
        evolved = evolve_anchors(label_sizes(labels, shapes, imgsz), len(current), thr, generations, seed)
    except ValueError as e:  # too few labels to fit anchors to
        return AnchorCheck(fit, None, False, skipped=str(e))
    new = anchor_fit(wh, evolved, thr)
    better = new.bpr > fit.bpr or (new.bpr == fit.bpr and new.fitness > fit.fitness)
    if better:
        model.set_anchors(torch.from_numpy(evolved))
    return AnchorCheck(fit, new, better)
