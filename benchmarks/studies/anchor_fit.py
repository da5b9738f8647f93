"""How well a model's anchors fit a dataset's boxes, by box size: anchor matches per training box
(width and height ratios within ``anchor_t``, the loss's rule) under the config's anchors and
under anchors evolved for the set (autoanchor's k-means + evolution), for boxes under and over
``--small`` px at the training size. u5's autoanchor only acts on the best possible recall, which
can be high while small boxes get one match and large ones four; edgeyolo's also evolves anchors
when too many boxes match at most one (the "at most one" column); fitness is what a new set of
anchors must raise. Writes ``<out>/anchor_fit/<name>.md``.

    python benchmarks/studies/anchor_fit.py --data real/craters/data.yaml --imgsz 320 --small 12
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS
from edgeyolo.data.config import load_data_config
from edgeyolo.data.scan import scan_split
from edgeyolo.models import build_model
from edgeyolo.ops.anchors import anchor_fit, anchor_matches, evolve_anchors, label_sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="yolov4s-mbv3s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--small", type=float, default=12.0, help="box side (px at imgsz) under which a box is small")
    ap.add_argument("--anchor-t", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu")
    args = ap.parse_args()
    scan = scan_split(load_data_config(args.data), "train")
    wh = label_sizes(scan.labels, np.array(scan.shapes), args.imgsz)
    small = np.sqrt(wh.prod(1)) < args.small
    config = build_model(args.model, nc=1).head.anchors.detach().numpy().reshape(-1, 2)
    rows = [f"# Anchor fit: `{args.data}` at {args.imgsz} px ({time.strftime('%Y-%m-%d %H:%M')})", "",
            f"{len(wh)} training boxes, {int(small.sum())} under {args.small:g} px. Produced by "
            "`python benchmarks/studies/anchor_fit.py`.", "",
            "| anchors | sizes (w x h px) | best possible recall | fitness | matches per box | at most one | "
            f"per box under {args.small:g} px | per box over |", "|---|---|---|---|---|---|---|---|"]
    evolved = evolve_anchors(wh, len(config), args.anchor_t, 1000, 0)
    for name, anchors in ((f"{args.model} config", config), ("evolved for the set", evolved)):
        fit, n = anchor_fit(wh, anchors, args.anchor_t), anchor_matches(wh, anchors, args.anchor_t)
        sizes = ", ".join(f"{w:.0f}x{h:.0f}" for w, h in anchors)
        part = [f"{n[m].mean():.2f}" if m.any() else "no boxes" for m in (small, ~small)]
        rows.append(f"| {name} | {sizes} | {fit.bpr:.3f} | {fit.fitness:.3f} | {n.mean():.2f} | {fit.one_match:.1%} | "
                    f"{part[0]} | {part[1]} |")
    out = args.out / "anchor_fit"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{Path(args.data).parent.name}.md", "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
