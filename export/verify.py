"""Output parity of an artifact against the PyTorch model it came from, on real images: the largest
elementwise error, and (decoded outputs) how many of PyTorch's detections the artifact reproduces.

The second is what tells a user something about an INT8 model without labels: its elementwise error
is large by construction (a low-confidence candidate's box can move by hundreds of pixels), while the
detections a deployment keeps should still match."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgeyolo.runtime.backends import Backend

# Decoded outputs mix pixel coordinates (hundreds) and probabilities: errors are judged relative to
# each output's largest magnitude, which keeps one threshold meaningful for both.
FP32_REL_TOL = 1e-4


# detections compared: detect's defaults (conf 0.25, NMS IoU 0.45), matched at IoU 0.5
DET_CONF, DET_NMS_IOU, DET_IOU = 0.25, 0.45, 0.5


@dataclass
class Parity:
    max_abs: float
    max_rel: float  # max |a - b| / max |reference|, over all outputs
    images: int
    det_matched: int | None = None  # PyTorch detections (conf >= DET_CONF) the artifact reproduces
    det_reference: int | None = None  # PyTorch detections; None when the outputs are not decoded boxes

    def ok(self, rel_tol: float = FP32_REL_TOL) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_rel <= rel_tol

    def line(self) -> str:
        s = f"max abs err {self.max_abs:.3g}, max rel err {self.max_rel:.3g} on {self.images} images"
        if self.det_reference:
            s += (f"; detections: {self.det_matched}/{self.det_reference} of PyTorch's (conf {DET_CONF}) "
                  f"matched at IoU {DET_IOU}")
        return s

    def as_dict(self) -> dict:
        d = {"max_abs": self.max_abs, "max_rel": self.max_rel, "images": self.images}
        if self.det_reference is not None:
            d.update(det_matched=self.det_matched, det_reference=self.det_reference)
        return d


def compare(ref: Sequence[np.ndarray], out: Sequence[np.ndarray]) -> tuple[float, float]:
    """(max abs error, max error relative to the reference's largest magnitude) over paired outputs."""
    if len(ref) != len(out):
        raise ValueError(f"artifact returns {len(out)} outputs, PyTorch {len(ref)}")
    max_abs = max_rel = 0.0
    for r, o in zip(ref, out):
        if r.shape != o.shape:
            raise ValueError(f"output shape {o.shape} differs from PyTorch's {r.shape}")
        err = float(np.abs(r.astype(np.float64) - o.astype(np.float64)).max()) if r.size else 0.0
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(float(np.abs(r).max()) if r.size else 0.0, 1e-12))
    return max_abs, max_rel


def matched_detections(ref: np.ndarray, out: np.ndarray, conf: float = DET_CONF, iou: float = DET_IOU
                       ) -> tuple[int, int]:
    """Decoded (B, N, 5 + nc) outputs -> (reference detections the other output has a same-class box
    for at IoU >= ``iou``, one to one, greedily by score; reference detections), after NMS at ``conf``."""
    import torch  # noqa: PLC0415
    from torchvision.ops import box_iou  # noqa: PLC0415

    from edgeyolo.ops.nms import non_max_suppression  # noqa: PLC0415
    dets_r = non_max_suppression(torch.from_numpy(np.ascontiguousarray(ref, np.float32)), conf, DET_NMS_IOU, multi_label=False)
    dets_o = non_max_suppression(torch.from_numpy(np.ascontiguousarray(out, np.float32)), conf, DET_NMS_IOU, multi_label=False)
    matched = total = 0
    for r, o in zip(dets_r, dets_o):
        total += len(r)
        if not len(r) or not len(o):
            continue
        ious = box_iou(r[:, :4], o[:, :4]) * (r[:, 5:6] == o[:, 5].view(1, -1))  # other classes never match
        taken = torch.zeros(len(o), dtype=torch.bool)
        for i in range(len(r)):  # r is sorted by score: the strongest detections claim their match first
            cand = ious[i].masked_fill(taken, 0.0)
            j = int(cand.argmax())
            if cand[j] >= iou:
                taken[j] = True
                matched += 1
    return matched, total


def parity(reference: Backend, artifact: Backend, batches: Sequence[np.ndarray], decoded: bool = False) -> Parity:
    """Run both on every batch and keep the worst errors; with ``decoded`` outputs also count how
    many of the reference's detections the artifact reproduces (``matched_detections``)."""
    from .adapters import fit_batch  # noqa: PLC0415
    artifact = fit_batch(artifact)  # a static batch B: the last, shorter batch padded as a device would
    worst_abs = worst_rel = 0.0
    n = matched = total = 0
    for x in batches:
        ref, out = reference(x), artifact(x)
        a, r = compare(ref, out)
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
        if decoded:
            m, t = matched_detections(ref[0], out[0])
            matched, total = matched + m, total + t
        n += len(x)
    return Parity(worst_abs, worst_rel, n, matched if decoded else None, total if decoded else None)
