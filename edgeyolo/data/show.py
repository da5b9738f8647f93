"""A PNG grid of dataset items with their boxes and class names: what the model is fed."""
from __future__ import annotations

import math
import random
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

MAX_GRID_SIDE = 2048  # px; larger grids are scaled down so the PNG stays viewable


def class_color(cls: int) -> tuple[int, int, int]:
    """A distinct, stable BGR colour per class id (golden-ratio hue steps)."""
    hue = int((cls * 0.618033988749895 % 1.0) * 180)
    px = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0])


def draw_labels(img: torch.Tensor, labels: torch.Tensor, names: list[str]) -> np.ndarray:
    """``img`` (3, H, W) uint8 RGB and ``labels`` (n, 6) ``[_, cls, cx, cy, w, h]`` normalised ->
    (H, W, 3) uint8 BGR with boxes and class names drawn."""
    im = np.ascontiguousarray(img.permute(1, 2, 0).numpy()[:, :, ::-1])
    h, w = im.shape[:2]
    for _, cls, cx, cy, bw, bh in labels.tolist():
        c = int(cls)
        x1, y1 = int(round((cx - bw / 2) * w)), int(round((cy - bh / 2) * h))
        x2, y2 = int(round((cx + bw / 2) * w)), int(round((cy + bh / 2) * h))
        color = class_color(c)
        cv2.rectangle(im, (x1, y1), (x2 - 1, y2 - 1), color, 1)
        text = names[c] if 0 <= c < len(names) else str(c)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        ty = max(y1, th + base)
        cv2.rectangle(im, (x1, ty - th - base), (x1 + tw, ty), color, -1)
        cv2.putText(im, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return im


def plot_samples(dataset: Dataset, out: str | Path, n: int = 16, seed: int = 0) -> Path:
    """Draw ``n`` items of ``dataset`` (a :class:`~edgeyolo.data.DetectionDataset`; the first ``n``,
    or ``n`` random ones when it augments) into a grid PNG at ``out``. Returns the path."""
    random.seed(seed)  # augmentation draws from the global RNGs: seed them for a repeatable picture
    np.random.seed(seed)
    total = len(dataset)  # type: ignore[arg-type]
    idx = random.sample(range(total), min(n, total)) if getattr(dataset, "augment", False) else range(min(n, total))
    names = list(getattr(dataset, "names", []))
    tiles = [draw_labels(*dataset[i][:2], names) for i in idx]
    th, tw = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    grid = np.full((rows * th, cols * tw, 3), 255, dtype=np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * th:r * th + t.shape[0], c * tw:c * tw + t.shape[1]] = t
        cv2.rectangle(grid, (c * tw, r * th), ((c + 1) * tw - 1, (r + 1) * th - 1), (255, 255, 255), 2)
    scale = MAX_GRID_SIDE / max(grid.shape[:2])
    if scale < 1:
        grid = cv2.resize(grid, (int(grid.shape[1] * scale), int(grid.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), grid):
        raise ValueError(f"{out}: could not write the image (use a .png or .jpg name)")
    return out
