"""One image in, boxes out, on any bench runner: letterbox -> float NCHW -> runner -> NMS -> boxes
in the original image's pixels. ``detect`` uses it per image, ``bench --end2end`` times it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeyolo.data.letterbox import letterbox
from edgeyolo.export.runtime import Runner
from edgeyolo.ops.boxes import scale_boxes
from edgeyolo.ops.nms_numpy import non_max_suppression_numpy


def preprocess(images_bgr: list[np.ndarray], imgsz: int) -> tuple[np.ndarray, list[tuple[float, tuple[float, float]]]]:
    """BGR uint8 images -> float32 (B, 3, imgsz, imgsz) RGB 0..1 and each image's (ratio, pad)."""
    xs, rp = [], []
    for im in images_bgr:
        if im is None or im.ndim != 3 or im.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) BGR image, got {None if im is None else im.shape}")
        lb, r, pad = letterbox(im, imgsz, auto=False)
        xs.append(lb[:, :, ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
        rp.append((r, pad))
    x = np.ascontiguousarray(np.stack(xs), dtype=np.float32)
    x *= 1.0 / 255.0
    return x, rp


def postprocess(pred: np.ndarray, shapes0: list[tuple[int, int]], imgsz: int, ratio_pads: list[tuple[float, tuple[float, float]]],
                conf: float, iou: float, max_det: int = 300) -> list[np.ndarray]:
    """Decoded (B, N, 5 + nc) output -> per image (n, 6) ``x1, y1, x2, y2, conf, cls`` in original pixels."""
    if pred.ndim != 3 or pred.shape[-1] < 6:
        raise ValueError(f"expected the decoded (B, N, 5 + nc) output, got {pred.shape} (a --raw or --nms export?)")
    dets = non_max_suppression_numpy(pred.astype(np.float32, copy=False), conf, iou, max_det=max_det)
    out = []
    for d, shape0, (r, pad) in zip(dets, shapes0, ratio_pads):
        if len(d):
            d = d.copy()
            d[:, :4] = scale_boxes((imgsz, imgsz), d[:, :4], shape0, ((r, r), pad))
        out.append(d)
    return out


@dataclass
class Predictor:
    runner: Runner
    imgsz: int
    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 300

    def __call__(self, images_bgr: list[np.ndarray]) -> list[np.ndarray]:
        x, rp = preprocess(images_bgr, self.imgsz)
        pred = self.runner(x)[0]
        return postprocess(pred, [im.shape[:2] for im in images_bgr], self.imgsz, rp, self.conf, self.iou, self.max_det)
