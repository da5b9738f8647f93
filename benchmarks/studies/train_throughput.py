"""Training throughput on this machine: images per second, seconds per epoch, and where a step's
time goes (waiting for data, forward + loss, backward, optimizer + EMA).

The default model at its quick-start settings (yolov4s-mbv3s, 160 px, batch 16, AdamW, the
synthetic set's 800 training images) and every seed model at 320 px. A script, not part of the
bench runner: it imports the training stage. Writes
``benchmarks/results/<device>/train_throughput.{json,md}``.

    python benchmarks/studies/train_throughput.py [--steps 6] [--seed-batch 8] [--skip-seeds]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS
from edgeyolo.data import DetectionDataset, build_dataloader, synthetic_data_yaml
from edgeyolo.models import SEED_MODELS, build_model
from edgeyolo.train.ema import ModelEMA
from edgeyolo.train.hyp import load_hyp
from edgeyolo.train.loss import YOLOLoss
from edgeyolo.train.optim import build_optimizer

PHASES = ("data", "forward", "backward", "optimizer")


def measure(model_name: str, imgsz: int, batch: int, steps: int, workers: int, warmup: int = 2) -> dict:
    """Time ``steps`` training steps (after ``warmup``) of ``model_name`` on the synthetic set."""
    data = synthetic_data_yaml()
    hyp = load_hyp()
    ds = DetectionDataset(data, "train", imgsz, augment=True, hyp=hyp, cache_images=True)
    model = build_model(model_name, nc=len(ds.names)).train()
    loss_fn = YOLOLoss(model, hyp, imgsz=imgsz)
    opt = build_optimizer(model, "AdamW", 0.002, hyp["momentum"], hyp["weight_decay"])
    ema = ModelEMA(model)
    loader = build_dataloader(ds, batch, workers, shuffle=True, seed=0, drop_last=True)
    it = iter(loader)
    times = {p: [] for p in PHASES}
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        imgs, targets, _, _ = next(it)
        imgs = imgs.float() / 255
        t1 = time.perf_counter()
        loss, _ = loss_fn(model(imgs), targets)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        opt.zero_grad()
        ema.update(model)
        t4 = time.perf_counter()
        if step >= warmup:
            for p, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[p].append(dt)
    step_s = float(np.mean([sum(ts) for ts in zip(*times.values())]))
    share = {p: float(np.sum(times[p]) / np.sum([np.sum(v) for v in times.values()])) for p in PHASES}
    return {"model": model_name, "imgsz": imgsz, "batch": batch, "steps": steps, "workers": workers,
            "step_s": step_s, "images_per_s": batch / step_s, "epoch_s": len(ds) / batch * step_s,
            "train_images": len(ds), "share": share}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--seed-steps", type=int, default=2)
    ap.add_argument("--seed-batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-seeds", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "cpu"))
    args = ap.parse_args()
    rows = [measure("yolov4s-mbv3s", 160, 16, args.steps, args.workers)]
    print(rows[-1], flush=True)
    if not args.skip_seeds:
        for name in SEED_MODELS:
            rows.append(measure(name, 320, args.seed_batch, args.seed_steps, args.workers, warmup=1))
            print(rows[-1], flush=True)
    record = {"device": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg_end": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "train_throughput.json", json.dumps(record, indent=2))
    lines = ["# Training throughput, CPU", "",
             f"{record['cpus']} CPUs, torch {record['torch']} ({record['threads']} threads), {record['date']}; "
             f"load average at the end {tuple(round(x, 2) for x in record['loadavg_end'])}. AdamW, EMA, "
             "mosaic augmentation, images cached in RAM. Produced by `python benchmarks/studies/train_throughput.py`.", "",
             "| model | imgsz | batch | images/s | s/step | s/epoch (800 images) | data | forward+loss | backward | optimizer+EMA |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["share"]
        lines.append(f"| {r['model']} | {r['imgsz']} | {r['batch']} | {r['images_per_s']:.1f} | {r['step_s']:.2f} | "
                     f"{r['epoch_s']:.0f} | {s['data']:.0%} | {s['forward']:.0%} | {s['backward']:.0%} | "
                     f"{s['optimizer']:.0%} |")
    atomic_write_text(out / "train_throughput.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
