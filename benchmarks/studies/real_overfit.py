"""Overfit check on real pixels: four crater tiles, no augmentation, validated on those same tiles.

A detector whose loss, assignment and decode are right fits four images; its training-set mAP says
whether it did. Run once with YOLOv5's BatchNorm momentum (0.03) and once with the short-run
recipe's (0.1): the first fits the tiles (its training loss falls as far) but validates near zero,
because its running statistics lag the weights. Writes ``<out>/real_overfit.{md,json}``.

    python benchmarks/studies/real_overfit.py [--epochs 150]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml
from torch import nn

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS
from edgeyolo.data.real import build_real_dataset
from edgeyolo.data.synthetic import cache_dir
from edgeyolo.train.config import TrainConfig
from edgeyolo.train.trainer import Trainer

NO_AUG = {"mosaic": 0.0, "letterbox_bands": 0.0, "fliplr": 0.0, "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0,
          "translate": 0.0, "scale": 0.0}


def four_tiles(work: Path) -> Path:
    src = work / "craters"
    if not (src / "data.yaml").is_file():
        build_real_dataset("craters", src, force=True)
    out = work / "craters-4"
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("images", "labels"):
        (out / sub / "train").mkdir(parents=True)
    for img in sorted((src / "images" / "train").glob("*.png"))[2::10][:4]:
        shutil.copy(img, out / "images" / "train" / img.name)
        shutil.copy(src / "labels" / "train" / f"{img.stem}.txt", out / "labels" / "train" / f"{img.stem}.txt")
    (out / "data.yaml").write_text(yaml.safe_dump({"path": str(out), "train": "images/train", "val": "images/train",
                                                   "names": ["crater"]}))
    (out / "hyp.yaml").write_text(yaml.safe_dump(NO_AUG))
    return out


def run(data: Path, momentum: float, epochs: int, work: Path) -> dict:
    t = Trainer(TrainConfig(data=str(data / "data.yaml"), hyp=str(data / "hyp.yaml"), epochs=epochs, imgsz=320,
                            batch=4, device="cpu", workers=0, project=str(work / "runs"), name=f"bn{momentum:g}",
                            exist_ok=True, val_interval=10, plots=False, progress=False))
    for m in [*t.model.modules(), *t.ema.ema.modules()]:  # the one thing that differs between the two runs
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum
    rows = [r for r in _rows(t.fit() / "results.csv")]
    last = rows[-1]
    return {"bn_momentum": momentum, "train_box_loss": last["train/box_loss"], "train_obj_loss": last["train/obj_loss"],
            "map50": last["metrics/mAP50"], "map": last["metrics/mAP50-95"]}


def _rows(path: Path) -> list[dict[str, float]]:
    from edgeyolo.runs import read_results
    return read_results(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--work", default=str(cache_dir() / "real-overfit"))
    ap.add_argument("--out", default=str(RESULTS / "cpu-amd-epyc"))
    args = ap.parse_args()
    work = Path(args.work)
    data = four_tiles(work)
    rows = [run(data, m, args.epochs, work) for m in (0.03, 0.1)]
    lines = ["# Overfit check: four real crater tiles, no augmentation, scored on themselves", "",
             f"yolov4s-mbv3s from scratch, {args.epochs} epochs at 320, batch 4, the short-run recipe (AdamW); only "
             "BatchNorm's momentum differs. Produced by `python benchmarks/studies/real_overfit.py`.", "",
             "| BatchNorm momentum | train box loss | train obj loss | mAP@0.5 | mAP@0.5:0.95 |", "|---|---|---|---|---|"]
    lines += [f"| {r['bn_momentum']:g} | {r['train_box_loss']:.4f} | {r['train_obj_loss']:.4f} | {r['map50']:.3f} | "
              f"{r['map']:.3f} |" for r in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "real_overfit.json", json.dumps(rows, indent=1))
    atomic_write_text(out / "real_overfit.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
