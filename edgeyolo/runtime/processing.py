"""Pre- and post-processing in numpy/OpenCV, shared by every backend (torch-free).

``preprocess``: BGR uint8 images -> letterboxed float32 (B, 3, H, W) RGB in 0..1 (or, for an
artifact that converts in its graph, the letterboxed (B, H, W, 3) uint8 BGR), and each image's
letterbox record. ``postprocess``: whatever the artifact outputs (decoded boxes, raw heads, ONNX
NonMaxSuppression rows or EfficientNMS tensors) -> per image (n, 6) ``x1, y1, x2, y2, conf, cls``
in the original image's pixels. The PyTorch path (``edgeyolo val``) does the same steps with
torch; tests/test_runtime_parity.py holds the two to identical boxes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from edgeyolo.data.letterbox import letterbox
from edgeyolo.ops.boxes import scale_boxes
from edgeyolo.ops.nms_numpy import non_max_suppression_numpy

from .info import DECODED, EFFICIENT_NMS, ONNX_NMS, RAW, ModelInfo


@dataclass(frozen=True)
class Letterboxed:
    """Where an original image of ``shape0`` (h, w) sits in the network input of ``shape`` (h, w)."""

    shape0: tuple[int, int]
    shape: tuple[int, int]
    ratio: float
    pad: tuple[float, float]  # left, top

    @property
    def gains(self) -> tuple[float, float]:
        """(gain_h, gain_w) of the resize as done: each side is rounded to whole pixels, so the two
        differ from ``ratio`` (and from each other) by up to half a pixel over the side."""
        h0, w0 = self.shape0
        return round(h0 * self.ratio) / h0, round(w0 * self.ratio) / w0


def pad_to_batch(x: np.ndarray, batch: int) -> np.ndarray:
    """(n, ...) -> (batch, ...) with blank (zero) inputs appended: a static-batch artifact's input."""
    if len(x) > batch:
        raise ValueError(f"{len(x)} inputs for a batch of {batch}")
    return x if len(x) == batch else np.concatenate((x, np.zeros((batch - len(x), *x.shape[1:]), x.dtype)))


def preprocess(images_bgr: Sequence[np.ndarray], imgsz: int | tuple[int, int],
               uint8: bool = False) -> tuple[np.ndarray, list[Letterboxed]]:
    """BGR uint8 (H, W, 3) images -> float32 (B, 3, h, w) RGB in [0, 1] and their letterbox records;
    with ``uint8`` (an artifact exported with --uint8-input) the letterboxed images stacked as they
    are, (B, h, w, 3) uint8 BGR: the graph does the rest.

    The swap, scale and HWC->CHW run in one C++ pass (``cv2.dnn.blobFromImages``) rather than three
    numpy passes: at 640 px it is the largest pre-processing cost after the resize.
    """
    shape = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    boxed, records = [], []
    for i, im in enumerate(images_bgr):
        if im is None or im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"image {i}: expected an (H, W, 3) uint8 BGR image, got "
                             f"{None if im is None else (im.shape, str(im.dtype))}")
        lb, r, pad = letterbox(im, shape, auto=False)
        boxed.append(lb)
        records.append(Letterboxed((int(im.shape[0]), int(im.shape[1])), (int(shape[0]), int(shape[1])), r, pad))
    if uint8:
        return np.stack(boxed), records
    x = cv2.dnn.blobFromImages(boxed, scalefactor=1.0 / 255.0, swapRB=True, crop=False)  # (B, 3, h, w) float32
    return x, records


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_raw(raw: Sequence[np.ndarray], anchors: np.ndarray | list, strides: Sequence[float]) -> np.ndarray:
    """Raw level outputs [(B, na, ny, nx, 5 + nc)] -> (B, N, 5 + nc) like ``Detect.decode``:
    xy = (2 sigmoid(t) - 0.5 + grid) * stride, wh = (2 sigmoid(t))^2 * anchor; ``anchors`` (nl, na, 2) px."""
    anchors = np.asarray(anchors, dtype=np.float32)
    if len(raw) != len(strides) or anchors.shape[0] != len(raw):
        raise ValueError(f"{len(raw)} raw outputs but {len(strides)} strides and {anchors.shape[0]} anchor levels")
    out = []
    for p, a, s in zip(raw, anchors, strides):
        if p.ndim != 5:
            raise ValueError(f"raw output must be (B, na, ny, nx, 5 + nc), got {p.shape}")
        b, na, ny, nx, no = p.shape
        y = sigmoid(p.astype(np.float32, copy=False))
        gy, gx = np.meshgrid(np.arange(ny, dtype=np.float32), np.arange(nx, dtype=np.float32), indexing="ij")
        grid = np.stack((gx, gy), -1).reshape(1, 1, ny, nx, 2)  # (1, 1, ny, nx, 2)
        xy = (y[..., 0:2] * 2 - 0.5 + grid) * np.float32(s)  # (B, na, ny, nx, 2)
        wh = (y[..., 2:4] * 2) ** 2 * a.reshape(1, na, 1, 1, 2)  # (B, na, ny, nx, 2)
        out.append(np.concatenate((xy, wh, y[..., 4:]), -1).reshape(b, -1, no))  # (B, na*ny*nx, no)
    return np.concatenate(out, 1)


