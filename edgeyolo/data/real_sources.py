"""Real labelled images that pip can fetch: which package holds them, and how to read each one's
image and boxes out of its archive.

Each reader takes the archive (a source ``.tar.gz`` or a ``.whl``) and returns the scenes in it:
(BGR uint8 image, (n, 4) float ``x1 y1 x2 y2`` pixel boxes). Every set has one class.
"""
from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

Scene = tuple[np.ndarray, np.ndarray]


def read_member(archive: Path, tail: str) -> bytes:
    """The bytes of the one member of ``archive`` whose path ends with ``tail``; ValueError naming
    the archive when there is none."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(tail)]
            if names:
                return z.read(names[0])
    else:
        with tarfile.open(archive) as t:
            members = [m for m in t.getmembers() if m.name.endswith(tail) and m.isfile()]
            if members:
                f = t.extractfile(members[0])
                if f is not None:
                    return f.read()
    raise ValueError(f"{archive}: has no file ending in {tail!r} (not the expected package version?)")


def _imdecode(data: bytes) -> np.ndarray | None:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # GeoTIFF tags libtiff does not know
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    finally:
        cv2.utils.logging.setLogLevel(level)


def decode(data: bytes, what: str) -> np.ndarray:
    """Image bytes (PGM, PNG, JPEG, TIFF, 8 or 16 bit, grey, palette or colour) -> (H, W, 3) uint8
    BGR. Grey or 16-bit images are stretched between their 0.5 and 99.5 percentiles, so a uint16
    sensor image uses the 8-bit range, and copied to three channels."""
    img = _imdecode(data)
    if img is None:
        raise ValueError(f"{what}: OpenCV cannot decode it")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim == 3 and img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    grey = img if img.ndim == 2 else img[:, :, 0]
    lo, hi = np.percentile(grey, (0.5, 99.5))
    grey = np.clip((grey.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def boxes_from_instances(mask: np.ndarray) -> np.ndarray:
    """An instance mask (H, W), 0 = background, k = object k -> (n, 4) xyxy boxes enclosing each
    object's pixels (x2, y2 exclusive, so a one-pixel object is 1 px wide)."""
    ids = np.unique(mask)
    out = []
    for k in ids[ids != 0]:
        ys, xs = np.nonzero(mask == k)
        out.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    return np.asarray(out, dtype=np.float64).reshape(-1, 4)


def _pycda(archive: Path) -> list[Scene]:
    img = decode(read_member(archive, "sample_imgs/holdout_tile.pgm"), f"{archive}:holdout_tile.pgm")
    rows = list(csv.DictReader(io.StringIO(read_member(archive, "holdout_tile_labels.csv").decode())))
    c = np.array([[float(r["long"]), float(r["lat"]), float(r["diameter"])] for r in rows]).reshape(-1, 3)
    r = c[:, 2:3] / 2  # a crater is labelled by centre and diameter: its box is the enclosing square
    return [(img, np.hstack([c[:, :2] - r, c[:, :2] + r]))]


def _solaris(archive: Path) -> list[Scene]:
    img = decode(read_member(archive, "data/sample_geotiff.tif"), f"{archive}:sample_geotiff.tif")
    h, w = img.shape[:2]
    text = read_member(archive, "data/sample_geotiff.tif.txt").decode()
    lab = np.array([[float(v) for v in line.split()[1:5]] for line in text.splitlines() if line.strip()])
    cx, cy, bw, bh = (lab.reshape(-1, 4) * [w, h, w, h]).T
    return [(img, np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))]


def _stardist(archive: Path) -> list[Scene]:
    img = decode(read_member(archive, "data/images/img2d.tif"), f"{archive}:img2d.tif")
    mask = _imdecode(read_member(archive, "data/images/mask2d.tif"))
    return [(img, boxes_from_instances(mask))]


def _ngio(archive: Path) -> list[Scene]:
    folder = "20200812-CardiomyocyteDifferentiation14-Cycle1_B03/"
    img = decode(read_member(archive, folder + "raw.jpg"), f"{archive}:raw.jpg")
    mask = _imdecode(read_member(archive, folder + "nuclei.png"))
    return [(img, boxes_from_instances(mask))]


def _sahi(archive: Path) -> list[Scene]:
    img = decode(read_member(archive, "demo/demo_data/terrain2.png"), f"{archive}:terrain2.png")
    coco = json.loads(read_member(archive, "demo/demo_data/terrain2_coco.json"))
    xywh = np.array([a["bbox"] for a in coco["annotations"]], dtype=np.float64).reshape(-1, 4)
    return [(img, np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]))]


@dataclass(frozen=True)
class RealSource:
    name: str
    requirement: str  # what pip downloads
    sdist: bool  # the data ships only in the source archive
    legacy_pip: bool  # malformed dependency metadata that pip >= 23.3 refuses to download
    cls: str  # the one class name
    tile: int  # default tile side in px
    overlap: float  # default share of a training tile its neighbours repeat (more tiles from a small scene)
    license: str
    about: str
    read: Callable[[Path], list[Scene]]


SOURCES: dict[str, RealSource] = {s.name: s for s in (
    RealSource("craters", "pycda==0.1.16", True, False, "crater", 320, 0.25, "MIT",
               "Mars orbital image, 1700x1700 grey, 409 hand-labelled craters (4-78 px)", _pycda),
    RealSource("buildings", "solaris==0.4.0", False, True, "building", 256, 0.5, "Apache-2.0",
               "aerial image, 900x900 uint16 at 0.5 m/px, 43 buildings", _solaris),
    RealSource("nuclei", "stardist==0.9.2", False, False, "nucleus", 160, 0.5, "BSD-3-Clause",
               "fluorescence microscopy, 512x512, 125 hand-annotated nuclei", _stardist),
    RealSource("nuclei-ngio", "ngio==1.1.3", False, False, "nucleus", 160, 0.5, "BSD-3-Clause",
               "microscopy, 512x512, 168 nucleus instances (possibly model-made labels)", _ngio),
    RealSource("cars-smoke", "sahi==0.12.8", True, False, "car", 512, 0.25, "MIT",
               "terrain image 1024x682, 5 cars: a smoke test, not a benchmark", _sahi),
)}


def get_source(name: str) -> RealSource:
    if name not in SOURCES:
        raise ValueError(f"unknown real data set {name!r}; choose from {', '.join(SOURCES)}")
    return SOURCES[name]
