"""Run folders and their files: the next free folder name (``runs/train/exp``, ``exp2``... for
training, ``runs/bench/exp``... for the bench), args/hyp YAML, and results.csv (one row an
epoch, written whole and atomically, read back as rows or as columns).

yaml and numpy are imported where they are used: this module is imported by the plots and the
bench, which need neither.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeyolo.atomic import atomic_write_text

if TYPE_CHECKING:
    import numpy as np

RESULTS_COLUMNS = ("epoch", "time", "train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision",
                   "metrics/recall", "metrics/mAP50", "metrics/mAP50-95", "val/box_loss", "val/obj_loss",
                   "val/cls_loss", "lr/pg0", "lr/pg1", "lr/pg2")


def increment_path(path: str | Path, exist_ok: bool = False) -> Path:
    """runs/train/exp -> runs/train/exp2, exp3, ... (the first free name) unless ``exist_ok``:
    a new run never overwrites an earlier one."""
    path = Path(path)
    if exist_ok or not path.exists():
        return path
    n = 2
    while Path(f"{path}{n}").exists():
        n += 1
    return Path(f"{path}{n}")


def write_yaml(path: str | Path, data: dict[str, Any]) -> None:
    import yaml  # noqa: PLC0415

    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def _read_table(path: str | Path) -> tuple[list[str], list[list[float]]]:
    """(header, rows of floats); headers and values stripped (the file pads them to 20 characters,
    as YOLOv5's does); an empty file has no header."""
    with open(path, newline="") as f:
        table = [r for r in csv.reader(f, skipinitialspace=True) if r]
    if not table:
        return [], []
    return [h.strip() for h in table[0]], [[float(v) for v in r] for r in table[1:]]


def read_results(path: str | Path) -> list[dict[str, float]]:
    """results.csv -> one {column: value} a row; [] when there is no file yet."""
    if not Path(path).is_file():
        return []
    header, rows = _read_table(path)
    return [dict(zip(header, r)) for r in rows]


def read_results_columns(path: str | Path) -> dict[str, np.ndarray]:
    """results.csv -> {column: (rows,) float64 values}, for plotting."""
    import numpy as np  # noqa: PLC0415

    header, rows = _read_table(path)
    if not header:
        raise ValueError(f"{path}: empty results file")
    data = np.array(rows, dtype=np.float64).reshape(-1, len(header))
    return {h: data[:, i] for i, h in enumerate(header)}


def write_results(path: str | Path, rows: list[dict[str, float]]) -> None:
    """The whole CSV, rewritten atomically each epoch (a kill never leaves a half line); a column
    a row lacks (the metrics of an epoch that was not validated) is NaN."""
    lines = [",".join(f"{c:>20}" for c in RESULTS_COLUMNS)]
    lines += [",".join(f"{row.get(c, float('nan')):>20.5g}" for c in RESULTS_COLUMNS) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
