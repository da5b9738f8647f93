"""Scoring a detector on a labelled split: the one loop behind ``edgeyolo val`` (checkpoints and
exported artifacts), training's per-epoch validation, export's mAP gate and the bench's mAP column.

``evaluate(predict, loader, names)``: ``predict`` maps a batch of images, float (B, 3, H, W) RGB
in 0..1, to decoded predictions (B, N, 5 + nc) ``cx, cy, w, h, obj, cls...`` in the input's
pixels. The loop applies NMS and matches the detections to the labels in the letterboxed image's
pixels (IoU is invariant to the letterbox's uniform scale and shift): COCO-style mAP
(``metrics.DetectionEvaluator``), the confusion matrix and per-image timing.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from edgeyolo.atomic import atomic_write_text
from edgeyolo.runtime.info import DECODED, RAW, ModelInfo
from edgeyolo.runtime.processing import decoded_predictions, pad_to_batch

from .boxes import clip_boxes, clip_to_content, scale_boxes, xywhn2xyxy
from .confusion import ConfusionMatrix
from .metrics import DetectionEvaluator, DetectionMetrics
from .nms import non_max_suppression

# (B, 3, H, W) float images in 0..1 -> (B, N, 5 + nc) decoded predictions (input pixels)
Predict = Callable[[torch.Tensor], torch.Tensor]
# A loader's batch (``DetectionDataset.collate_fn``): images (B, 3, H, W) uint8, targets (n, 6)
# ``[image index, cls, cx, cy, w, h]`` normalised, file paths, letterbox records (or None).
Batch = tuple[torch.Tensor, torch.Tensor, Any, Any]


@dataclass
class ValResult:
    """One scoring of a split: COCO-style metrics, the confusion matrix, the matches behind them,
    timing, and (from training's validation) the mean losses."""

    metrics: DetectionMetrics
    speed_ms: dict[str, float]  # per image: preprocess, inference, nms
    n_images: int
    n_labels: int
    confusion: ConfusionMatrix
    names: list[str] = field(default_factory=list)
    # (3,) mean box, obj, cls loss per batch: training's validation fills it, zeros elsewhere
    losses: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.float32))
    matches: DetectionEvaluator | None = field(default=None, repr=False)  # per image, for a paired bootstrap

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


@torch.no_grad()
def evaluate(predict: Predict, loader: Iterable[Batch], names: list[str], device: torch.device | None = None,
             conf_thres: float = 0.001, iou_thres: float = 0.65, half: bool = False,
             save_json: str | Path | None = None, progress: bool = True,
             after_predict: Callable[[torch.Tensor], None] | None = None) -> ValResult:
    """Score ``predict`` on every batch of ``loader`` (a ``DetectionDataset`` loader).

    Images go to ``device`` (default CPU) as float, or half with ``half``, divided by 255.
    ``after_predict(targets)`` runs after each batch's ``predict`` (training adds its losses there,
    from the raw heads its ``predict`` kept). ``save_json`` writes COCO-format detections in
    original-image pixels, ``image_id`` = file stem (an int when numeric), ``category_id`` = class.
    """
    device = device or torch.device("cpu")
    nc = len(names)
    matches, confusion = DetectionEvaluator(nc), ConfusionMatrix(nc)
    times = np.zeros(3)
    n_images = n_labels = 0
    records = []
    bar = tqdm(loader, desc=f"{'val':>10}", leave=False, disable=not progress, bar_format="{l_bar}{bar:20}{r_bar}")
    for imgs, targets, paths, shapes in bar:
        t0 = time.perf_counter()
        imgs = imgs.to(device, non_blocking=True)
        imgs = (imgs.half() if half else imgs.float()) / 255.0
        _sync(device)
        t1 = time.perf_counter()
        preds = predict(imgs)
        _sync(device)
        t2 = time.perf_counter()
        if after_predict is not None:
            after_predict(targets)
        dets = non_max_suppression(preds.float(), conf_thres, iou_thres)
        _sync(device)
        t3 = time.perf_counter()
        times += (t1 - t0, t2 - t1, t3 - t2)
        h, w = imgs.shape[2:]
        for i, det in enumerate(dets):
            gts = labels_to_pixels(targets[targets[:, 0] == i, 1:].numpy(), w, h)
            det_np = det.cpu().numpy()
            # clipped to the image inside the letterbox, as the original-pixel boxes of save_json are
            det_np[:, :4] = (clip_to_content(det_np[:, :4], (h, w), *shapes[i]) if shapes[i] is not None
                             else clip_boxes(det_np[:, :4], (h, w)))
            matches.update(det_np, gts)
            confusion.update(det_np, gts)
            n_labels += len(gts)
            if save_json is not None and shapes[i] is not None:
                records += coco_records(det_np, paths[i], (h, w), shapes[i])
        n_images += len(dets)
    if save_json is not None:
        atomic_write_text(save_json, json.dumps(records))
    speed = dict(zip(("preprocess", "inference", "nms"), (times / max(n_images, 1) * 1e3).tolist()))
    return ValResult(matches.compute(), speed, n_images, n_labels, confusion, list(names), matches=matches)


