"""Run folders: incrementing names, args/hyp YAML, the results CSV (rewritten atomically)."""
from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from edgeyolo.atomic import atomic_write_text

RESULTS_COLUMNS = ["epoch", "time", "train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision",
                   "metrics/recall", "metrics/mAP50", "metrics/mAP50-95", "val/box_loss", "val/obj_loss",
                   "val/cls_loss", "lr/pg0", "lr/pg1", "lr/pg2"]


def increment_path(path: str | Path, exist_ok: bool = False) -> Path:
    """runs/train/exp -> runs/train/exp2, exp3, ... (the first free name) unless ``exist_ok``."""
    path = Path(path)
    if exist_ok or not path.exists():
        return path
    n = 2
    while Path(f"{path}{n}").exists():
        n += 1
    return Path(f"{path}{n}")


def write_yaml(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def read_results(path: str | Path) -> list[dict[str, float]]:
    path = Path(path)
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f, skipinitialspace=True)]


def write_results(path: str | Path, rows: list[dict[str, float]]) -> None:
    """The whole CSV, rewritten atomically each epoch (a kill never leaves a half line)."""
    lines = [",".join(f"{c:>20}" for c in RESULTS_COLUMNS)]
    lines += [",".join(f"{row.get(c, float('nan')):>20.5g}" for c in RESULTS_COLUMNS) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; called at every epoch start with (seed + epoch) so that a
    resumed run replays exactly the epochs a straight run would."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
