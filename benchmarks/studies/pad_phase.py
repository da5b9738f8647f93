"""How a trained checkpoint answers the same image placed a few pixels lower in its letterbox.

A validation image smaller than the input is letterboxed: grey (114) above and below it. A
convolutional detector with stride-2 layers is not shift invariant, but a 2-pixel shift should move
its output a little. This study places one image at every even vertical offset of a square canvas
and counts, per offset, the boxes over a confidence threshold, those under 2 px wide or high, and
the largest activation the backbone reaches: a model whose activations run away at some offsets
floods those images with confident, degenerate boxes, and its validation mAP then depends on the
pixel phase at which the loader happens to place each image. Writes ``<out>/pad_phase.{md,json}``.

    python benchmarks/studies/pad_phase.py --weights run/weights/last.pt [--weights other.pt] \\
        --image real/craters/images/val/s0_x850_y0.png
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
from edgeyolo.data.augment import PAD_VALUE
from edgeyolo.models.checkpoint import load_model


def placed(img: np.ndarray, size: int, top: int) -> torch.Tensor:
    """BGR uint8 ``img`` pasted at (``top``, centred) on a grey ``size`` square -> (1, 3, size, size) RGB in [0, 1]."""
    h, w = img.shape[:2]
    if h + top > size or w > size:
        raise ValueError(f"a {h}x{w} image at top {top} does not fit a {size} px canvas")
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    left = (size - w) // 2
    canvas[top:top + h, left:left + w] = img
    return torch.from_numpy(np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))).float()[None] / 255


@torch.no_grad()
def answer(model: torch.nn.Module, x: torch.Tensor, conf: float) -> dict[str, float]:
    """Boxes over ``conf`` (objectness x class), how many are under 2 px wide or high, and the
    backbone's largest absolute activation."""
    peak = [0.0]
    hook = model.backbone.register_forward_hook(
        lambda m, i, o: peak.__setitem__(0, max(float(t.abs().max()) for t in o)))
    try:
        out = model(x)[0]  # (N, 5 + nc) decoded: cx, cy, w, h (px), objectness, class scores
    finally:
        hook.remove()
    score = out[:, 4] * out[:, 5:].max(1).values
    keep = out[score > conf]
    tiny = (keep[:, 2] < 2) | (keep[:, 3] < 2)
    return {"boxes": int(len(keep)), "degenerate": int(tiny.sum()), "backbone_peak": peak[0]}


def _floods(counts: list[int]) -> int:
    """Offsets with over 10x the median box count (and over 10 boxes, whatever the median)."""
    return sum(c > 10 * max(float(np.median(counts)), 1.0) for c in counts)


def _summary_row(weights: str, res: list[dict[str, float]]) -> str:
    counts, peaks = [r["boxes"] for r in res], [r["backbone_peak"] for r in res]
    return (f"| `{weights}` | {int(np.median(counts))} | {min(counts)} | {max(counts)} | {_floods(counts)} of {len(counts)} "
            f"| {min(peaks):.1f} | {max(peaks):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", action="append", required=True, help="checkpoint (.pt); repeat for several")
    ap.add_argument("--image", required=True)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu")
    args = ap.parse_args()
    img = cv2.imread(args.image)
    if img is None:
        raise SystemExit(f"{args.image}: not an image OpenCV can read")
    tops = list(range(0, args.size - img.shape[0] + 1, 2))
    rows = {}
    for w in args.weights:
        model = load_model(w)[0].eval()
        rows[w] = [answer(model, placed(img, args.size, t), args.conf) for t in tops]
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "image": args.image, "size": args.size, "conf": args.conf,
              "tops": tops, "weights": rows}
    lines = ["# One image, shifted down the letterbox 2 px at a time", "",
             f"{record['date']}; `{args.image}` ({img.shape[0]}x{img.shape[1]}) on a grey {args.size} px canvas, "
             f"centred across, its top row at each even offset; boxes with confidence over {args.conf}; "
             "degenerate = under 2 px wide or high; peak = the largest |activation| the backbone outputs. "
             "Produced by `python benchmarks/studies/pad_phase.py`.", "",
             "| checkpoint | boxes: median | min | max | offsets with over 10x the median | backbone peak: min | max |",
             "|---|---|---|---|---|---|---|"]
    lines += [_summary_row(w, res) for w, res in rows.items()] + [""]
    for w, res in rows.items():
        counts = [r["boxes"] for r in res]
        lines += [f"## `{w}`", "", f"boxes: median {int(np.median(counts))}, min {min(counts)}, max {max(counts)}; "
                  f"offsets with over 10x the median: {_floods(counts)} of {len(counts)}",
                  "", "| top (px) | boxes | degenerate | backbone peak |", "|---|---|---|---|"]
        lines += [f"| {t} | {r['boxes']} | {r['degenerate']} | {r['backbone_peak']:.1f} |" for t, r in zip(tops, res)]
        lines.append("")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "pad_phase.json", json.dumps(record, indent=1))
    atomic_write_text(args.out / "pad_phase.md", "\n".join(lines))
    print("\n".join(lines[:6 + len(rows)]))  # the description and the summary table


if __name__ == "__main__":
    main()
