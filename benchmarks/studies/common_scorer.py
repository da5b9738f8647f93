"""Both tools' detections on the same validation images, scored by one scorer.

``real_data.py`` lets each tool score its own validation, and the two scorers differ: edgeyolo's
is COCOeval for boxes (at most 100 detections an image; ``edgeyolo.ops.metrics``, held to
pycocotools by tests/test_metrics.py), Ultralytics' is its own ``ap_per_class`` (up to 300). Here
each tool writes its detections for one checkpoint with its own validation (``edgeyolo val
--save-json``; Ultralytics' ``val(save_json=True)`` in the peer's Python, conf 0.001 and each
tool's NMS IoU), and edgeyolo's scorer scores both against the same labels. A paired bootstrap over
the images (``paired_bootstrap``) then says how much of the gap in mAP@0.5:0.95 the validation
set's size alone could explain.

    python benchmarks/studies/common_scorer.py --data real/craters/data.yaml \\
        --edgeyolo runs/.../last.pt --peer runs/.../last.pt --peer-python /path/to/ultralytics-venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS
from edgeyolo.data.augment import xywhn2xyxy
from edgeyolo.data.config import load_data_config
from edgeyolo.data.scan import scan_split
from edgeyolo.ops.metrics import DetectionEvaluator, paired_bootstrap

PEER_VAL = """
import sys
from ultralytics import YOLO
weights, data, imgsz, batch, project = sys.argv[1:6]
m = YOLO(weights)
r = m.val(data=data, imgsz=int(imgsz), batch=int(batch), conf=0.001, iou=0.7, save_json=True, plots=False,
          project=project, name="val", exist_ok=True, workers=0, device="cpu", verbose=False)
