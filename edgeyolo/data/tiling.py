"""Cutting large images into tiles the detector can train on, and their boxes with them.

Windows are ``(x0, y0, x1, y1)`` pixel rectangles; boxes are ``(n, 4)`` ``x1 y1 x2 y2`` pixels of
the full image. A box cut by a window border is clipped to the window and kept under the same rule
as a box cut by augmentation (:func:`edgeyolo.data.augment.box_candidates`: a sliver with little of
its area left teaches noise).
"""
from __future__ import annotations

import math

import numpy as np

from .augment import box_candidates


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Window starts along one axis: every ``tile - overlap`` px, the last flush with the end."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = math.ceil((length - tile) / step) + 1
    return sorted({min(i * step, length - tile) for i in range(n)})


def overlapping_windows(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Square ``tile`` windows covering a ``width`` x ``height`` region, ``overlap`` px shared by
    neighbours (a region smaller than ``tile`` on an axis gives one window of its size there).

    Raises ``ValueError`` unless ``tile >= 32`` and ``0 <= overlap < tile``.
    """
    if tile < 32:
        raise ValueError(f"tile must be >= 32 px, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    xs, ys = _starts(width, tile, overlap), _starts(height, tile, overlap)
    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in ys for x in xs]


def partition_windows(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Windows of at most ``tile`` px that split the region exactly, without overlap: every point
    lies in one window, so a validation box is counted once."""
    if tile < 32:
        raise ValueError(f"tile must be >= 32 px, got {tile}")
    nx, ny = math.ceil(width / tile), math.ceil(height / tile)
    xe = np.linspace(0, width, nx + 1).round().astype(int)
    ye = np.linspace(0, height, ny + 1).round().astype(int)
    return [(int(xe[i]), int(ye[j]), int(xe[i + 1]), int(ye[j + 1])) for j in range(ny) for i in range(nx)]


def crop_boxes(boxes: np.ndarray, window: tuple[int, int, int, int], min_area: float = 0.4,
               min_side: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) xyxy in image pixels -> (kept boxes (m, 4) xyxy in window pixels, (m,) indices
    of the kept rows). A box is kept when, clipped to the window, it is wider and taller than
    ``min_side`` px and keeps at least ``min_area`` of its area; a box cut in half at a tile border
    is kept (its neighbour tile has the other half), a corner sliver is not."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = window
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(x0, x1)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(y0, y1)
    keep = np.flatnonzero(box_candidates(boxes.T, clipped.T, wh_thr=min_side, ar_thr=1e9, area_thr=min_area))
    return clipped[keep] - [x0, y0, x0, y0], keep
