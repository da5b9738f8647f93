"""Validation of a model being trained, or of a checkpoint or exported file (``edgeyolo val``):
the core evaluator (``edgeyolo.ops.evaluate``) with, for a training model, the mean losses of
each validation batch added to its result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeyolo.ops.evaluate import ValResult, artifact_predictor, evaluate

from .loss import YOLOLoss

__all__ = ["ValResult", "validate", "validate_artifact"]


class _LossMeter:
    """``model``'s forward for the evaluator, keeping each batch's raw heads so that ``add`` can
    sum their (box, obj, cls) losses against the batch's targets."""

    def __init__(self, model: torch.nn.Module, loss_fn: YOLOLoss | None, device: torch.device):
        self.model, self.loss_fn, self.device = model, loss_fn, device
        self.raw: list[torch.Tensor] = []
        self.total, self.batches = torch.zeros(3), 0

    def predict(self, imgs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> decoded (B, N, 5 + nc), the raw (B, na, ny, nx, 5 + nc) heads kept."""
        self.raw = self.model.forward_raw(imgs)
        return self.model.head.decode(self.raw)

    def add(self, targets: torch.Tensor) -> None:
        self.batches += 1
        if self.loss_fn is not None:
            self.total += self.loss_fn([r.float() for r in self.raw], targets.to(self.device))[1].cpu()

    def mean(self) -> np.ndarray:
        """(3,) mean box, obj, cls loss per batch (zeros without a loss function)."""
        return (self.total / max(self.batches, 1)).numpy()


@torch.no_grad()
def validate(model: torch.nn.Module, loader: Any, names: list[str], conf_thres: float = 0.001, iou_thres: float = 0.65,
             loss_fn: YOLOLoss | None = None, half: bool = False, save_json: str | Path | None = None,
             progress: bool = True) -> ValResult:
    """Run ``model`` over ``loader`` (a DetectionDataset loader) and score it; with ``loss_fn``,
    the result's ``losses`` are the mean validation losses. ``save_json``: see ``evaluate``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    meter = _LossMeter(model, loss_fn, device)
    try:
        result = evaluate(meter.predict, loader, names, device, conf_thres, iou_thres, half, save_json, progress,
                          after_predict=meter.add)
    finally:
        model.train(was_training)
    result.losses = meter.mean()
    return result


@torch.no_grad()
def validate_artifact(backend: Any, loader: Any, conf_thres: float = 0.001, iou_thres: float = 0.65,
                      save_json: str | Path | None = None, progress: bool = True) -> ValResult:
    """``validate`` for an exported artifact run by its deployment backend (``edgeyolo.runtime``):
    the ONNX / TensorRT / TorchScript file itself is scored, not the checkpoint it came from. Raw
    heads are decoded; a graph with NMS inside is refused; a fixed-batch artifact gets its last
    batch padded (``artifact_predictor``)."""
    info = backend.info
    predict = artifact_predictor(backend, info.nc, info)
    return evaluate(predict, loader, list(info.names), torch.device("cpu"), conf_thres, iou_thres, False, save_json,
                    progress)
