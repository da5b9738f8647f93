"""Checking one image and its label file.

A label file holds one ``class cx cy w h`` row per box, normalised to [0, 1] (a polygon row
``class x1 y1 x2 y2 ...`` is accepted and turned into its bounding box, as YOLOv5 does). Bad rows
are dropped and bad images skipped; each problem becomes a :class:`Problem` with file and line.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# Rows whose coordinates leave [0, 1] by at most this much are clipped rather than dropped:
# annotation tools often round a border box to 1.0001 or -0.0002.
COORD_TOL = 0.01
MIN_IMAGE_SIDE = 10  # smaller images are almost always broken thumbnails


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data: ``file`` (image or label), 1-based ``line`` or 0 for the
    whole file, a message, and what was done about it (``skipped image`` or ``dropped row``)."""

    file: str
    line: int
    message: str
    action: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message} ({self.action})"


@dataclass
class ImageCheck:
    """The result of :func:`check_image_label`: ``labels`` (n, 5) float32 ``cls cx cy w h``
    normalised, or None when the image is unusable; ``shape`` (h, w) after EXIF rotation."""

    labels: np.ndarray | None
    shape: tuple[int, int]
    problems: list[Problem]
    label_found: bool


JPEG_TAIL = 1024  # bytes at the end of a JPEG searched for its end-of-image marker
_PIL_LIMIT_LOCK = threading.Lock()


def _header(img_path: Path) -> tuple[int, int, str, int]:
    """(w, h, format, EXIF orientation) from the header; PIL's verify checks the rest it can
    without decoding pixels (PNG chunk CRCs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # headers only: no pixels decoded
        with Image.open(img_path) as im:
            w, h = im.size
            fmt = (im.format or "").lower()
            orientation = im.getexif().get(0x0112, 1)
        with Image.open(img_path) as im:
            im.verify()
    return w, h, fmt, orientation


def check_image(img_path: Path) -> tuple[tuple[int, int], str | None]:
    """-> ((h, w), None) for a readable image, or ((0, 0), reason) when it must be skipped.

    PIL's ``verify`` reads headers and (for PNG) every chunk CRC without decoding pixels; a JPEG
    cut short is caught by its missing end-of-image marker, which ``verify`` does not look for.
    """
    if not img_path.is_file():
        return (0, 0), "image not found"
    try:
        try:
            w, h, fmt, orientation = _header(img_path)
        except Image.DecompressionBombError:
            # PIL's guard against huge images (> ~179 Mpx) while only headers are read: a large
            # aerial tile is a normal image here, which OpenCV reads (its own limit is 1 Gpx).
            with _PIL_LIMIT_LOCK:
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    w, h, fmt, orientation = _header(img_path)
                finally:
                    Image.MAX_IMAGE_PIXELS = limit
        if fmt in ("jpeg", "mpo"):
            with open(img_path, "rb") as f:
                f.seek(max(f.seek(0, 2) - JPEG_TAIL, 0))
                # the end-of-image marker, possibly followed by padding some cameras and editors add
                # (OpenCV and PIL read those files; YOLOv5 keeps them too)
                if b"\xff\xd9" not in f.read():
                    return (0, 0), "truncated JPEG (no end-of-image marker)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return (0, 0), f"unreadable image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})"
    if orientation in (5, 6, 7, 8):  # rotated 90 degrees: OpenCV applies EXIF rotation on read
        w, h = h, w
    if min(w, h) < MIN_IMAGE_SIDE:
        return (0, 0), f"image too small ({w}x{h} px, need >= {MIN_IMAGE_SIDE})"
    return (h, w), None


def parse_label_rows(text: str, nc: int, file: str) -> tuple[np.ndarray, list[Problem]]:
    """Label file text -> ((n, 5) float32 ``cls cx cy w h``, problems). Dropped rows: not
    numbers, wrong column count, class id not an integer in [0, nc), coordinates outside [0, 1]
    beyond :data:`COORD_TOL` (the box edges are checked too), zero or negative size, and exact
    duplicates of an earlier row. Kept rows are clipped to the image."""
    rows: list[np.ndarray] = []
    problems: list[Problem] = []
    seen: dict[tuple[float, ...], int] = {}

    def drop(line: int, msg: str) -> None:
        problems.append(Problem(file, line, msg, "dropped row"))

    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            v = np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            drop(n, f"not numbers: {line.strip()[:60]!r}")
            continue
        if len(v) >= 7 and len(v) % 2 == 1:  # polygon: class + >= 3 xy points
            xy = v[1:].reshape(-1, 2)
            lo, hi = xy.min(0), xy.max(0)
            v = np.array([v[0], *((lo + hi) / 2), *(hi - lo)])
        elif len(v) != 5:
            drop(n, f"expected 5 values 'class cx cy w h', got {len(tokens)}")
            continue
        if not np.isfinite(v).all():
            drop(n, "not finite (nan or inf)")
            continue
        cls = v[0]
        if cls != int(cls) or not 0 <= cls < nc:
            drop(n, f"class id {tokens[0]} outside names (0..{nc - 1})")
            continue
        cx, cy, w, h = v[1:]
        if w <= 0 or h <= 0:
            drop(n, f"zero or negative size (w={w:g}, h={h:g})")
            continue
        edges = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        if (v[1:] < -COORD_TOL).any() or (v[1:] > 1 + COORD_TOL).any() or \
                (edges < -COORD_TOL).any() or (edges > 1 + COORD_TOL).any():
            drop(n, f"coordinates outside [0, 1] (cx={cx:g} cy={cy:g} w={w:g} h={h:g})")
            continue
        x1, y1, x2, y2 = edges.clip(0, 1)
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            drop(n, "zero size after clipping to the image")
            continue
        row = np.array([cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float32)
        key = tuple(row.tolist())
        if key in seen:
            drop(n, f"duplicate of line {seen[key]}")
            continue
        seen[key] = n
        rows.append(row)
    labels = np.stack(rows) if rows else np.zeros((0, 5), dtype=np.float32)
    return labels, problems


def check_image_label(img_path: Path, label_path: Path, nc: int) -> ImageCheck:
    """Check one image and its label file (missing label file = no objects)."""
    shape, reason = check_image(img_path)
    if reason:
        return ImageCheck(None, shape, [Problem(str(img_path), 0, reason, "skipped image")], label_path.is_file())
    if not label_path.is_file():
        return ImageCheck(np.zeros((0, 5), dtype=np.float32), shape, [], False)
    try:
        text = label_path.read_text(encoding="utf-8-sig")  # -sig: a BOM (Windows editors) is not row 1's text
    except (OSError, UnicodeDecodeError) as e:
        msg = f"unreadable label file ({type(e).__name__})"
        return ImageCheck(None, shape, [Problem(str(label_path), 0, msg, "skipped image")], True)
    labels, problems = parse_label_rows(text, nc, str(label_path))
    return ImageCheck(labels, shape, problems, True)
