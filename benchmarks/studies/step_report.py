"""The training-step comparison's report (``train_step_compare.py``): images/s, images/s per
GFLOP, forward GFLOP/s, and where edgeyolo's step time goes.

Two ways to set a model's speed against its size, both given: images/s per GFLOP (images/s divided
by the model's GFLOPs, which counts a larger model's extra arithmetic against it twice, once in its
lower images/s and once in the division) and the arithmetic rate the CPU sustains (images/s times
GFLOPs: forward GFLOP/s, equal for two models that use the machine equally well whatever their size)."""
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
            "gflop_per_s": batch / step * gflops,
            "spread": (min(r["step_s"] for r in ok), max(r["step_s"] for r in ok)),
            "first_step_s": statistics.median(r.get("first_step_s", float("nan")) for r in ok)}


def paired_ratios(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> list[float]:
    """Per round, the reference's step time over this cell's (> 1: this cell is faster). Cells of a
    round run back to back, so a slow spell of a shared host weighs on both sides of a ratio alike,
    where it would move a ratio of medians taken over different rounds."""
    return [ref["step_s"] / r["step_s"] for r, ref in zip(runs, reference) if "step_s" in r and "step_s" in ref]


def write_step_report(record: dict[str, Any], out: Path) -> str:
    s = record["settings"]
    lines = ["# Training step: edgeyolo beside Ultralytics yolov8n, CPU", "",
             f"{record.get('cpu', 'CPU not recorded')}, {record['date']}; imgsz {s['imgsz']}, batch {s['batch']}, {s['threads']} threads, AdamW + EMA, random "
             f"images with 14 boxes each (no data loading); median of {s['rounds']} interleaved rounds of {s['steps']} "
             f"steps after {s['warmup']} warm-up; load average {record['load_avg'][0]:.2f} at start, "
             f"{record['load_avg'][1]:.2f} at end. GFLOPs: one 1-image forward, counted by torch.utils.flop_counter "
             "for both; forward GFLOP/s = images/s x GFLOPs, the arithmetic rate the step sustains, whatever the "
             "model's size. Produced by `python benchmarks/studies/train_step_compare.py`.", "",
             "| model | GFLOPs | s/step | images/s | images/s per GFLOP | vs yolov8n | forward GFLOP/s | vs yolov8n "
             "| step range (s) | first step (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    ref = summarise(record["runs"].get(record.get("reference", ""), []), s["batch"])
    for label, runs in record["runs"].items():
        m = summarise(runs, s["batch"])
        if m is None:
            lines.append(f"| {label} | {runs[0].get('failed', 'failed')} | | | | | | | | |")
            continue
        vs = {k: f"{m[k] / ref[k]:.2f}" if ref else "" for k in ("images_per_s_per_gflop", "gflop_per_s")}
        lines.append(f"| {label} | {m['gflops']:.2f} | {m['step_s']:.2f} | {m['images_per_s']:.1f} | "
                     f"{m['images_per_s_per_gflop']:.2f} | {vs['images_per_s_per_gflop']} | {m['gflop_per_s']:.1f} | "
                     f"{vs['gflop_per_s']} | {m['spread'][0]:.2f}-{m['spread'][1]:.2f} | {m['first_step_s']:.1f} |")
    if record["peer"] != "ok":
        lines.append(f"\nyolov8n: {record['peer']}")
    elif ref:
        label = next(iter(record["runs"]))
        ratios = paired_ratios(record["runs"][label], record["runs"][record["reference"]])
        if ratios:
            gflops = next(r["gflops"] for r in record["runs"][label] if "step_s" in r)
            flops = ref["gflops"] / gflops  # per GFLOP: divide by the own model's GFLOPs
            per = sorted(r * flops for r in ratios)
            lines += ["", f"Paired by round ({label} against yolov8n in the same round, {len(ratios)} rounds): "
                      f"images/s per GFLOP {statistics.median(per):.2f} of yolov8n's (rounds {per[0]:.2f}-{per[-1]:.2f}), "
                      f"forward GFLOP/s {statistics.median(ratios) / flops:.2f}x yolov8n's."]
    if record["profile"]:
        lines += ["", f"Where a step of {s['model']} goes (torch.profiler, self CPU time by operator family):", "",
                  "| family | share |", "|---|---|"]
        lines += [f"| {k} | {v:.0%} |" for k, v in record["profile"].items()]
    if record.get("convolutions"):
        lines += ["", "The convolutions of that step by kind: their seconds against their arithmetic (the backward "
                  "does twice the forward's, an input and a weight gradient, so a backward that runs as well as "
                  "its forward takes twice its time):", "",
                  "| convolutions | forward GFLOP per step | forward ms | forward GFLOP/s | backward ms | "
                  "backward GFLOP/s | backward / forward time |", "|---|---|---|---|---|---|---|"]
        for kind, c in record["convolutions"].items():
            fwd, bwd, g = c["forward_s"], c["backward_s"], c["forward_gflop"]
            lines.append(f"| {kind} | {g:.1f} | {fwd * 1e3:.0f} | {g / fwd if fwd else 0:.0f} | {bwd * 1e3:.0f} | "
                         f"{2 * g / bwd if bwd else 0:.0f} | {bwd / fwd if fwd else 0:.1f} |")
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "train_throughput.json", json.dumps(record, indent=1))
    atomic_write_text(out / "train_throughput.md", text)
    return text