def labels_to_pixels(labels: np.ndarray, w: int, h: int) -> np.ndarray:
    """(n, 5) ``cls, cx, cy, w, h`` normalised -> (n, 5) ``cls, x1, y1, x2, y2`` in pixels of a ``w`` x ``h`` image."""
    lb = np.asarray(labels, dtype=np.float32).reshape(-1, 5)
    return np.concatenate([lb[:, :1], xywhn2xyxy(lb[:, 1:5], w, h)], 1)


def coco_records(det: np.ndarray, path: str, img_shape: tuple[int, int], shapes: Any) -> list[dict[str, Any]]:
    """(n, 6) ``x1, y1, x2, y2, conf, cls`` in letterboxed pixels -> COCO detection dicts, ``bbox``
    ``x, y, w, h`` in the original image's pixels."""
    (h0, w0), ratio_pad = shapes
    boxes = scale_boxes(img_shape, det[:, :4].copy(), (h0, w0), ratio_pad)
    stem = Path(path).stem
    image_id: int | str = int(stem) if stem.isnumeric() else stem
    return [{"image_id": image_id, "category_id": int(c), "bbox": [round(float(v), 3) for v in
             (b[0], b[1], b[2] - b[0], b[3] - b[1])], "score": round(float(s), 5)}
            for b, s, c in zip(boxes, det[:, 4], det[:, 5])]


def artifact_predictor(runner: Callable[[np.ndarray], list[np.ndarray]], nc: int,
                       info: ModelInfo | None = None) -> Predict:
    """``predict`` for an artifact's runner (float32 (B, 3, H, W) numpy -> its list of outputs).

    With the artifact's ``info``: a static batch gets blank images appended (``pad_to_batch``)
    and their predictions dropped, raw heads are decoded (``decoded_predictions``), and a graph
    with NMS inside is refused (its thresholds are baked in, so its mAP would not be comparable).
    Without it, the runner's first output must already be the decoded (B, N, 5 + nc).
    """
    if info is not None and info.layout not in (DECODED, RAW):
        raise ValueError(f"{info.path}: outputs are {info.layout} (NMS in the graph, thresholds baked in); "
                         "validate the export made without --nms")

    def predict(imgs: torch.Tensor) -> torch.Tensor:
        x, n = imgs.numpy(), imgs.shape[0]
        if info is None:
            pred = runner(x)[0]
            if pred.ndim != 3 or pred.shape[-1] != nc + 5:
                raise ValueError(f"mAP needs the decoded (B, N, {nc + 5}) output, got {pred.shape} (--raw or --nms?)")
        else:
            pred = decoded_predictions(runner(pad_to_batch(x, info.batch) if info.batch else x), info)
        return torch.from_numpy(np.ascontiguousarray(pred[:n], dtype=np.float32))
    return predict
