"""Build a tiled, Ultralytics-format dataset from one of the real labelled sets pip can fetch
(:mod:`edgeyolo.data.real_sources`).

The archive is downloaded once with pip into the cache (``$EDGEYOLO_CACHE/real/downloads``), or
taken from a file the user names. Each scene is split by area before it is tiled: the bottom
``val_fraction`` of its rows is validation, the rest training, so no validation pixel is ever seen
in training. Training tiles overlap (more crops of few images); validation tiles partition their
band, so each box is scored once.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import venv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .coco import write_data_yaml
from .real_sources import RealSource, get_source
from .synthetic import cache_dir
from .tiling import crop_boxes, overlapping_windows, partition_windows


@dataclass
class RealReport:
    name: str
    out: Path
    tiles: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, int] = field(default_factory=dict)
    dropped: int = 0  # box pieces under the keep rule at tile borders
    median_side: float = 0.0

    def summary(self) -> str:
        parts = ", ".join(f"{s} {self.tiles[s]} tiles / {self.boxes[s]} boxes" for s in self.tiles)
        return (f"{self.name}: {parts}; median box side {self.median_side:.0f} px; {self.dropped} slivers at tile "
                f"borders left out -> {self.out / 'data.yaml'}")


def _pip_download(src: RealSource, dest: Path, python: str) -> None:
    cmd = [python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if src.sdist else ["--only-binary", ":all:"]
    done = subprocess.run([*cmd, src.requirement], capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ValueError(f"pip could not download {src.requirement}: {tail}")


def _legacy_pip(root: Path) -> str:
    """A pip older than 23.3 in its own venv under the cache, for archives whose metadata newer pip
    rejects (their data files are fine)."""
    env = root / "pip-23.2"
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.is_file():
        venv.create(env, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pip<23.3"], check=True, capture_output=True)
    return str(python)


def fetch_archive(src: RealSource, cache: Path | None = None) -> Path:
    """The source's archive, downloaded with pip into ``cache`` once and reused after."""
    dest = (cache or cache_dir() / "real") / "downloads"
    stem = src.requirement.replace("==", "-")
    found = sorted(dest.glob(f"{stem}*"))
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    _pip_download(src, dest, _legacy_pip(dest.parent) if src.legacy_pip else sys.executable)
    found = sorted(dest.glob(f"{stem}*"))
    if not found:
        raise ValueError(f"pip downloaded no {stem}* archive into {dest}")
    return found[0]


def _write_split(scenes: list[tuple[np.ndarray, np.ndarray]], split: str, out: Path, tile: int, overlap: int,
                 report: RealReport, sides: list[float]) -> None:
    (out / "images" / split).mkdir(parents=True)
    (out / "labels" / split).mkdir(parents=True)
    n_tiles = n_boxes = 0
    for k, (img, boxes) in enumerate(scenes):
        h, w = img.shape[:2]
        windows = overlapping_windows(w, h, tile, overlap) if split == "train" else partition_windows(w, h, tile)
        for win in windows:
            x0, y0, x1, y1 = win
            crop, keep = crop_boxes(boxes, win)
            inside = (boxes[:, 2] > x0) & (boxes[:, 0] < x1) & (boxes[:, 3] > y0) & (boxes[:, 1] < y1)
            report.dropped += int(inside.sum()) - len(keep)
            stem = f"s{k}_x{x0}_y{y0}"
            cv2.imwrite(str(out / "images" / split / f"{stem}.png"), img[y0:y1, x0:x1])
            tw, th = x1 - x0, y1 - y0
            lines = [f"0 {(a + c) / 2 / tw:.6f} {(b + d) / 2 / th:.6f} {(c - a) / tw:.6f} {(d - b) / th:.6f}"
                     for a, b, c, d in crop]
            (out / "labels" / split / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
            sides.extend(np.sqrt((crop[:, 2] - crop[:, 0]) * (crop[:, 3] - crop[:, 1])).tolist())
            n_tiles, n_boxes = n_tiles + 1, n_boxes + len(crop)
    report.tiles[split], report.boxes[split] = n_tiles, n_boxes


def build_real_dataset(name: str, out: str | Path, tile: int | None = None, overlap: float | None = None,
                       val_fraction: float = 0.25, archive: str | Path | None = None, force: bool = False,
                       cache: Path | None = None) -> RealReport:
    """Write ``out/{images,labels}/{train,val}`` and ``out/data.yaml`` for real set ``name``.

    ``tile``: tile side in px (default: the set's); ``overlap``: fraction of a tile shared by
    neighbouring training tiles, in [0, 0.9] (default: the set's); ``val_fraction``: the share of each scene's rows kept
    for validation, in [0.05, 0.5]. The folder is written beside ``out`` and renamed into place, so
    an interrupted build leaves nothing half-made.
    """
    src = get_source(name)
    tile, overlap = tile or src.tile, src.overlap if overlap is None else overlap
    if not 0 <= overlap <= 0.9:
        raise ValueError(f"overlap must be in [0, 0.9], got {overlap}")
    if not 0.05 <= val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in [0.05, 0.5], got {val_fraction}")
    out = Path(out)
    if out.exists() and not force:
        raise ValueError(f"{out}: already exists (use --force to replace it)")
    path = Path(archive) if archive else fetch_archive(src, cache)
    if not path.is_file():
        raise ValueError(f"{path}: no such archive")
    scenes = src.read(path)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    report, sides = RealReport(name, out), []
    try:
        train, val = [], []
        for img, boxes in scenes:
            cut = img.shape[0] - max(1, round(img.shape[0] * val_fraction))
            train.append((img[:cut], boxes))
            val.append((img[cut:], boxes - [0, cut, 0, cut]))
        _write_split(train, "train", tmp, tile, int(tile * overlap), report, sides)
        _write_split(val, "val", tmp, tile, 0, report, sides)
        write_data_yaml(tmp, [src.cls])
        text = (tmp / "data.yaml").read_text()
        (tmp / "data.yaml").write_text(f"# {src.name}: {src.about}; from {src.requirement} ({src.license}); tile {tile}"
                                       f" px, bottom {val_fraction:g} of each scene's rows for val\n" + text)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.median_side = float(np.median(sides)) if sides else 0.0
    return report
