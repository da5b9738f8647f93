"""Training augmentation as in PyTorch_YOLOv4 (u5 branch) / YOLOv5: mosaic, random affine, HSV
jitter, flips, mixup; and letterbox bands, edgeyolo's own. Images are (H, W, 3) uint8 BGR numpy
arrays; boxes in this module are ``(n, 5) [cls, x1, y1, x2, y2]`` in pixels of the image they go
with, unless a name says ``n`` (normalised ``cx cy w h``). Randomness comes from the ``random`` and
``numpy.random`` modules, which :func:`edgeyolo.data.loader.seed_worker` seeds in every DataLoader
worker.
"""
from __future__ import annotations

import math
import random

import cv2
import numpy as np

from edgeyolo.ops import boxes

PAD_VALUE = 114  # grey fill of letterbox, mosaic and affine borders (as in YOLOv5)


def xywhn2xyxy(labels: np.ndarray, w: float, h: float, padw: float = 0.0, padh: float = 0.0) -> np.ndarray:
    """(n, 5) ``cls cx cy w h`` normalised -> (n, 5) ``cls x1 y1 x2 y2`` in pixels of a (h, w)
    image placed at offset (padw, padh)."""
    out = labels.astype(np.float32, copy=True)
    if len(out):
        out[:, 1:5] = boxes.xywhn2xyxy(out[:, 1:5], w, h, padw, padh)
    return out


def xyxy2xywhn(labels: np.ndarray, w: float, h: float) -> np.ndarray:
    """(n, 5) ``cls x1 y1 x2 y2`` pixels -> (n, 5) ``cls cx cy w h`` normalised to a (h, w) image,
    after clipping the boxes to the image."""
    out = labels.astype(np.float32, copy=True)
    if len(out):
        xyxy = boxes.clip_boxes(out[:, 1:5], (h, w))
        out[:, 1:5] = boxes.xyxy2xywh(xyxy) / np.array([w, h, w, h], dtype=np.float32)
    return out


def augment_hsv(img: np.ndarray, hgain: float = 0.015, sgain: float = 0.7, vgain: float = 0.4) -> None:
    """Random hue/saturation/value gains, in place, through three lookup tables (fast)."""
    if not (hgain or sgain or vgain):
        return
    r = np.random.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=r.dtype)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)  # OpenCV hue is 0..179
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR, dst=img)


