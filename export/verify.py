"""Output parity of an artifact against the PyTorch model it came from, on real images."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .runtime import Runner

# Decoded outputs mix pixel coordinates (hundreds) and probabilities: errors are judged relative to
# each output's largest magnitude, which keeps one threshold meaningful for both.
FP32_REL_TOL = 1e-4


@dataclass
class Parity:
    max_abs: float
    max_rel: float  # max |a - b| / max |reference|, over all outputs
    images: int

    def ok(self, rel_tol: float = FP32_REL_TOL) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_rel <= rel_tol

    def line(self) -> str:
        return f"max abs err {self.max_abs:.3g}, max rel err {self.max_rel:.3g} on {self.images} images"


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


def parity(reference: Runner, artifact: Runner, batches: Sequence[np.ndarray]) -> Parity:
    """Run both on every batch and keep the worst errors."""
    worst_abs = worst_rel = 0.0
    n = 0
    for x in batches:
        a, r = compare(reference(x), artifact(x))
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
        n += len(x)
    return Parity(worst_abs, worst_rel, n)
