"""Detect on an image, a folder of images or a video file: boxes drawn and saved, detections
optionally written as YOLO txt or JSON. Shared by ``edgeyolo detect`` and ``edgeyolo-run detect``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from edgeyolo.atomic import atomic_write_text

from .detector import Detector
from .draw import draw, yolo_lines

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


def source_files(source: Path) -> list[Path]:
    """The files of ``--source``: the file itself, or a folder's images and videos (sorted)."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if not files:
            raise ValueError(f"--source {source}: no images or videos ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})")
        return files
    if source.is_file():
        return [source]
    raise ValueError(f"--source {source}: not found")


def output_names(files: list[Path]) -> dict[Path, str]:
    """A name per file for its outputs: the stem, or stem_suffix where two files share a stem
    (a.jpg and a.png would otherwise overwrite each other's drawings and labels)."""
    counts: dict[str, int] = {}
    for f in files:
        counts[f.stem.lower()] = counts.get(f.stem.lower(), 0) + 1
    return {f: f.stem if counts[f.stem.lower()] == 1 else f"{f.stem}_{f.suffix[1:].lower()}" for f in files}


def iter_frames(files: list[Path], skipped: list[str] | None = None) -> Iterator[tuple[Path, int, np.ndarray, float]]:
    """(file, frame index or -1 for an image, BGR image, the video's frame rate or 0 for an image)
    for every image and every frame of every video of ``files`` (:func:`source_files`). Of several
    files an unreadable one is reported in ``skipped`` and passed over; a lone file that cannot be
    read raises ``ValueError``."""
    for f in files:
        try:
            yield from _frames(f)
        except ValueError as e:
            if skipped is None or len(files) == 1:
                raise
            skipped.append(str(e))


def _frames(f: Path) -> Iterator[tuple[Path, int, np.ndarray, float]]:
    if f.suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(f))
        if not cap.isOpened():
            raise ValueError(f"--source {f}: OpenCV cannot open the video")
        i, fps = 0, cap.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and fps == fps and fps > 0 else 25.0  # containers without a rate (or NaN)
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield f, i, frame, fps
                i += 1
        finally:
            cap.release()
        if i == 0:
            raise ValueError(f"--source {f}: no frames could be decoded")
    elif f.suffix.lower() in IMAGE_SUFFIXES:
        im = cv2.imread(str(f))
        if im is None:
            raise ValueError(f"--source {f}: not a readable image")
        yield f, -1, im, 0.0
    else:
        raise ValueError(f"--source {f}: unknown file type (images {', '.join(IMAGE_SUFFIXES)}; "
                         f"videos {', '.join(VIDEO_SUFFIXES)})")


def detect_source(detector: Detector, source: str | Path, save_dir: str | Path, save_img: bool = True,
                  save_txt: bool = False, save_json: bool = False, line_width: int | None = None,
                  log: Callable[[str], None] = print) -> dict:
    """Detect on every frame of ``source``; returns {"images", "detections", "save_dir", "records"}."""
    save, source = Path(save_dir), Path(source)
    files = source_files(source)
    if any(save.resolve() == f.parent.resolve() for f in files):
        raise ValueError(f"--save-dir {save}: that is the source folder, where the drawn images and videos would "
                         "overwrite the originals; pick another folder")
    names_of = output_names(files)
    if save.exists() and not save.is_dir():
        raise ValueError(f"--save-dir {save}: exists and is not a folder")
    save.mkdir(parents=True, exist_ok=True)
    if save_txt:
        (save / "labels").mkdir(exist_ok=True)
    names = detector.names
    records: list[dict] = []
    writers: dict[str, cv2.VideoWriter] = {}
    n_img = n_frames = n_det = 0
    skipped: list[str] = []
    try:
        for f, idx, im, fps in iter_frames(files, skipped):
            name = names_of[f]
            dets = detector([im])[0]
            n_img, n_frames, n_det = n_img + (idx < 0), n_frames + (idx >= 0), n_det + len(dets)
            stem = name if idx < 0 else f"{name}_{idx:06d}"
            if save_img:
                vis = draw(im, dets, names, line_width)
                if idx < 0:
                    cv2.imwrite(str(save / f"{name}.jpg"), vis)
                else:  # video in, video out (mp4v); frames are what the txt/json name
                    if name not in writers:  # at the source's frame rate, so the output plays at its speed
                        writers[name] = cv2.VideoWriter(str(save / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                        (im.shape[1], im.shape[0]))
                    writers[name].write(vis)
            if save_txt:
                atomic_write_text(save / "labels" / f"{stem}.txt", "".join(s + "\n" for s in yolo_lines(dets, im.shape[:2])))
            if save_json:
                records += [{"image": stem, "file": f.name, "frame": idx if idx >= 0 else None, "class": int(c),
                             "name": names[int(c)] if int(c) < len(names) else str(int(c)),
                             "conf": round(float(s), 5), "box_xyxy": [round(float(v), 2) for v in (x1, y1, x2, y2)]}
                            for x1, y1, x2, y2, s, c in dets.tolist()]
    finally:
        for wr in writers.values():
            wr.release()
    if save_json:
        atomic_write_text(save / "detections.json", json.dumps(records, indent=1) + "\n")
    for reason in skipped:
        # not str.removeprefix: the runtime runs on Python 3.8 (JetPack 5)
        log(f"skipped: {reason[len('--source '):] if reason.startswith('--source ') else reason}")
    seen = ", ".join(x for x in (f"{n_img} image(s)" if n_img else "", f"{n_frames} video frame(s)" if n_frames else "",
                                 f"{len(skipped)} unreadable file(s) skipped" if skipped else "") if x)
    log(f"detect: {seen}, {n_det} detection(s), saved to {save}")
    return {"images": n_img + n_frames, "frames": n_frames, "detections": n_det, "save_dir": save, "records": records,
            "skipped": skipped}