def box_candidates(box1: np.ndarray, box2: np.ndarray, wh_thr: float = 2, ar_thr: float = 20,
                   area_thr: float = 0.1, eps: float = 1e-16) -> np.ndarray:
    """Boxes (4, n) xyxy before (box1, scaled) and after (box2) augmentation -> (n,) bool: keep
    those still wider/taller than ``wh_thr`` px, keeping ``area_thr`` of their area, and with an
    aspect ratio under ``ar_thr`` (slivers left by cropping only teach noise)."""
    w1, h1 = box1[2] - box1[0], box1[3] - box1[1]
    w2, h2 = box2[2] - box2[0], box2[3] - box2[1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


def random_perspective(img: np.ndarray, labels: np.ndarray, degrees: float = 0.0, translate: float = 0.1,
                       scale: float = 0.5, shear: float = 0.0, perspective: float = 0.0,
                       border: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation/scale/shear/translation(/perspective) of ``img`` and its pixel xyxy
    ``labels``. The output is the input size grown by ``2 * border`` on each axis (mosaic passes a
    negative border to crop its 2s canvas back to s). Boxes become the bounding box of their four
    transformed corners, clipped, and :func:`box_candidates` filters what is left."""
    height, width = img.shape[0] + border[0] * 2, img.shape[1] + border[1] * 2
    C = np.eye(3)  # move the image centre to the origin
    C[0, 2], C[1, 2] = -img.shape[1] / 2, -img.shape[0] / 2
    P = np.eye(3)
    P[2, 0], P[2, 1] = random.uniform(-perspective, perspective), random.uniform(-perspective, perspective)
    R = np.eye(3)
    s = random.uniform(1 - scale, 1 + scale)
    R[:2] = cv2.getRotationMatrix2D(angle=random.uniform(-degrees, degrees), center=(0, 0), scale=s)
    S = np.eye(3)
    S[0, 1] = math.tan(random.uniform(-shear, shear) * math.pi / 180)
    S[1, 0] = math.tan(random.uniform(-shear, shear) * math.pi / 180)
    T = np.eye(3)  # then to a random point near the output centre
    T[0, 2] = random.uniform(0.5 - translate, 0.5 + translate) * width
    T[1, 2] = random.uniform(0.5 - translate, 0.5 + translate) * height
    M = T @ S @ R @ P @ C  # applied right to left
    if border[0] or border[1] or (M != np.eye(3)).any():
        fill = (PAD_VALUE,) * 3
        if perspective:
            img = cv2.warpPerspective(img, M, dsize=(width, height), borderValue=fill)
        else:
            img = cv2.warpAffine(img, M[:2], dsize=(width, height), borderValue=fill)
    n = len(labels)
    if n:
        xy = np.ones((n * 4, 3))
        xy[:, :2] = labels[:, [1, 2, 3, 4, 1, 4, 3, 2]].reshape(n * 4, 2)  # x1y1, x2y2, x1y2, x2y1
        xy = xy @ M.T
        xy = (xy[:, :2] / xy[:, 2:3] if perspective else xy[:, :2]).reshape(n, 8)
        x, y = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
        new = np.stack((x.min(1), y.min(1), x.max(1), y.max(1)), 1)
        new[:, [0, 2]] = new[:, [0, 2]].clip(0, width)
        new[:, [1, 3]] = new[:, [1, 3]].clip(0, height)
        keep = box_candidates(labels[:, 1:5].T * s, new.T)
        labels = labels[keep]
        labels[:, 1:5] = new[keep]
    return img, labels


def mosaic4(tiles: list[tuple[np.ndarray, np.ndarray]], s: int, center: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Four (image, pixel xyxy labels) tiles -> a (2s, 2s) canvas with them meeting at ``center``
    (xc, yc): top-left, top-right, bottom-left, bottom-right, each cropped at the canvas edge.
    Labels are shifted onto the canvas and clipped to it."""
    xc, yc = center
    canvas = np.full((s * 2, s * 2, 3), PAD_VALUE, dtype=np.uint8)
    out = []
    for i, (img, labels) in enumerate(tiles):
        h, w = img.shape[:2]
        if i == 0:  # top left: the tile's bottom-right corner sits at the centre
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
        elif i == 1:  # top right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, s * 2), yc
            x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
        elif i == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(s * 2, yc + h)
            x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
        else:  # bottom right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, s * 2), min(s * 2, yc + h)
            x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        shifted = labels.copy()
        shifted[:, [1, 3]] += x1a - x1b
        shifted[:, [2, 4]] += y1a - y1b
        out.append(shifted)
    labels4 = np.concatenate(out, 0) if out else np.zeros((0, 5), np.float32)
    labels4[:, 1:] = labels4[:, 1:].clip(0, 2 * s)
    return canvas, labels4


def letterbox_bands(img: np.ndarray, labels: np.ndarray, min_fill: float = 0.5
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Grey out all but a centred window of ``img`` as letterboxing a frame of another aspect ratio
    does: on the rows, the columns or both (each chosen with probability 0.4, 0.4, 0.2), the window
    keeps a random ``min_fill`` to 1 share of that axis, at any pixel phase. Pixel xyxy ``labels``
    are clipped to the window and filtered by :func:`box_candidates`.

    Why: mosaic training almost never shows a long, sharp edge of exact grey, but validation (half
    a stride of grey around each image) and every deployed non-square frame put one on each image.
    Weights that never saw one can answer a grey band above content with a flood of boxes at some
    pixel phases (``benchmarks/studies/grey_bands.py``, ``pad_phase.py``); this shows them some.
    """
    if not 0.0 < min_fill <= 1.0:
        raise ValueError(f"min_fill must lie in (0, 1], got {min_fill}")
    h, w = img.shape[:2]
    r = random.random()
    window = [0, 0, w, h]  # x1, y1, x2, y2
    for axis, size, on in ((1, h, r < 0.4 or r >= 0.8), (0, w, 0.4 <= r)):
        if not on:
            continue
        keep = max(1, int(round(random.uniform(min_fill, 1.0) * size)))
        lo = round((size - keep) / 2 - 0.1)  # as letterbox() splits an odd pad
        window[axis], window[axis + 2] = lo, lo + keep
    x1, y1, x2, y2 = window
    out = np.full_like(img, PAD_VALUE)
    out[y1:y2, x1:x2] = img[y1:y2, x1:x2]
    if len(labels):
        new = labels[:, 1:5].copy()
        new[:, [0, 2]] = new[:, [0, 2]].clip(x1, x2)
        new[:, [1, 3]] = new[:, [1, 3]].clip(y1, y2)
        keep_box = box_candidates(labels[:, 1:5].T, new.T)
        labels = labels[keep_box].copy()
        labels[:, 1:5] = new[keep_box]
    return out, labels


def mixup(img: np.ndarray, labels: np.ndarray, img2: np.ndarray, labels2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blend two same-size images with a Beta(32, 32) ratio and keep both label sets."""
    r = np.random.beta(32.0, 32.0)
    img = (img * r + img2 * (1 - r)).astype(np.uint8)
    return img, np.concatenate((labels, labels2), 0)


def flip_lr(img: np.ndarray, labels_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right; ``labels_n`` (n, 5) normalised ``cls cx cy w h``."""
    labels_n = labels_n.copy()
    labels_n[:, 1] = 1 - labels_n[:, 1]
    return np.ascontiguousarray(img[:, ::-1]), labels_n


def flip_ud(img: np.ndarray, labels_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror up-down; ``labels_n`` (n, 5) normalised ``cls cx cy w h``."""
    labels_n = labels_n.copy()
    labels_n[:, 2] = 1 - labels_n[:, 2]
    return np.ascontiguousarray(img[::-1]), labels_n
