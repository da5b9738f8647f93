"""The training-step comparison's report (``train_step_compare.py``): images/s, images/s per
GFLOP, and where edgeyolo's step time goes."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from edgeyolo.atomic import atomic_write_text


def summarise(runs: list[dict[str, Any]], batch: int) -> dict[str, float] | None:
    """Median step time over the rounds -> images/s and images/s per GFLOP (forward, one image)."""
    ok = [r for r in runs if "step_s" in r]
    if not ok:
        return None
    step = statistics.median(r["step_s"] for r in ok)
    gflops = ok[0]["gflops"]
    return {"step_s": step, "images_per_s": batch / step, "gflops": gflops,
            "images_per_s_per_gflop": batch / step / gflops if gflops else float("nan"),
            "spread": (min(r["step_s"] for r in ok), max(r["step_s"] for r in ok))}


def write_step_report(record: dict[str, Any], out: Path) -> str:
    s = record["settings"]
    lines = ["# Training step: edgeyolo beside Ultralytics yolov8n, CPU", "",
             f"{record['date']}; imgsz {s['imgsz']}, batch {s['batch']}, {s['threads']} threads, AdamW + EMA, random "
             f"images with 14 boxes each (no data loading); median of {s['rounds']} interleaved rounds of {s['steps']} "
             f"steps after {s['warmup']} warm-up; load average {record['load_avg'][0]:.2f} at start, "
             f"{record['load_avg'][1]:.2f} at end. GFLOPs: one 1-image forward, counted by torch.utils.flop_counter "
             "for both. Produced by `python benchmarks/studies/train_step_compare.py`.", "",
             "| model | GFLOPs | s/step | images/s | images/s per GFLOP | step range (s) |", "|---|---|---|---|---|---|"]
    for label, runs in record["runs"].items():
        m = summarise(runs, s["batch"])
        if m is None:
            lines.append(f"| {label} | {runs[0].get('failed', 'failed')} | | | | |")
            continue
        lines.append(f"| {label} | {m['gflops']:.2f} | {m['step_s']:.2f} | {m['images_per_s']:.1f} | "
                     f"{m['images_per_s_per_gflop']:.2f} | {m['spread'][0]:.2f}-{m['spread'][1]:.2f} |")
    if record["peer"] != "ok":
        lines.append(f"\nyolov8n: {record['peer']}")
    if record["profile"]:
        lines += ["", f"Where a step of {s['model']} goes (torch.profiler, self CPU time by operator family):", "",
                  "| family | share |", "|---|---|"]
        lines += [f"| {k} | {v:.0%} |" for k, v in record["profile"].items()]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "train_throughput.json", json.dumps(record, indent=1))
    atomic_write_text(out / "train_throughput.md", text)
    return text
