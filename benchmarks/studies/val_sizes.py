"""How each tool's checkpoint scores when validated at other input sizes, one scorer for both.

On a small validation set a checkpoint's mAP@0.5:0.95 at one input size is partly luck: where a
few small objects fall on the stride grid. Scored again with the same weights at larger and smaller
inputs (the same images, letterboxed as each tool's own validation does), the spread over sizes
shows how much of a gap at one size is that, and a gap that only lacks resolution closes as the
input grows; the mean over sizes is the steadier comparison. Detections come from each tool's own
validation (``common_scorer.edgeyolo_json`` / ``peer_json``) and edgeyolo's scorer scores both.

    python benchmarks/studies/val_sizes.py --data real/craters/data.yaml --edgeyolo runs/.../last.pt \\
        --peer runs/.../last.pt --peer-python /path/to/ultralytics-venv/bin/python --imgsz 256,320,384
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS, save_figure
from edgeyolo.bench.studies.common_scorer import detections, edgeyolo_json, ground_truth, peer_json, score

STRIDE = 32  # both tools' largest stride: each validates at a multiple of it


def parse_sizes(text: str) -> list[int]:
    """``"256,320,384"`` -> [256, 320, 384]: positive multiples of 32, each once, increasing."""
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"--imgsz {text!r}: give comma-separated integers, e.g. 256,320,384") from None
    if not sizes or sizes != sorted(set(sizes)) or any(s <= 0 or s % STRIDE for s in sizes):
        raise ValueError(f"--imgsz {text!r}: sizes must be increasing positive multiples of {STRIDE}")
    return sizes


def sweep(data: str, sizes: list[int], edgeyolo: str | None = None, peer: str | None = None,
          peer_python: str | None = None, batch: int = 16) -> dict[str, list[dict[str, float]]]:
    """{tool: [{"imgsz", "map50", "map75", "map"} per size]} under edgeyolo's scorer."""
    if peer and not peer_python:
        raise ValueError("a peer checkpoint needs --peer-python, a Python where Ultralytics is importable")
    stems, gts, nc = ground_truth(data)
    out: dict[str, list[dict[str, float]]] = {}
    for tool, weights in (("edgeyolo", edgeyolo), ("yolov8n", peer)):
        if not weights:
            continue
        rows = out.setdefault(tool, [])
        for size in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                if tool == "edgeyolo":
                    path, _ = edgeyolo_json(weights, data, size, batch, Path(tmp) / "edgeyolo.json")
                    offset = 0
                else:
                    path, _ = peer_json(peer_python, weights, data, size, batch, Path(tmp))
                    offset = 1  # Ultralytics counts category ids from 1 on data that is not COCO
                m = score(detections(path, stems, offset), gts, nc).compute()
            rows.append({"imgsz": size, "map50": m.map50, "map75": m.map75, "map": m.map})
    return out


def mean_over_sizes(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over the sizes: a checkpoint's score with less of the luck of where
    a few small validation objects fall on the grid at one size (a lower-variance comparison)."""
    return {k: sum(r[k] for r in rows) / len(rows) for k in ("map50", "map75", "map")}


def report(result: dict[str, list[dict[str, float]]], data: str, name: str) -> str:
    tools = list(result)
    lines = [f"# Validation input size: {name}", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}; `{data}`, each checkpoint validated at each size (conf 0.001, "
             "each tool's own letterbox and NMS) and scored by edgeyolo's scorer (COCOeval for boxes). "
             "Produced by `python benchmarks/studies/val_sizes.py`.", "",
             "| imgsz | " + " | ".join(f"{t} mAP@0.5 / @0.75 / @0.5:0.95" for t in tools) + " |",
             "|---|" + "---|" * len(tools)]
    means = {t: mean_over_sizes(rows) for t, rows in result.items()}
    for k, row in enumerate(result[tools[0]]):
        cells = [f"{result[t][k]['map50']:.3f} / {result[t][k]['map75']:.3f} / {result[t][k]['map']:.3f}" for t in tools]
        lines.append(f"| {row['imgsz']} | " + " | ".join(cells) + " |")
    lines.append("| mean | " + " | ".join(f"{m['map50']:.3f} / {m['map75']:.3f} / {m['map']:.3f}" for m in means.values()) + " |")
    if len(tools) == 2:
        lines += ["", "| imgsz | edgeyolo / yolov8n mAP@0.5 / mAP@0.5:0.95 |", "|---|---|"]
        for ours, peer in [*zip(*(result[t] for t in tools)), tuple(means.values())]:
            lines.append(f"| {ours.get('imgsz', 'mean')} | {ours['map50'] / max(peer['map50'], 1e-9):.2f} / "
                         f"{ours['map'] / max(peer['map'], 1e-9):.2f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for tool, rows in result.items():
        sizes = [r["imgsz"] for r in rows]
        ax.plot(sizes, [r["map"] for r in rows], "o-", label=f"{tool} mAP@0.5:0.95")
        ax.plot(sizes, [r["map50"] for r in rows], "o--", label=f"{tool} mAP@0.5")
    ax.set(xlabel="validation input size (px)", ylabel="mAP (one scorer)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data YAML (Ultralytics format, as edgeyolo data real writes)")
    ap.add_argument("--edgeyolo", default=None, help="edgeyolo checkpoint (.pt)")
    ap.add_argument("--peer", default=None, help="Ultralytics checkpoint (.pt)")
    ap.add_argument("--peer-python", default=None, help="a Python where Ultralytics is importable")
    ap.add_argument("--imgsz", default="256,288,320,352,384,416", help="validation sizes, multiples of 32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--name", default=None, help="results subfolder (default: the data folder's name)")
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu")
    args = ap.parse_args()
    if not (args.edgeyolo or args.peer):
        ap.error("give --edgeyolo, --peer or both")
    try:
        sizes = parse_sizes(args.imgsz)
        result = sweep(args.data, sizes, args.edgeyolo, args.peer, args.peer_python, args.batch)
    except ValueError as e:
        raise SystemExit(f"val_sizes: {e}") from None
    name = args.name or Path(args.data).parent.name
    out = args.out / "val-sizes" / name
    out.mkdir(parents=True, exist_ok=True)
    record = {"data": args.data, "edgeyolo": args.edgeyolo, "peer": args.peer, "sizes": sizes, "result": result,
              "mean": {tool: mean_over_sizes(rows) for tool, rows in result.items()}}
    atomic_write_text(out / "val_sizes.json", json.dumps(record, indent=1))
    text = report(result, args.data, name)
    atomic_write_text(out / "val_sizes.md", text)
    plot(result, out / "val_sizes.png", f"{name}: one checkpoint per tool, validated at each size")
    print(text)


if __name__ == "__main__":
    main()
