"""Letterbox resize (numpy/OpenCV only, so the torch-free runtime can share it)."""
from __future__ import annotations

import cv2
import numpy as np


def letterbox(img: np.ndarray, new_shape: int | tuple[int, int] = 640, color: tuple[int, int, int] = (114, 114, 114),
              auto: bool = False, scaleup: bool = True, stride: int = 32) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize ``img`` (H, W, C uint8) keeping its aspect ratio and pad it to ``new_shape`` (h, w).

    Returns (padded image, ratio, (pad_w, pad_h)) where pad is the left/top padding in pixels, so a
    box maps to the padded image as ``x * ratio + pad_w``, ``y * ratio + pad_h``. With ``auto`` the
    padding is the minimum that makes each side a multiple of ``stride`` (rectangular batches).
    """
    if isinstance(new_shape, int):
        new_shape = (new_shape, new_shape)
    if min(new_shape) <= 0:
        raise ValueError(f"new_shape must be positive, got {new_shape}")
    h, w = img.shape[:2]
    r = min(new_shape[0] / h, new_shape[1] / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    dw, dh = new_shape[1] - new_w, new_shape[0] - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    if (w, h) != (new_w, new_h):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return img, r, (float(left), float(top))
