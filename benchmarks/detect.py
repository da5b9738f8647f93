"""``edgeyolo detect``: run a checkpoint or an exported artifact on images, a folder or a video;
draw the boxes and save the pictures, optionally the detections as YOLO txt or JSON."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


@dataclass
class DetectOptions:
    weights: Path
    source: Path
    conf: float = 0.25
    iou: float = 0.45
    imgsz: int | None = None  # default: the artifact's size, 640 for checkpoints
    device: str = "cpu"
    save_dir: Path = Path("runs/detect/exp")
    save_txt: bool = False
    save_json: bool = False
    save_img: bool = True
    max_det: int = 300
    line_width: int | None = None


def iter_frames(source: Path) -> Iterator[tuple[str, int, np.ndarray]]:
    """(name, frame index, BGR image) for an image, every image of a folder, or every frame of a video."""
    import cv2  # noqa: PLC0415
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"--source {source}: no images ({', '.join(IMAGE_SUFFIXES)})")
    elif source.is_file():
        files = [source]
    else:
        raise ValueError(f"--source {source}: not found")
    for f in files:
        if f.suffix.lower() in VIDEO_SUFFIXES:
            cap = cv2.VideoCapture(str(f))
            if not cap.isOpened():
                raise ValueError(f"--source {f}: OpenCV cannot open the video")
            i = 0
            try:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    yield f.stem, i, frame
                    i += 1
            finally:
                cap.release()
            if i == 0:
                raise ValueError(f"--source {f}: no frames could be decoded")
        elif f.suffix.lower() in IMAGE_SUFFIXES:
            im = cv2.imread(str(f))
            if im is None:
                raise ValueError(f"--source {f}: not a readable image")
            yield f.stem, -1, im
        else:
            raise ValueError(f"--source {f}: unknown file type (images {', '.join(IMAGE_SUFFIXES)}; "
                             f"videos {', '.join(VIDEO_SUFFIXES)})")


def colour(cls: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class."""
    palette = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
               (23, 204, 146), (134, 219, 61), (187, 212, 52), (168, 153, 44), (255, 194, 0), (147, 69, 52))
    return palette[int(cls) % len(palette)]


def draw(img: np.ndarray, dets: np.ndarray, names: list[str], lw: int | None = None) -> np.ndarray:
    """Boxes and ``name conf`` labels on a copy of ``img``."""
    import cv2  # noqa: PLC0415
    out = img.copy()
    lw = lw or max(round(sum(img.shape[:2]) / 2 * 0.003), 1)
    for x1, y1, x2, y2, conf, cls in dets.tolist():
        c = colour(int(cls))
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, c, lw, cv2.LINE_AA)
        label = f"{names[int(cls)] if int(cls) < len(names) else int(cls)} {conf:.2f}"
        fs = max(lw / 3, 0.4)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, max(lw - 1, 1))
        top = p1[1] - th - 3 >= 0
        q = (p1[0] + tw, p1[1] - th - 3 if top else p1[1] + th + 3)
        cv2.rectangle(out, p1, q, c, -1, cv2.LINE_AA)
        cv2.putText(out, label, (p1[0], p1[1] - 2 if top else p1[1] + th + 2), cv2.FONT_HERSHEY_SIMPLEX, fs,
                    (255, 255, 255), max(lw - 1, 1), cv2.LINE_AA)
    return out


def yolo_lines(dets: np.ndarray, shape: tuple[int, int]) -> list[str]:
    """YOLO txt: ``cls cx cy w h conf`` normalised by the image size."""
    h, w = shape
    lines = []
    for x1, y1, x2, y2, conf, cls in dets.tolist():
        lines.append(f"{int(cls)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                     f"{(y2 - y1) / h:.6f} {conf:.5f}")
    return lines


def run_detect(o: DetectOptions, log=print) -> dict:
    """Detect on every frame of ``o.source``; returns {"images", "detections", "save_dir"}."""
    import cv2  # noqa: PLC0415

    from .matrix import ARTIFACT_SUFFIXES  # noqa: PLC0415
    from .predict import Predictor  # noqa: PLC0415
    from .runners import load_artifact_runner, load_checkpoint_runner  # noqa: PLC0415
    if not 0 <= o.conf <= 1 or not 0 <= o.iou <= 1:
        raise ValueError(f"--conf and --iou must be in [0, 1], got {o.conf}, {o.iou}")
    w = Path(o.weights)
    if not w.is_file():
        raise ValueError(f"--weights {w}: file not found")
    if w.name.endswith(ARTIFACT_SUFFIXES):
        loaded = load_artifact_runner(w, o.device)
    elif w.suffix == ".pt":
        loaded = load_checkpoint_runner(w, o.device)
    else:
        raise ValueError(f"--weights {w}: expected a .pt checkpoint or an artifact ({', '.join(ARTIFACT_SUFFIXES)})")
    imgsz = o.imgsz or loaded.imgsz or 640
    if loaded.imgsz and imgsz != loaded.imgsz:
        raise ValueError(f"--imgsz {imgsz}: {w.name} was exported at {loaded.imgsz} (a static input size)")
    if imgsz % 32:
        raise ValueError(f"--imgsz must be a multiple of 32, got {imgsz}")
    if loaded.batch and loaded.batch != 1:
        raise ValueError(f"--weights {w.name}: exported for batch {loaded.batch}; detect runs batch 1 (export with --batch 1)")
    pred = Predictor(loaded.runner, imgsz, o.conf, o.iou, o.max_det)
    save = Path(o.save_dir)
    save.mkdir(parents=True, exist_ok=True)
    if o.save_txt:
        (save / "labels").mkdir(exist_ok=True)
    records: list[dict] = []
    writers: dict[str, object] = {}
    n_img = n_det = 0
    try:
        for name, idx, im in iter_frames(Path(o.source)):
            dets = pred([im])[0]
            n_img, n_det = n_img + 1, n_det + len(dets)
            stem = name if idx < 0 else f"{name}_{idx:06d}"
            if o.save_img:
                vis = draw(im, dets, loaded.names, o.line_width)
                if idx < 0:
                    cv2.imwrite(str(save / f"{name}.jpg"), vis)
                else:  # video in, video out (mp4v; frames are also what the txt/json name)
                    if name not in writers:
                        writers[name] = cv2.VideoWriter(str(save / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                                        (im.shape[1], im.shape[0]))
                    writers[name].write(vis)  # type: ignore[attr-defined]
            if o.save_txt:
                (save / "labels" / f"{stem}.txt").write_text("".join(s + "\n" for s in yolo_lines(dets, im.shape[:2])))
            if o.save_json:
                records += [{"image": stem, "frame": idx if idx >= 0 else None, "class": int(c),
                             "name": loaded.names[int(c)] if int(c) < len(loaded.names) else str(int(c)),
                             "conf": round(float(s), 5), "box_xyxy": [round(float(v), 2) for v in (x1, y1, x2, y2)]}
                            for x1, y1, x2, y2, s, c in dets.tolist()]
    finally:
        for wr in writers.values():
            wr.release()  # type: ignore[attr-defined]
    if o.save_json:
        (save / "detections.json").write_text(json.dumps(records, indent=1) + "\n")
    log(f"detect: {n_img} image(s), {n_det} detection(s), saved to {save}")
    return {"images": n_img, "detections": n_det, "save_dir": save, "records": records}
