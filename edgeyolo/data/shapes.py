"""Drawing for the synthetic set: textured backgrounds and the four class silhouettes.

Each silhouette is defined in box-relative coordinates (x, y in [0, 1], y down) and touches all
four sides of its box, so the box written to the label file is exactly the drawn extent.
"""
from __future__ import annotations

import cv2
import numpy as np

# Per class: (hue range in OpenCV degrees 0..179, aspect w/h range, height as a fraction of the
# image's short side). Hues are far apart so colour is learnable; shapes differ too.
CLASS_STYLE: dict[int, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    0: ((-8.0, 8.0), (1.1, 1.5), (0.16, 0.38)),  # motorcycle: red, near square
    1: ((100.0, 124.0), (1.5, 2.1), (0.14, 0.32)),  # car: blue
    2: ((20.0, 32.0), (2.2, 3.0), (0.16, 0.32)),  # bus: yellow, long
    3: ((50.0, 76.0), (1.3, 1.8), (0.18, 0.42)),  # truck: green, tall
}
_SHIFT = 4  # sub-pixel precision of cv2 polygon/ellipse drawing (coordinates * 16)


def _hsv_to_bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    px = np.array([[[h % 180, s, v]]], dtype=np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0])


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) BGR low-saturation texture: tinted grey, smooth blotches, grain, grey line and
    rectangle clutter, and sometimes a saturated distractor (triangle or star) of any hue."""
    base = rng.uniform(70, 190) + rng.normal(0, 10, 3)
    gh, gw = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    blotch = cv2.resize(rng.normal(0, 28, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((h, w), dtype=np.float32) * 7  # float32 throughout: 5x faster
    tex = blotch + grain
    img = cv2.merge([np.clip(tex + np.float32(b), 0, 255).astype(np.uint8) for b in base])
    for _ in range(int(rng.integers(3, 12))):  # grey clutter: edges that are not objects
        grey = int(rng.integers(30, 230))
        color = tuple(int(np.clip(grey + d, 0, 255)) for d in rng.normal(0, 8, 3))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.line(img, p1, p2, color, int(rng.integers(1, 5)), cv2.LINE_AA)
        else:
            cv2.rectangle(img, p1, p2, color, -1 if rng.random() < 0.5 else 2)
    for _ in range(int(rng.integers(0, 3))):  # saturated non-class shapes: colour is not enough
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.15) * min(h, w)
        k = 3 if rng.random() < 0.5 else 10
        ang = rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k
        rad = np.full(k, r) if k == 3 else np.where(np.arange(k) % 2, r * 0.45, r)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
        color = _hsv_to_bgr(rng.uniform(0, 180), rng.uniform(150, 255), rng.uniform(120, 255))
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], color, cv2.LINE_AA, _SHIFT)
    return img


def object_size(rng: np.random.Generator, cls: int, h: int, w: int) -> tuple[int, int]:
    """A random (box width, box height) in pixels for class ``cls`` that fits a (h, w) image."""
    _, (ar0, ar1), (f0, f1) = CLASS_STYLE[cls]
    bh = np.exp(rng.uniform(np.log(f0), np.log(f1))) * min(h, w)  # log-uniform: as many small as big
    bw = bh * rng.uniform(ar0, ar1)
    if bw > 0.95 * w:
        bh, bw = bh * 0.95 * w / bw, 0.95 * w
    return max(8, int(round(bw))), max(8, int(round(bh)))


def draw_object(img: np.ndarray, rng: np.random.Generator, cls: int, box: tuple[int, int, int, int]) -> None:
    """Draw class ``cls`` filling ``box`` (x1, y1, x2, y2 pixels, exclusive end) on ``img`` in place."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    mirror = rng.random() < 0.5
    (h0, h1), _, _ = CLASS_STYLE[cls]
    color = _hsv_to_bgr(rng.uniform(h0, h1), rng.uniform(170, 255), rng.uniform(140, 255))
    dark = tuple(int(c * 0.7) for c in color)
    wheel = tuple(int(v) for v in rng.integers(20, 60, 3))
    light = tuple(int(v) for v in rng.integers(200, 245, 3))

    def px(pts: list[tuple[float, float]]) -> np.ndarray:
        p = np.array(pts, dtype=np.float64)
        if mirror:
            p[:, 0] = 1 - p[:, 0]
        # Box edges are continuous coordinates (pixel i spans [i, i + 1]); OpenCV draws in pixel
        # centre coordinates, hence the -0.5, so the drawn extent is exactly the box.
        xy = np.stack([x1 + p[:, 0] * bw - 0.5, y1 + p[:, 1] * bh - 0.5], 1)
        return np.round(xy * 16).astype(np.int32)

    def poly(pts: list[tuple[float, float]], c: tuple[int, ...]) -> None:
        cv2.fillPoly(img, [px(pts)], c, cv2.LINE_AA, _SHIFT)

    def ellipse(cx: float, cy: float, rx: float, ry: float, c: tuple[int, ...]) -> None:
        (ex, ey), = px([(cx, cy)])
        axes = (int(round(rx * bw * 16)), int(round(ry * bh * 16)))
        cv2.ellipse(img, (int(ex), int(ey)), axes, 0, 0, 360, c, -1, cv2.LINE_AA, _SHIFT)

    def wheels(xs: list[float], rx: float, ry: float) -> None:
        for x in xs:
            ellipse(x, 1 - ry, rx, ry, wheel)
            ellipse(x, 1 - ry, rx * 0.4, ry * 0.4, light)

    if cls == 0:  # motorcycle: two big wheels, a wedge body, a raked handlebar reaching the top
        poly([(0.62, 0.5), (0.72, 0.0), (0.84, 0.0), (0.74, 0.5)], dark)
        poly([(0.12, 0.62), (0.3, 0.28), (0.58, 0.3), (0.64, 0.45), (0.88, 0.62), (0.6, 0.7), (0.35, 0.7)], color)
        wheels([0.22, 0.78], 0.22, 0.28)
    elif cls == 1:  # car: low body, cabin with windows, two small wheels
        poly([(0.24, 0.42), (0.34, 0.0), (0.68, 0.0), (0.82, 0.42)], color)
        poly([(0.3, 0.4), (0.38, 0.1), (0.5, 0.1), (0.5, 0.4)], light)
        poly([(0.54, 0.4), (0.54, 0.1), (0.65, 0.1), (0.75, 0.4)], light)
        poly([(0.0, 0.5), (0.06, 0.38), (0.94, 0.38), (1.0, 0.5), (1.0, 0.82), (0.0, 0.82)], color)
        wheels([0.22, 0.78], 0.11, 0.2)
    elif cls == 2:  # bus: long box, a row of windows, a door, small wheels
        poly([(0.0, 0.0), (1.0, 0.0), (1.0, 0.9), (0.0, 0.9)], color)
        n = int(rng.integers(4, 7))
        for i in range(n):
            a = 0.2 + i * 0.78 / n
            poly([(a, 0.14), (a + 0.78 / n - 0.03, 0.14), (a + 0.78 / n - 0.03, 0.45), (a, 0.45)], light)
        poly([(0.04, 0.14), (0.14, 0.14), (0.14, 0.8), (0.04, 0.8)], dark)
        wheels([0.2, 0.8], 0.06, 0.14)
    else:  # truck: tall cargo box, lower cab with a window, three wheels
        poly([(0.0, 0.0), (0.66, 0.0), (0.66, 0.84), (0.0, 0.84)], dark)
        poly([(0.69, 0.3), (0.92, 0.3), (1.0, 0.5), (1.0, 0.84), (0.69, 0.84)], color)
        poly([(0.74, 0.36), (0.9, 0.36), (0.95, 0.5), (0.74, 0.5)], light)
        wheels([0.14, 0.48, 0.85], 0.075, 0.15)
