"""Scanning a split: check every image and label once, cache the result beside the labels.

The cache (``labels/<folder>.edgeyolo.cache``, JSON) holds the checked labels, image shapes and the
problem report, keyed by a hash of every image and label path, size and mtime, and by ``names``;
any change rescans. It is written atomically (temp file + rename) and silently skipped where the
folder is read-only. Its name is not YOLOv5's or Ultralytics' ``labels/<folder>.cache`` (a pickle):
a dataset trained with both tools would otherwise crash the other tool on our JSON.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .config import DataConfig, img2label_path
from .labels import ImageCheck, Problem, check_image_label

LOGGER = logging.getLogger("edgeyolo.data")
CACHE_VERSION = 2  # 2: padded JPEGs, BOM label files and huge images are kept (they were skipped)
MAX_LOGGED_PROBLEMS = 20


@dataclass
class SplitScan:
    """The usable part of a split. ``im_files[i]`` has ``labels[i]`` ((n, 5) float32, ``cls cx cy
    w h`` normalised) and ``shapes[i]`` ((h, w) pixels); ``problems`` lists everything dropped."""

    split: str
    im_files: list[Path]
    labels: list[np.ndarray]
    shapes: list[tuple[int, int]]
    problems: list[Problem] = field(default_factory=list)
    n_found: int = 0  # images listed in the split
    n_missing_labels: int = 0  # usable images without a label file (background images)
    cache_path: Path | None = None
    from_cache: bool = False

    def class_counts(self, nc: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (images containing each class, instances of each class), both (nc,) int."""
        images, instances = np.zeros(nc, dtype=np.int64), np.zeros(nc, dtype=np.int64)
        for lb in self.labels:
            cls = lb[:, 0].astype(np.int64)
            instances += np.bincount(cls, minlength=nc)[:nc]
            images[np.unique(cls)] += 1
        return images, instances

    def summary(self) -> str:
        """One line: found / usable / background / skipped images, dropped rows."""
        kinds = Counter(p.action for p in self.problems)
        return (f"{self.split}: {self.n_found} images, {len(self.im_files)} usable "
                f"({self.n_missing_labels} without labels), {kinds['skipped image']} skipped, "
                f"{sum(len(lb) for lb in self.labels)} boxes, {kinds['dropped row']} rows dropped")


def cache_path_for(config: DataConfig, split: str, label_files: list[Path]) -> Path:
    """``labels/train`` -> ``labels/train.edgeyolo.cache``; a split made of several sources or a
    .txt list gets the split name too (``labels.val.edgeyolo.cache``) so two splits sharing a folder
    never collide."""
    folder = label_files[0].parent
    single_dir = len(config.sources(split)) == 1 and config.sources(split)[0].is_dir()
    return folder.with_name(f"{folder.name}.edgeyolo.cache" if single_dir else f"{folder.name}.{split}.edgeyolo.cache")


def _remove_legacy_cache(cache_path: Path) -> None:
    """Earlier versions wrote their JSON at ``labels/train.cache``, where Ultralytics and YOLOv5
    read a pickle and stop with an UnpicklingError: remove such a file when it is ours (a JSON
    object with our keys); a file the other tools wrote is left alone."""
    legacy = cache_path.with_name(cache_path.name.replace(".edgeyolo.cache", ".cache"))
    try:
        with legacy.open("rb") as f:
            head = f.read(64)
        if head.startswith(b'{"version": ') and b'"hash"' in head:
            legacy.unlink()
    except OSError:
        pass


def files_hash(paths: list[Path], names: list[str]) -> str:
    h = hashlib.sha256(json.dumps(names).encode())
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


def scan_split(config: DataConfig, split: str, use_cache: bool = True, log: bool = True) -> SplitScan:
    """Check every image/label of ``split`` (or read the cache). Never raises for bad files;
    an empty split returns an empty :class:`SplitScan` and the caller decides."""
    im_files = config.image_files(split)
    label_files = [img2label_path(f) for f in im_files]
    if not im_files:
        return SplitScan(split, [], [], [], n_found=0)
    cache_path = cache_path_for(config, split, label_files)
    _remove_legacy_cache(cache_path)
    key = files_hash(im_files + label_files, config.names)
    scan = _read_cache(cache_path, key, split) if use_cache else None
    if scan is None:
        scan = _scan(im_files, label_files, config.nc, split)
        scan.cache_path = cache_path if _write_cache(cache_path, key, scan) else None
    if log and scan.problems:
        _log_problems(scan)
    return scan


def _scan(im_files: list[Path], label_files: list[Path], nc: int, split: str) -> SplitScan:
    # Threads, not processes: the work is file I/O and PIL header parsing, which release the GIL.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        results: list[ImageCheck] = list(tqdm(
            pool.map(lambda a: check_image_label(a[0], a[1], nc), zip(im_files, label_files)),
            total=len(im_files), desc=f"Checking {split} labels", disable=len(im_files) < 500, leave=False))
    scan = SplitScan(split, [], [], [], n_found=len(im_files))
    for f, r in zip(im_files, results):
        scan.problems.extend(r.problems)
        if r.labels is None:
            continue
        scan.im_files.append(f)
        scan.labels.append(r.labels)
        scan.shapes.append(r.shape)
        scan.n_missing_labels += not r.label_found
    return scan


def _read_cache(path: Path, key: str, split: str) -> SplitScan | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION or data.get("hash") != key:
            return None
        return SplitScan(
            split, [Path(f) for f in data["im_files"]],
            [np.array(lb, dtype=np.float32).reshape(-1, 5) for lb in data["labels"]],
            [tuple(s) for s in data["shapes"]], [Problem(**p) for p in data["problems"]],
            data["n_found"], data["n_missing_labels"], path, True)
    except (OSError, ValueError, KeyError, TypeError):  # absent, stale or damaged: rescan
        return None


def _write_cache(path: Path, key: str, scan: SplitScan) -> bool:
    data = {"version": CACHE_VERSION, "hash": key, "im_files": [str(f) for f in scan.im_files],
            "labels": [lb.tolist() for lb in scan.labels], "shapes": [list(s) for s in scan.shapes],
            "problems": [vars(p) for p in scan.problems], "n_found": scan.n_found,
            "n_missing_labels": scan.n_missing_labels}
    try:
        if not path.parent.is_dir():  # no labels folder at all: do not create one just for the cache
            return False
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, path)  # atomic: a reader sees the old cache or the new one, never half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True
    except OSError as e:
        LOGGER.info("label cache not written to %s (%s)", path, e)
        return False


def _log_problems(scan: SplitScan) -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun every rank scans; one report is enough
        return
    shown = scan.problems[:MAX_LOGGED_PROBLEMS]
    more = len(scan.problems) - len(shown)
    lines = "\n".join(f"  {p}" for p in shown)
    tail = f"\n  ... and {more} more (run `edgeyolo data check` for all)" if more else ""
    LOGGER.warning("%s: %d data problems\n%s%s", scan.split, len(scan.problems), lines, tail)