print("RESULT", r.save_dir, r.box.map50, r.box.map, sorted(m.names))
"""


def ground_truth(data: str) -> tuple[list[str], list[np.ndarray], int]:
    """Validation image stems, (m, 5) ``cls x1 y1 x2 y2`` pixel labels per image, class count."""
    config = load_data_config(data)
    scan = scan_split(config, "val")
    gts = [xywhn2xyxy(lb, w, h).reshape(-1, 5) for lb, (h, w) in zip(scan.labels, scan.shapes)]
    return [Path(f).stem for f in scan.im_files], gts, config.nc


def detections(json_path: Path, stems: list[str], class_offset: int) -> list[np.ndarray]:
    """COCO-format detections (xywh, top-left) -> (n, 6) ``x1 y1 x2 y2 score cls`` per image of
    ``stems``; ``class_offset`` is subtracted from ``category_id`` (Ultralytics counts from 1 on
    data that is not COCO)."""
    # Both tools write a numeric stem ("00012") as an int image_id (12), as COCO's ids are.
    ids = {str(int(s)) if s.isnumeric() else s: s for s in stems}
    per: dict[str, list[list[float]]] = {s: [] for s in stems}
    for d in json.loads(json_path.read_text()):
        key = str(d["image_id"])
        if key not in ids:
            raise ValueError(f"{json_path}: detection for image {key!r}, which is not in the validation split")
        x, y, w, h = d["bbox"]
        per[ids[key]].append([x, y, x + w, y + h, d["score"], d["category_id"] - class_offset])
    return [np.array(per[s], dtype=np.float64).reshape(-1, 6) for s in stems]


def score(dets: list[np.ndarray], gts: list[np.ndarray], nc: int,
          area: tuple[float, float] | None = None) -> DetectionEvaluator:
    ev = DetectionEvaluator(nc, area=area)
    for d, g in zip(dets, gts):
        ev.update(d, g)
    return ev


def size_ranges(edges: list[float]) -> list[tuple[str, tuple[float, float]]]:
    """Box-side edges in px (e.g. COCO's 32, 96) -> named area ranges in px^2, COCO's way."""
    if not edges or sorted(edges) != edges or edges[0] <= 0:
        raise ValueError(f"size edges must be positive and increasing, got {edges}")
    sides = [0.0, *edges, float("inf")]
    return [(f"{lo:g}-{hi:g} px" if hi < float("inf") else f">{lo:g} px", (lo * lo, min(hi * hi, 1e10)))
            for lo, hi in zip(sides, sides[1:])]


def breakdown(dets: list[np.ndarray], gts: list[np.ndarray], nc: int, edges: list[float]) -> dict:
    """Where a tool's mAP@0.5:0.95 comes from: AP at each IoU threshold (0.50:0.05:0.95, mean over
    classes) and mAP@0.5 / mAP@0.5:0.95 per box size (COCOeval's areaRng rule, box sides in px)."""
    m = score(dets, gts, nc).compute()
    out = {"ap_per_iou": [float(x) for x in np.nanmean(m.ap[m.valid], 0)], "by_size": []}
    areas = np.concatenate([(g[:, 3] - g[:, 1]) * (g[:, 4] - g[:, 2]) for g in gts]) if gts else np.zeros(0)
    for name, rng in size_ranges(edges):
        boxes = int(((areas >= rng[0]) & (areas <= rng[1])).sum())
        ms = score(dets, gts, nc, rng).compute()
        out["by_size"].append({"size": name, "boxes": boxes, "map50": ms.map50, "map": ms.map})
    return out


def edgeyolo_json(weights: str, data: str, imgsz: int, batch: int, out: Path) -> tuple[Path, str]:
    cmd = [sys.executable, "-m", "edgeyolo.cli", "val", "--weights", weights, "--data", data, "--imgsz", str(imgsz),
           "--batch", str(batch), "--workers", "0", "--device", "cpu", "--save-json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"edgeyolo val failed on {weights}: {done.stderr.strip().splitlines()[-1:]}")
    own = next((ln.split() for ln in done.stdout.splitlines() if ln.split()[:1] == ["all"]), None)
    return out, f"{float(own[-2]):.3f} / {float(own[-1]):.3f}" if own else "n/a"


def peer_json(python: str, weights: str, data: str, imgsz: int, batch: int, work: Path) -> tuple[Path, str]:
    done = subprocess.run([python, "-c", PEER_VAL, weights, data, str(imgsz), str(batch), str(work)],
                          capture_output=True, text=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"Ultralytics val failed on {weights}: {done.stderr.strip().splitlines()[-1:]}")
    _, save_dir, map50, map95 = line.split()[:4]
    return Path(save_dir) / "predictions.json", f"{float(map50):.3f} / {float(map95):.3f}"


def rescore_peer(python: str, weights: list[Path], data: Path, imgsz: int, batch: int) -> list[dict[str, float]]:
    """Each peer checkpoint of ``weights`` on ``data``'s validation split, its detections scored by
    edgeyolo's scorer -> one {"map50", "map"} per checkpoint."""
    stems, gts, nc = ground_truth(str(data))
    out = []
    for w in weights:
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = peer_json(python, str(w), str(data), imgsz, batch, Path(tmp))
            m = score(detections(path, stems, 1), gts, nc).compute()
        out.append({"map50": m.map50, "map": m.map})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data YAML (Ultralytics format, as edgeyolo data real writes)")
    ap.add_argument("--edgeyolo", default=None,
                    help="edgeyolo checkpoint (.pt); without it only the peer is scored (its own scorer and this one)")
    ap.add_argument("--peer", required=True, help="Ultralytics checkpoint (.pt)")
    ap.add_argument("--peer-python", required=True, help="a Python where Ultralytics is importable")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap draws")
    ap.add_argument("--sizes", default="32,96",
                    help="box-side edges (px) of the per-size breakdown (default COCO's small / medium / large)")
    ap.add_argument("--name", default=None, help="results subfolder (default: the data folder's name)")
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu")
    args = ap.parse_args()
    edges = [float(x) for x in args.sizes.split(",")]
    stems, gts, nc = ground_truth(args.data)
    scored, dets = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.edgeyolo:
            path, own = edgeyolo_json(args.edgeyolo, args.data, args.imgsz, args.batch, Path(tmp) / "edgeyolo.json")
            dets["edgeyolo"] = detections(path, stems, 0)
            scored["edgeyolo"] = (args.edgeyolo, own, score(dets["edgeyolo"], gts, nc))
        path, own = peer_json(args.peer_python, args.peer, args.data, args.imgsz, args.batch, Path(tmp))
        dets["yolov8n"] = detections(path, stems, 1)
        scored["yolov8n"] = (args.peer, own, score(dets["yolov8n"], gts, nc))
    name = args.name or Path(args.data).parent.name
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "data": args.data, "images": len(stems),
              "boxes": int(sum(len(g) for g in gts)), "tools": {}}
    lines = [f"# One scorer for both tools: {name}", "",
             f"{record['date']}; {len(stems)} validation images, {record['boxes']} boxes (`{args.data}`); "
             f"imgsz {args.imgsz}. Each tool's detections come from its own validation (conf 0.001; NMS IoU "
             "0.65 edgeyolo, 0.7 Ultralytics); \"one scorer\" is edgeyolo's, COCOeval's for boxes, for both. "
             "Produced by `python benchmarks/studies/common_scorer.py`.", "",
             "| tool | checkpoint | own scorer mAP@0.5 / mAP@0.5:0.95 | one scorer mAP@0.5 / mAP@0.5:0.95 |",
             "|---|---|---|---|"]
    for tool, (weights, own, ev) in scored.items():
        m = ev.compute()
        record["tools"][tool] = {"weights": weights, "own": own, "common": [m.map50, m.map]}
        lines.append(f"| {tool} | `{weights}` | {own} | {m.map50:.3f} / {m.map:.3f} |")
    lines.append("")
    parts = {tool: breakdown(d, gts, nc, edges) for tool, d in dets.items()}
    record["breakdown"] = parts
    lines += ["Where the mAP@0.5:0.95 comes from (one scorer): AP at each IoU threshold, and per box size "
              "(COCOeval's area ranges: GTs of other sizes ignored, and detections on them or, unmatched, "
              "of other sizes).", "",
              "| tool | " + " | ".join(f"AP@{t:.2f}" for t in np.linspace(0.5, 0.95, 10)) + " |",
              "|---|" + "---|" * 10]
    lines += [f"| {tool} | " + " | ".join(f"{a:.3f}" for a in p["ap_per_iou"]) + " |" for tool, p in parts.items()]
    lines += ["", "| box side | boxes | " + " | ".join(f"{t} mAP@0.5 / mAP@0.5:0.95" for t in parts) + " |",
              "|---|---|" + "---|" * len(parts)]
    for k, row in enumerate(next(iter(parts.values()))["by_size"]):
        lines.append(f"| {row['size']} | {row['boxes']} | "
                     + " | ".join(f"{p['by_size'][k]['map50']:.3f} / {p['by_size'][k]['map']:.3f}" for p in parts.values())
                     + " |")
    lines.append("")
    if "edgeyolo" in scored:
        (m_ours, m_peer) = (scored[t][2].compute() for t in ("edgeyolo", "yolov8n"))
        lo, hi = paired_bootstrap(scored["edgeyolo"][2], scored["yolov8n"][2], n=args.bootstrap)
        record["diff_map_95ci"], record["bootstrap"] = [lo, hi], args.bootstrap
        lines += [f"edgeyolo / yolov8n under one scorer: {m_ours.map50 / m_peer.map50:.2f} / "
                  f"{m_ours.map / m_peer.map:.2f}. Paired bootstrap over the {len(stems)} images "
                  f"({args.bootstrap} draws): edgeyolo - yolov8n mAP@0.5:0.95 lies in [{lo:+.3f}, {hi:+.3f}] (95 %).", ""]
    out = args.out / "common-scorer" / name
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "common_scorer.json", json.dumps(record, indent=1))
    atomic_write_text(out / "common_scorer.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
