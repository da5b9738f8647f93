"""Which side of a letterboxed image a grey band sits on, and whether a checkpoint floods for it.

A letterbox puts flat grey (114) above and below a wide image, or left and right of a tall one; a
rect validation batch puts a ring of it around a square tile. This study letterboxes each validation
image square (no grey around a square tile), then paints a grey band of each width over one side of
it at a time, or over a middle row, and counts each checkpoint's boxes over a confidence threshold
(summed over the images) and the backbone's largest activation, beside the same images unpainted.
Painting over content keeps the canvas size fixed, so the band's side is the only thing that changes.

    python benchmarks/studies/grey_bands.py --images real/nuclei/images/val \\
        --weights snapshot_epoch50.pt --weights run/weights/last.pt
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS
from edgeyolo.bench.studies.pad_phase import answer
from edgeyolo.data.augment import PAD_VALUE
from edgeyolo.data.letterbox import letterbox
from edgeyolo.models.checkpoint import load_model

SIDES = ("top", "middle", "bottom", "left", "right")


def banded(x: torch.Tensor, side: str, width: int) -> torch.Tensor:
    """A copy of ``x`` (N, 3, H, W) with ``width`` rows or columns of grey over ``side`` ("middle":
    rows from a third of the height down)."""
    out = x.clone()
    h, w = x.shape[-2:]
    grey = PAD_VALUE / 255
    if side == "top":
        out[..., :width, :] = grey
    elif side == "middle":
        out[..., h // 3:h // 3 + width, :] = grey
    elif side == "bottom":
        out[..., h - width:, :] = grey
    elif side == "left":
        out[..., :width] = grey
    elif side == "right":
        out[..., w - width:] = grey
    else:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    return out


def load_images(folder: Path, size: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` images of ``folder`` (sorted), letterboxed square -> (N, 3, size, size) RGB in [0, 1]."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))[:limit]
    ims = []
    for f in files:
        im = cv2.imread(str(f))
        if im is None:
            raise SystemExit(f"{f}: not an image OpenCV can read")
        ims.append(letterbox(im, size, auto=False)[0][:, :, ::-1].transpose(2, 0, 1))
    if not ims:
        raise SystemExit(f"{folder}: no images")
    return torch.from_numpy(np.ascontiguousarray(np.stack(ims))).float() / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", action="append", required=True, help="checkpoint (.pt); repeat for several")
    ap.add_argument("--images", type=Path, required=True, help="a folder of validation images")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--widths", default="16,32", help="band widths in px, comma-separated")
    ap.add_argument("--limit", type=int, default=8, help="images used")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu")
    args = ap.parse_args()
    torch.set_num_threads(2)
    x = load_images(args.images, args.size, args.limit)
    widths = [int(v) for v in args.widths.split(",")]
    cells = ["none"] + [f"{side} {w}" for w in widths for side in SIDES]
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for path in args.weights:
        model = load_model(path)[0]
        res = {}
        for cell in cells:
            side, _, w = cell.partition(" ")
            xb = x if cell == "none" else banded(x, side, int(w))
            per = [answer(model, xb[i:i + 1], args.conf) for i in range(len(xb))]
            res[cell] = {"boxes": sum(r["boxes"] for r in per), "backbone_peak": max(r["backbone_peak"] for r in per)}
        rows[path] = res
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "images": str(args.images), "n_images": len(x),
              "size": args.size, "conf": args.conf, "cells": cells, "weights": rows}
    lines = ["# A grey band on one side of the image", "",
             f"{record['date']}; the first {len(x)} images of `{args.images}`, letterboxed square to {args.size} px; "
             f"grey ({PAD_VALUE}) painted over the given rows or columns (middle: from a third of the height down); "
             f"boxes with confidence over {args.conf}, summed over the images (backbone peak: the largest "
             "|activation| the backbone outputs). Produced by `python benchmarks/studies/grey_bands.py`.", "",
             "| checkpoint | " + " | ".join(cells) + " |", "|---" * (len(cells) + 1) + "|"]
    for path, res in rows.items():
        lines.append(f"| `{path}` | " + " | ".join(f"{res[c]['boxes']} ({res[c]['backbone_peak']:.0f})" for c in cells) + " |")
    lines.append("")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "grey_bands.json", json.dumps(record, indent=1))
    atomic_write_text(args.out / "grey_bands.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