def decoded_predictions(outputs: Sequence[np.ndarray], info: ModelInfo) -> np.ndarray:
    """Outputs of a ``decoded`` or ``raw`` artifact -> (B, N, 5 + nc) ``cx, cy, w, h, obj, cls...``
    in the network input's pixels, before NMS (raw heads decoded by ``decode_raw``)."""
    pred = outputs[0] if info.layout == DECODED else decode_raw(outputs, info.anchors, info.stride)
    if pred.ndim != 3 or pred.shape[-1] != info.nc + 5:
        raise ValueError(f"{info.path}: expected a decoded (B, N, {info.nc + 5}) output, got {pred.shape}")
    return pred


def _to_original(dets: np.ndarray, lb: Letterboxed) -> np.ndarray:
    if len(dets):
        dets = dets.copy()
        dets[:, :4] = scale_boxes(lb.shape, dets[:, :4], lb.shape0, (lb.gains, lb.pad))
    return dets


def _rows_to_dets(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, conf: float, max_det: int) -> np.ndarray:
    keep = scores >= conf
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = np.argsort(-scores, kind="stable")[:max_det]
    return np.concatenate((boxes[order], scores[order, None], classes[order, None]), 1).astype(np.float32)


def postprocess(outputs: Sequence[np.ndarray], info: ModelInfo, letterboxes: Sequence[Letterboxed], conf: float = 0.25,
                iou: float = 0.45, max_det: int = 300, output_names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Artifact outputs -> per image (n, 6) ``x1, y1, x2, y2, conf, cls`` in original pixels, sorted by conf.

    In-graph NMS layouts already applied their own IoU and score threshold at export; ``conf`` and
    ``max_det`` are applied again on top (they can only remove boxes).
    """
    n = len(letterboxes)
    if info.layout in (DECODED, RAW):
        pred = decoded_predictions(outputs, info)
        dets = non_max_suppression_numpy(pred.astype(np.float32, copy=False), conf, iou, max_det=max_det)
    elif info.layout == ONNX_NMS:
        rows = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 7)  # batch, x1, y1, x2, y2, score, class
        dets = [_rows_to_dets(rows[rows[:, 0] == b, 1:5], rows[rows[:, 0] == b, 5], rows[rows[:, 0] == b, 6], conf,
                              max_det) for b in range(n)]
    elif info.layout == EFFICIENT_NMS:
        named = dict(zip(output_names, outputs)) if output_names else dict(zip(("num_dets", "det_boxes", "det_scores",
                                                                              "det_classes"), outputs))
        num = named["num_dets"].reshape(-1).astype(int)
        dets = [_rows_to_dets(named["det_boxes"][b, :k], named["det_scores"][b, :k],
                              named["det_classes"][b, :k].astype(np.float32), conf, max_det)
                for b, k in enumerate(num[:n])]
    else:  # pragma: no cover - layout_of only returns the four above
        raise ValueError(f"{info.path}: unknown output layout {info.layout!r}")
    return [_to_original(d, lb) for d, lb in zip(dets[:n], letterboxes)]
