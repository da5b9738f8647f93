"""Validation: losses, COCO-style mAP, per-class figures and timing of a model on a data split.

Shared by the training loop (every epoch, on the EMA weights) and ``edgeyolo val``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from edgeyolo.atomic import atomic_write_text
from edgeyolo.ops.boxes import clip_boxes, clip_to_content, scale_boxes, xywh2xyxy
from edgeyolo.ops.confusion import ConfusionMatrix
from edgeyolo.ops.metrics import DetectionEvaluator, DetectionMetrics
from edgeyolo.ops.nms import non_max_suppression

from .loss import YOLOLoss


@dataclass
class ValResult:
    metrics: DetectionMetrics
    losses: np.ndarray  # (3,) mean box, obj, cls loss per batch (zeros when no loss was given)
    speed_ms: dict[str, float]  # per image: preprocess, inference, nms
    n_images: int
    n_labels: int
    confusion: ConfusionMatrix
    names: list[str] = field(default_factory=list)

    @property
    def fitness(self) -> float:
        """0.1 * mAP@0.5 + 0.9 * mAP@0.5:0.95, the early-stopping and best.pt criterion."""
        return 0.1 * self.metrics.map50 + 0.9 * self.metrics.map

    def summary(self) -> dict[str, float]:
        m = self.metrics
        return {"metrics/precision": m.mp, "metrics/recall": m.mr, "metrics/mAP50": m.map50, "metrics/mAP50-95": m.map,
                "val/box_loss": float(self.losses[0]), "val/obj_loss": float(self.losses[1]),
                "val/cls_loss": float(self.losses[2])}

    def table(self) -> str:
        head = f"{'class':>14}{'images':>8}{'labels':>8}{'P':>9}{'R':>9}{'mAP50':>9}{'mAP50-95':>10}"
        m = self.metrics
        lines = [head, f"{'all':>14}{self.n_images:>8}{self.n_labels:>8}{m.mp:>9.3f}{m.mr:>9.3f}{m.map50:>9.3f}{m.map:>10.3f}"]
        for c, name in enumerate(self.names):
            if m.nt[c]:
                lines.append(f"{name:>14}{self.n_images:>8}{int(m.nt[c]):>8}{m.p[c]:>9.3f}{m.r[c]:>9.3f}"
                             f"{m.ap50[c]:>9.3f}{m.ap50_95[c]:>10.3f}")
        s = self.speed_ms
        lines.append(f"Speed: {s['preprocess']:.1f} ms pre-process, {s['inference']:.1f} ms inference, "
                     f"{s['nms']:.1f} ms NMS per image at batch size given; {self.n_images} images")
        return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Forward = Callable[[torch.Tensor], "tuple[list[torch.Tensor] | None, torch.Tensor]"]


@torch.no_grad()
def validate(model: torch.nn.Module, loader: Any, names: list[str], conf_thres: float = 0.001, iou_thres: float = 0.65,
             loss_fn: YOLOLoss | None = None, half: bool = False, save_json: str | Path | None = None,
             progress: bool = True) -> ValResult:
    """Run ``model`` over ``loader`` (a DetectionDataset loader) and score it.

    Detections are matched in the letterboxed image's pixels (IoU is invariant to the letterbox's
    uniform scale and shift); ``save_json`` writes COCO-format detections in original-image pixels
    with ``image_id`` = file stem (an int when numeric) and ``category_id`` = class index.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def forward(imgs: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        raw = model.forward_raw(imgs)
        return raw, model.head.decode(raw)
    try:
        return _score(forward, loader, names, device, conf_thres, iou_thres, loss_fn, half, save_json, progress)
    finally:
        model.train(was_training)


@torch.no_grad()
def validate_artifact(backend: Any, loader: Any, conf_thres: float = 0.001, iou_thres: float = 0.65,
                      save_json: str | Path | None = None, progress: bool = True) -> ValResult:
    """``validate`` for an exported artifact run by its deployment backend (``edgeyolo.runtime``):
    the ONNX / TensorRT / TorchScript file itself is scored, not the checkpoint it came from. Raw
    heads are decoded here; a graph with NMS inside is refused (its thresholds are baked in, so
    its mAP would not be comparable). A fixed-batch artifact gets its last batch padded."""
    from edgeyolo.runtime.info import DECODED, RAW  # noqa: PLC0415
    from edgeyolo.runtime.processing import decode_raw  # noqa: PLC0415
    info = backend.info
    if info.layout not in (DECODED, RAW):
        raise ValueError(f"{info.path}: outputs are {info.layout} (NMS in the graph, thresholds baked in); "
                         "validate the export made without --nms")

    def forward(imgs: torch.Tensor) -> tuple[None, torch.Tensor]:
        x, n = imgs.numpy(), imgs.shape[0]
        if info.batch and n < info.batch:  # a static batch: pad, then drop the padding's predictions
            x = np.concatenate([x, np.zeros((info.batch - n, *x.shape[1:]), x.dtype)])
        outs = backend(x)
        pred = outs[0] if info.layout == DECODED else decode_raw(outs, info.anchors, info.stride)
        return None, torch.from_numpy(np.ascontiguousarray(pred[:n], dtype=np.float32))
    return _score(forward, loader, list(info.names), torch.device("cpu"), conf_thres, iou_thres, None, False, save_json,
                  progress)


def _score(forward: Forward, loader: Any, names: list[str], device: torch.device, conf_thres: float, iou_thres: float,
           loss_fn: YOLOLoss | None, half: bool, save_json: str | Path | None, progress: bool) -> ValResult:
    """The validation loop: ``forward(images)`` -> (raw heads or None, decoded (B, N, 5 + nc))."""
    nc = len(names)
    evaluator, confusion = DetectionEvaluator(nc), ConfusionMatrix(nc)
    losses = torch.zeros(3)
    times = np.zeros(3)
    n_images = n_labels = n_batches = 0
    records = []
    bar = tqdm(loader, desc=f"{'val':>10}", leave=False, disable=not progress, bar_format="{l_bar}{bar:20}{r_bar}")
    for imgs, targets, paths, shapes in bar:
        t0 = time.perf_counter()
        imgs = imgs.to(device, non_blocking=True)
        imgs = (imgs.half() if half else imgs.float()) / 255.0
        _sync(device)
        t1 = time.perf_counter()
        raw, preds = forward(imgs)
        _sync(device)
        t2 = time.perf_counter()
        if loss_fn is not None and raw is not None:
            losses += loss_fn([r.float() for r in raw], targets.to(device))[1].cpu()
        dets = non_max_suppression(preds.float(), conf_thres, iou_thres)
        _sync(device)
        t3 = time.perf_counter()
        times += (t1 - t0, t2 - t1, t3 - t2)
        h, w = imgs.shape[2:]
        for i, det in enumerate(dets):
            lb = targets[targets[:, 0] == i, 1:].numpy()
            gts = np.concatenate([lb[:, :1], xywh2xyxy(lb[:, 1:5] * np.array([w, h, w, h], dtype=np.float32))], 1)
            det_np = det.cpu().numpy()
            # clipped to the image inside the letterbox, as the original-pixel boxes of --save-json are
            det_np[:, :4] = (clip_to_content(det_np[:, :4], (h, w), *shapes[i]) if shapes[i] is not None
                             else clip_boxes(det_np[:, :4], (h, w)))
            evaluator.update(det_np, gts)
            confusion.update(det_np, gts)
            n_labels += len(gts)
            if save_json is not None and shapes[i] is not None:
                records += _coco_records(det_np, paths[i], (h, w), shapes[i])
        n_images += len(dets)
        n_batches += 1
    if save_json is not None:
        atomic_write_text(save_json, json.dumps(records))
    speed = dict(zip(("preprocess", "inference", "nms"), (times / max(n_images, 1) * 1e3).tolist()))
    return ValResult(evaluator.compute(), (losses / max(n_batches, 1)).numpy(), speed, n_images, n_labels,
                     confusion, list(names))


def _coco_records(det: np.ndarray, path: str, img_shape: tuple[int, int], shapes: Any) -> list[dict[str, Any]]:
    (h0, w0), ratio_pad = shapes
    boxes = scale_boxes(img_shape, det[:, :4].copy(), (h0, w0), ratio_pad)
    stem = Path(path).stem
    image_id: int | str = int(stem) if stem.isnumeric() else stem
    return [{"image_id": image_id, "category_id": int(c), "bbox": [round(float(v), 3) for v in
             (b[0], b[1], b[2] - b[0], b[3] - b[1])], "score": round(float(s), 5)}
            for b, s, c in zip(boxes, det[:, 4], det[:, 5])]
