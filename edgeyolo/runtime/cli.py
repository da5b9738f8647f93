"""``edgeyolo-run`` / ``python -m edgeyolo.runtime``: detect, stream and time a deployed artifact
with numpy, OpenCV and ONNX Runtime or TensorRT only (argparse, not click: nothing to install)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="an exported .onnx, .engine (with its .json sidecar) or .torchscript")
    p.add_argument("--device", default="cpu", help="cpu or cuda:0 (ONNX Runtime's CUDA provider; engines always use the GPU)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all cores)")
    p.add_argument("--imgsz", type=int, default=None, help="input size (default: the artifact's)")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--iou", type=float, default=0.45)
    p.add_argument("--max-det", type=int, default=300)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeyolo-run", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("detect", help="images, a folder or a video file -> drawn boxes, YOLO txt, JSON")
    _common(p)
    p.add_argument("--source", required=True)
    p.add_argument("--save-dir", default="runs/detect/exp")
    p.add_argument("--save-txt", action="store_true")
    p.add_argument("--save-json", action="store_true")
    p.add_argument("--nosave", action="store_true", help="do not save the drawn images")
    p = sub.add_parser("stream", help="a camera (--source 0) or video with an FPS overlay, shown and/or saved")
    _common(p)
    p.add_argument("--source", required=True, help="camera index, video file or rtsp:// URL")
    p.add_argument("--show", action="store_true", help="display in a window (q or Esc quits)")
    p.add_argument("--save", default=None, help="write the annotated stream to this .mp4")
    p.add_argument("--max-frames", type=int, default=None)
    p = sub.add_parser("latency", help="model-only and end-to-end latency percentiles on one image")
    _common(p)
    p.add_argument("--source", default=None, help="an image (default: a 1280x720 frame of noise)")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p = sub.add_parser("info", help="what the artifact declares: classes, size, batch, outputs, precision")
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cpu")
    return ap


def _detector(a: argparse.Namespace):
    from .detector import Detector  # noqa: PLC0415
    return Detector.load(a.model, a.device, a.threads, conf=a.conf, iou=a.iou, max_det=a.max_det, imgsz=a.imgsz)


def run(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.command == "info":
        from .backends import load_backend  # noqa: PLC0415
        print(load_backend(a.model, a.device).info.describe())
        return 0
    det = _detector(a)
    if a.command == "detect":
        from .detect import detect_source  # noqa: PLC0415
        detect_source(det, a.source, a.save_dir, not a.nosave, a.save_txt, a.save_json)
        return 0
    if a.command == "stream":
        from .stream import run_stream  # noqa: PLC0415
        stats = run_stream(det, a.source, a.show, a.save, a.max_frames)
        return 130 if stats.interrupted else 0
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from .latency import measure_detector  # noqa: PLC0415
    if a.source:
        img = cv2.imread(a.source)
        if img is None:
            raise ValueError(f"--source {a.source}: not a readable image")
    else:
        img = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    print(f"{Path(a.model).name}: {det.info.format} {det.info.precision}, {det.imgsz} px, image {img.shape[1]}x{img.shape[0]}")
    for what, t in measure_detector(det, img, a.iters, a.warmup).items():
        print(f"{what:>12}: {t.line()}")
    return 0


def main(argv: list[str] | None = None) -> None:
    """Bad input is one line on stderr and exit 1 (EDGEYOLO_DEBUG=1 for the traceback)."""
    try:
        sys.exit(run(argv))
    except (ValueError, OSError) as e:  # bad input, and a path the OS refuses (a file where a folder goes...)
        if os.environ.get("EDGEYOLO_DEBUG"):
            raise
        print(f"edgeyolo-run: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("Aborted.", file=sys.stderr)
        sys.exit(130)
