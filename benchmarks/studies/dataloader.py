"""Training data loader throughput vs the training step it has to keep up with.

Measures training images per second (mosaic on, PyTorch_YOLOv4 default augmentation, 2 workers)
on the built-in synthetic set at 640 and 320 px, and one forward+backward of the default model
(``yolov4s-mbv3s``, nc=4, train mode, loss = sum of the raw outputs' means) on a batch of the same
size as the training-step proxy; reports data time per batch / step time, and a profile of one
process's loading to say what dominates. Writes ``benchmarks/results/<device>/dataloader.{json,md}``.

    python benchmarks/studies/dataloader.py [--batch 16] [--workers 2] [--batches 12] [--steps 1]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS
from edgeyolo.data import DetectionDataset, build_dataloader, synthetic_data_yaml
from edgeyolo.models import build_model

MODEL = "yolov4s-mbv3s"


def loader_rate(ds: DetectionDataset, batch: int, workers: int, batches: int) -> float:
    """Images per second from a fresh loader, after two warm-up batches (worker start-up)."""
    loader = build_dataloader(ds, batch_size=batch, workers=workers, shuffle=True, seed=0, drop_last=True)
    it = iter(loader)
    for _ in range(2):
        next(it)
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        imgs, *_ = next(it)
        n += imgs.shape[0]
    return n / (time.perf_counter() - t0)


def profile_items(ds: DetectionDataset, n: int) -> tuple[float, list[dict[str, Any]]]:
    """Seconds per item in one process, and the top functions by own time (what dominates)."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for i in range(n):
        ds[i % len(ds)]
    prof.disable()
    per_item = (time.perf_counter() - t0) / n
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values())
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:6]
    return per_item, [{"function": f"{Path(k[0]).name}:{k[2]}" if k[0] != "~" else k[2],
                       "share": round(v[2] / total, 3)} for k, v in top]


def step_time(imgsz: int, batch: int, steps: int) -> float:
    """Seconds of one forward+backward of the default model on a (batch, 3, imgsz, imgsz) batch
    (after one warm-up step)."""
    torch.manual_seed(0)
    model = build_model(MODEL, nc=4).train()
    x = torch.randint(0, 256, (batch, 3, imgsz, imgsz), dtype=torch.uint8).float() / 255
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        loss = sum(o.mean() for o in model(x))
        loss.backward()
        model.zero_grad(set_to_none=True)
        if k:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=12, help="timed batches per image size")
    ap.add_argument("--steps", type=int, default=1, help="timed training steps per image size")
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 320])
    ap.add_argument("--device-name", default="cpu", help="results subfolder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    data = synthetic_data_yaml()
    rows = []
    for imgsz in args.sizes:
        ds = DetectionDataset(data, "train", imgsz, augment=True)
        ips = loader_rate(ds, args.batch, args.workers, args.batches)
        per_item, top = profile_items(ds, 48)
        step = step_time(imgsz, args.batch, args.steps)
        data_s = args.batch / ips
        rows.append({"imgsz": imgsz, "images_per_s": round(ips, 1), "data_s_per_batch": round(data_s, 3),
                     "one_process_ms_per_image": round(per_item * 1000, 1), "train_step_s": round(step, 2),
                     "data_over_step": round(data_s / step, 4), "profile_top": top})
        print(f"{imgsz}px: {ips:.0f} img/s ({data_s:.2f} s/batch), step {step:.1f} s, ratio {data_s / step:.1%}; "
              f"one process {per_item * 1000:.1f} ms/img; top: {top[0]['function']} {top[0]['share']:.0%}")

    result = {
        "benchmark": "dataloader", "dataset": "synthetic (edgeyolo.data.synthetic_data_yaml, 800 train images, 320 px)",
        "augment": "mosaic 1.0, affine (translate 0.1, scale 0.5), HSV, fliplr 0.5 (PyTorch_YOLOv4 defaults)",
        "model": MODEL, "batch": args.batch, "workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "opencv": cv2.__version__, "torch_threads": torch.get_num_threads(),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "results": rows,
    }
    out = args.out / args.device_name
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "dataloader.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "dataloader.md", markdown(result))
    print(f"wrote {out / 'dataloader.json'} and {out / 'dataloader.md'}")


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Data loader throughput",
        "",
        f"Training loader on the synthetic set, {result['augment']}; batch {result['batch']}, "
        f"{result['workers']} workers; {m['cpus']} CPUs ({m['processor']}), torch {m['torch']}, OpenCV {m['opencv']}. "
        f"Training-step proxy: forward+backward of `{result['model']}` (nc=4, train mode) on a batch of the same "
        "size. Produced by `python benchmarks/studies/dataloader.py`.",
        "",
        "| imgsz | images/s | data s/batch | train step s | data / step | 1-process ms/img | top cost |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        top = ", ".join(f"{t['function']} {t['share']:.0%}" for t in r["profile_top"][:3])
        lines.append(f"| {r['imgsz']} | {r['images_per_s']} | {r['data_s_per_batch']} | {r['train_step_s']} | "
                     f"{r['data_over_step']:.1%} | {r['one_process_ms_per_image']} | {top} |")
    worst = max(r["data_over_step"] for r in result["results"])
    lines += ["", f"Data time is {worst:.1%} of a training step at worst (target: under 10%)."
              + (" The loader keeps up." if worst < 0.1 else " The loader does NOT keep up; see the top costs."),
              "On a CPU-only machine the workers share cores with the step, so the step slows by about the "
              "1-process CPU time per batch (1-process ms/img x batch), which is the same small fraction.",
              f"Load average when the run ended: {m['load_average_at_end']} (other jobs share this machine, so "
              "absolute figures are pessimistic; the ratio is what matters).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
