"""Per-layer INT8 sensitivity: how far each quantized conv (with its activation) moves the decoded
detections from the FP32 model's, measured by running it alone in float again."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import onnx

from edgeyolo.runtime.backends import Backend, OrtBackend

from ..adapters import fit_batch
from .bypass import bypass_quantization
from .layers import layer_groups


def detection_error(ref: Backend, probe: list[np.ndarray], imgsz: int) -> Callable[[Any], float]:
    """model (ModelProto or path) -> its mean decoded-detection deviation from ``ref`` on the
    ``probe`` batches (float32 (B, 3, H, W)): what per-layer sensitivity ranks by (fast, and needs no labels)."""
    refs = [ref(x)[0] for x in probe]

    def error(model: Any) -> float:
        run = fit_batch(OrtBackend(model.SerializeToString()) if isinstance(model, onnx.ModelProto) else OrtBackend(model))
        return float(np.mean([_det_error(r, run(x)[0], imgsz) for r, x in zip(refs, probe)]))
    return error


def _det_error(ref: np.ndarray, out: np.ndarray, imgsz: int) -> float:
    """Mean deviation of decoded (B, N, 5 + nc) detections: boxes in units of the image size, plus scores."""
    return float(np.abs(ref[..., :4] - out[..., :4]).mean() / imgsz + np.abs(ref[..., 4:] - out[..., 4:]).mean())


def layer_sensitivity(qdq_onnx: str | Path, fp32_onnx: str | Path, error: Callable[[onnx.ModelProto], float],
                      nodes: Sequence[str] | None = None) -> dict[str, float]:
    """Per quantized conv (with its activation, see ``layer_groups``): how much the error
    (``error(model)``, e.g. output deviation from FP32 on the calibration images) falls when that
    conv alone goes back to float. Sorted, most sensitive first."""
    proto, fp32 = onnx.load(str(qdq_onnx)), onnx.load(str(fp32_onnx))
    groups = layer_groups(fp32)
    nodes = list(nodes) if nodes is not None else list(groups)
    base = float(error(proto))
    out = {name: base - float(error(bypass_quantization(proto, groups.get(name, [name]), fp32))) for name in nodes}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def ranked_layers(qdq_onnx: str | Path, fp32_onnx: str | Path, error: Callable[[onnx.ModelProto], float]
                  ) -> list[list[str]]:
    """The layers whose return to float lowers the error, most sensitive first, each as its node
    names (conv + activation, ``layer_groups``): what ``--int8 auto`` keeps in float, a prefix at a
    time (``kept_nodes``)."""
    groups = layer_groups(fp32_onnx)
    return [groups[n] for n, s in layer_sensitivity(qdq_onnx, fp32_onnx, error).items() if s > 0]
