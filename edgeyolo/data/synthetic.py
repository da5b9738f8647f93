"""The built-in synthetic detection set: the default data of ``edgeyolo train``, the tests and the
quick start.

Four classes named like the seeds' (motorcycle, car, bus, truck), each a distinct side-view
silhouette in its own colour family (red, blue, yellow, green), drawn at several scales and aspect
ratios on textured low-saturation backgrounds, overlapping (later objects occlude earlier ones by
up to ~35 %), with saturated non-class distractor shapes so colour alone is not enough. Every image
comes from its own ``numpy`` generator seeded by (seed, split, index), so the set is identical
however it is generated. Layout: ``images/{train,val}/NNNNNN.jpg``, ``labels/...txt``, ``data.yaml``.
"""
from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from . import shapes

SYNTH_VERSION = 1  # bump when the drawing changes: the cache folder name carries it
SYNTH_NAMES = ["motorcycle", "car", "bus", "truck"]
DEFAULT_TRAIN, DEFAULT_VAL, DEFAULT_IMGSZ, DEFAULT_SEED = 800, 160, 320, 0
MAX_OCCLUDED = 0.35  # at most this fraction of an earlier box may be covered by a later one


def cache_dir() -> Path:
    """``$EDGEYOLO_CACHE`` or ``~/.cache/edgeyolo``."""
    env = os.environ.get("EDGEYOLO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeyolo"


def render_image(rng: np.random.Generator, imgsz: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic image -> (BGR uint8 (h, w, 3) with long side ``imgsz``, (n, 5) float32
    ``cls cx cy w h`` normalised, 1-6 objects)."""
    aspect = rng.choice([1.0, 0.75, 1 / 0.75], p=[0.5, 0.35, 0.15])  # h / w
    h, w = (int(round(imgsz * aspect)), imgsz) if aspect <= 1 else (imgsz, int(round(imgsz / aspect)))
    img = shapes.background(rng, h, w)
    boxes: list[tuple[int, int, int, int, int]] = []  # cls, x1, y1, x2, y2 in pixels
    for _ in range(int(rng.integers(1, 7))):
        cls = int(rng.integers(0, 4))
        for _attempt in range(20):
            bw, bh = shapes.object_size(rng, cls, h, w)
            x1, y1 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
            new = (x1, y1, x1 + bw, y1 + bh)
            if all(_overlap(old[1:], new) <= MAX_OCCLUDED for old in boxes):
                shapes.draw_object(img, rng, cls, new)
                boxes.append((cls, *new))
                break
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    b = np.array(boxes, dtype=np.float32).reshape(-1, 5)
    labels = np.stack([b[:, 0], (b[:, 1] + b[:, 3]) / 2 / w, (b[:, 2] + b[:, 4]) / 2 / h,
                       (b[:, 3] - b[:, 1]) / w, (b[:, 4] - b[:, 2]) / h], 1)
    return img, labels


def _overlap(old: tuple[int, ...], new: tuple[int, ...]) -> float:
    """Fraction of ``old`` covered by ``new`` (both x1, y1, x2, y2)."""
    iw = max(0, min(old[2], new[2]) - max(old[0], new[0]))
    ih = max(0, min(old[3], new[3]) - max(old[1], new[1]))
    return iw * ih / ((old[2] - old[0]) * (old[3] - old[1]))


def _write_one(out: Path, split: str, index: int, imgsz: int, seed: int) -> None:
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, index])
    img, labels = render_image(rng, imgsz)
    name = f"{index:06d}"
    cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    rows = "".join(f"{int(c)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}\n" for c, x, y, bw, bh in labels.tolist())
    (out / "labels" / split / f"{name}.txt").write_text(rows)


def generate_synthetic(out: str | os.PathLike[str], n_train: int = DEFAULT_TRAIN, n_val: int = DEFAULT_VAL,
                       imgsz: int = DEFAULT_IMGSZ, seed: int = DEFAULT_SEED, force: bool = False) -> Path:
    """Write the synthetic set to ``out`` and return its ``data.yaml``.

    Atomic: the set is generated in a hidden sibling folder and renamed to ``out`` at the end, so
    an interrupted run leaves no half set. ``out`` must not exist (or be empty) unless ``force``.
    """
    out = Path(out).expanduser().resolve()
    if n_train < 1 or n_val < 1 or imgsz < 32:
        raise ValueError(f"{out}: need --train >= 1, --val >= 1 and --imgsz >= 32")
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"{out}: folder exists and is not empty (pass --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        for split in ("train", "val"):
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
        jobs = [(s, i) for s, n in (("train", n_train), ("val", n_val)) for i in range(n)]
        # Threads suffice: OpenCV drawing and JPEG encoding release the GIL.
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            list(tqdm(pool.map(lambda job: _write_one(tmp, job[0], job[1], imgsz, seed), jobs), total=len(jobs),
                      desc="Generating synthetic set", disable=len(jobs) < 200, leave=False))
        (tmp / "data.yaml").write_text(
            f"# edgeyolo synthetic detection set v{SYNTH_VERSION}: {n_train} train / {n_val} val images, "
            f"long side {imgsz} px, seed {seed}.\n# No 'path' key: Ultralytics and edgeyolo both read "
            f"the splits relative to this file's folder.\n"
            "train: images/train\nval: images/val\nnames:\n" + "".join(f"  - {n}\n" for n in SYNTH_NAMES))
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "data.yaml"


def synthetic_data_yaml(root: Path | None = None, *, n_train: int = DEFAULT_TRAIN, n_val: int = DEFAULT_VAL,
                        imgsz: int = DEFAULT_IMGSZ, seed: int = DEFAULT_SEED) -> Path:
    """The data YAML of the built-in synthetic set under the cache folder ``root`` (default
    :func:`cache_dir`), generated on first use into ``synth-v1`` (non-default sizes get their
    own folder). Safe when several processes ask at once: each generates into its own temp
    folder and the first rename wins."""
    root = Path(root).expanduser() if root is not None else cache_dir()
    name = f"synth-v{SYNTH_VERSION}"
    if (n_train, n_val, imgsz, seed) != (DEFAULT_TRAIN, DEFAULT_VAL, DEFAULT_IMGSZ, DEFAULT_SEED):
        name += f"-{imgsz}px-{n_train}-{n_val}-s{seed}"
    final = root / name
    if (final / "data.yaml").is_file():
        return final / "data.yaml"
    if final.exists():  # only a complete set is ever renamed into place, so this is not ours
        raise ValueError(f"{final}: exists without data.yaml; delete it to regenerate the synthetic set")
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{name}.build-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    generate_synthetic(staging, n_train, n_val, imgsz, seed)
    try:
        os.rename(staging, final)
    except OSError:  # another process finished first: keep its set
        shutil.rmtree(staging, ignore_errors=True)
        if not (final / "data.yaml").is_file():
            raise
    return final / "data.yaml"
