"""Shared by the runtime tests: exports of the trained tiny model and a labelled image list."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def export_tiny(weights: Path, out: Path, imgsz: int = 96, **over) -> Path:
    """Export ``weights`` to ONNX (no verification: the export tests cover it); returns the .onnx."""
    from edgeyolo.formats import parse_formats
    from edgeyolo.export.pipeline import ExportOptions, run_export
    o = ExportOptions(weights=weights, formats=parse_formats("onnx"), imgsz=imgsz, out=out, verify=False, **over)
    rep = run_export(o, log=lambda s: None)
    return Path(rep.artifacts[-1].path)


def labelled_images(data_yaml: Path, split: str = "val") -> list[tuple[Path, np.ndarray]]:
    """(image path, labels (n, 5) cls, cx, cy, w, h normalised) of a split, read without torch."""
    import yaml
    cfg = yaml.safe_load(Path(data_yaml).read_text())
    root = Path(data_yaml).parent / cfg.get("path", ".") if not Path(cfg.get("path", ".")).is_absolute() else Path(cfg["path"])
    images = sorted((root / cfg[split]).glob("*.png")) + sorted((root / cfg[split]).glob("*.jpg"))
    out = []
    for im in images:
        lb = Path(str(im.parent).replace("images", "labels")) / (im.stem + ".txt")
        rows = np.loadtxt(lb, ndmin=2).reshape(-1, 5) if lb.is_file() and lb.read_text().strip() else np.zeros((0, 5))
        out.append((im, rows))
    return out


def gt_pixels(labels: np.ndarray, w: int, h: int) -> np.ndarray:
    """(n, 5) ``cls cx cy w h`` normalised labels -> (n, 5) ``cls x1 y1 x2 y2`` in an image's pixels."""
    cx, cy, bw, bh = labels[:, 1] * w, labels[:, 2] * h, labels[:, 3] * w, labels[:, 4] * h
    return np.concatenate([labels[:, :1], np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)], 1)
