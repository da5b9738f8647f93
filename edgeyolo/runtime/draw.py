"""Drawing boxes and the FPS overlay, and the YOLO txt line format (OpenCV only)."""
from __future__ import annotations

import cv2
import numpy as np

_PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
            (23, 204, 146), (134, 219, 61), (187, 212, 52), (168, 153, 44), (255, 194, 0), (147, 69, 52))


def colour(cls: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class."""
    return _PALETTE[int(cls) % len(_PALETTE)]


def draw(img: np.ndarray, dets: np.ndarray, names: list[str], lw: int | None = None, inplace: bool = False) -> np.ndarray:
    """Boxes and ``name conf`` labels on ``img`` (a copy unless ``inplace``); ``dets`` (n, 6) xyxy, conf, cls."""
    out = img if inplace else img.copy()
    lw = lw or max(round(sum(img.shape[:2]) / 2 * 0.003), 1)
    for x1, y1, x2, y2, conf, cls in np.asarray(dets).tolist():
        c = colour(int(cls))
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, c, lw, cv2.LINE_AA)
        label = f"{names[int(cls)] if int(cls) < len(names) else int(cls)} {conf:.2f}"
        fs = max(lw / 3, 0.4)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, max(lw - 1, 1))
        top = p1[1] - th - 3 >= 0
        q = (p1[0] + tw, p1[1] - th - 3 if top else p1[1] + th + 3)
        cv2.rectangle(out, p1, q, c, -1, cv2.LINE_AA)
        cv2.putText(out, label, (p1[0], p1[1] - 2 if top else p1[1] + th + 2), cv2.FONT_HERSHEY_SIMPLEX, fs,
                    (255, 255, 255), max(lw - 1, 1), cv2.LINE_AA)
    return out


def overlay_text(img: np.ndarray, text: str) -> np.ndarray:
    """``text`` on a dark band in the top-left corner, drawn in place (the FPS overlay)."""
    fs = max(img.shape[0] / 720, 0.4)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
    cv2.rectangle(img, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(img, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def yolo_lines(dets: np.ndarray, shape: tuple[int, int]) -> list[str]:
    """YOLO txt: ``cls cx cy w h conf`` normalised by the image size (h, w)."""
    h, w = shape
    return [f"{int(cls)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f} {conf:.5f}"
            for x1, y1, x2, y2, conf, cls in np.asarray(dets).tolist()]
