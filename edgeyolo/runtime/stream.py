"""The video / camera loop: read -> pre-process -> infer -> post-process -> draw with an FPS
overlay -> show and/or save, until the stream ends, ``max_frames``, ``q``/Esc in the window or
Ctrl-C. Whatever stops it, the capture, the writer (a playable file) and the window are released;
a Ctrl-C at any point after the call (even before the first frame) returns the stats marked
interrupted, and ``edgeyolo-run stream`` then exits 130.

Reading and pre-processing run in a second thread, overlapped with inference: OpenCV's decode and
resize and ONNX Runtime / TensorRT all release the GIL, so on a multi-core CPU or with a GPU the
frame after the current one is ready when inference returns. A live source (camera, URL) keeps only
the newest frame, so the display never lags behind reality; a file keeps every frame.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2

from .detector import Detector
from .draw import draw, overlay_text

_END = object()


@dataclass
class StreamStats:
    frames: int
    seconds: float
    interrupted: bool
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float
    saved: str | None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (f"{self.frames} frames in {self.seconds:.1f} s = {self.fps:.1f} FPS (per frame: pre-process "
                f"{self.preprocess_ms:.1f} ms, inference {self.infer_ms:.1f} ms, post-process {self.postprocess_ms:.1f} ms)"
                + (", interrupted" if self.interrupted else "") + (f"; saved {self.saved}" if self.saved else ""))


def parse_source(source: str | int) -> tuple[str | int, bool]:
    """A camera index ("0") or a file / URL -> (what cv2.VideoCapture takes, is it live)."""
    if isinstance(source, int) or str(source).isdigit():
        return int(source), True
    s = str(source)
    if s.lower().startswith(("rtsp://", "rtmp://", "http://", "https://")):
        return s, True
    if not Path(s).is_file():
        raise ValueError(f"--source {s}: no such file (a camera is a number: --source 0)")
    return s, False


def _put(q: "queue.Queue", item: Any, stop: threading.Event) -> None:
    """Block until ``item`` is queued or ``stop`` is set (never forever: the consumer may be gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _reader(cap: Any, detector: Detector, q: "queue.Queue", stop: threading.Event, live: bool) -> None:
    """Producer thread: frames -> (frame, x, letterbox, pre-process ms), _END at the end, or the exception."""
    try:
        while not stop.is_set():
            ok, frame = cap.read()
            if not ok:
                break
            t0 = time.perf_counter()
            x, lbs = detector.preprocess([frame])
            if live:  # keep only the newest frame
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
            _put(q, (frame, x, lbs, (time.perf_counter() - t0) * 1e3), stop)
        end: Any = _END
    except BaseException as e:  # handed to the consumer, which re-raises it
        end = e
    _put(q, end, stop)


def _check_gui() -> None:
    """--show needs an OpenCV with a GUI backend; the headless wheel (this package's default) has none."""
    try:
        cv2.namedWindow("edgeyolo")
    except cv2.error:
        raise ValueError("--show needs OpenCV with window support, and this one is headless: "
                         "`pip install opencv-python` (instead of opencv-python-headless), or use --save") from None


def _stop_reader(thread: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    if thread.ident is not None:  # started (a Ctrl-C can come between creating it and starting it)
        thread.join(timeout=5)


def _close_windows() -> None:
    try:
        cv2.destroyAllWindows()
    except cv2.error:  # a failure here must not hide the one that ended the loop
        pass


def run_stream(detector: Detector, source: str | int, show: bool = False, save: str | Path | None = None,
               max_frames: int | None = None, fps_out: float | None = None, log: Callable[[str], None] = print) -> StreamStats:
    """Run ``detector`` on a camera or video; returns the frame count, timings and whether Ctrl-C stopped it."""
    src, live = parse_source(source)
    frames, interrupted, writer = 0, False, None
    t_pre = t_inf = t_post = 0.0
    fps_ema = None
    t_start = t_last = time.perf_counter()
    # Each resource is registered for release as soon as it exists, so a Ctrl-C at any point (while
    # the source opens, before the first frame, mid-stream) releases it and still returns the stats;
    # ExitStack runs every callback even when one is cut short by a second Ctrl-C, and it closes the
    # writer first (last in, first out), so the saved file is playable.
    with contextlib.ExitStack() as cleanup:
        try:
            cap = cv2.VideoCapture(src)
            cleanup.callback(cap.release)
            if not cap.isOpened():
                raise ValueError(f"--source {source}: OpenCV cannot open it")
            if fps_out is None:
                fps_out = cap.get(cv2.CAP_PROP_FPS)
                fps_out = fps_out if fps_out and fps_out == fps_out and fps_out > 0 else 25.0  # cameras report 0 or NaN
            if show:
                _check_gui()
                cleanup.callback(_close_windows)
            q: queue.Queue = queue.Queue(maxsize=1 if live else 2)
            stop = threading.Event()
            thread = threading.Thread(target=_reader, args=(cap, detector, q, stop, live), name="edgeyolo-reader",
                                      daemon=True)
            cleanup.callback(_stop_reader, thread, stop)
            thread.start()
            while max_frames is None or frames < max_frames:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                frame, x, lbs, pre_ms = item
                t0 = time.perf_counter()
                outputs = detector.infer(x)
                t1 = time.perf_counter()
                dets = detector.postprocess(outputs, lbs)[0]
                t2 = time.perf_counter()
                t_pre, t_inf, t_post = t_pre + pre_ms, t_inf + (t1 - t0) * 1e3, t_post + (t2 - t1) * 1e3
                now = time.perf_counter()
                inst = 1.0 / max(now - t_last, 1e-9)
                fps_ema = inst if fps_ema is None else 0.9 * fps_ema + 0.1 * inst
                t_last = now
                vis = draw(frame, dets, detector.names, inplace=True)
                overlay_text(vis, f"{fps_ema:.1f} FPS | inference {(t1 - t0) * 1e3:.1f} ms | {len(dets)} objects")
                if save is not None:
                    if writer is None:
                        Path(save).parent.mkdir(parents=True, exist_ok=True)
                        writer = cv2.VideoWriter(str(save), cv2.VideoWriter_fourcc(*"mp4v"), float(fps_out),
                                                 (vis.shape[1], vis.shape[0]))
                        cleanup.callback(writer.release)
                        if not writer.isOpened():
                            raise ValueError(f"--save {save}: OpenCV cannot write this video (mp4v): use a .mp4 "
                                             "or .avi file name")
                    writer.write(vis)
                frames += 1
                if show:
                    cv2.imshow("edgeyolo", vis)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
        except KeyboardInterrupt:
            interrupted = True
    n = max(frames, 1)
    stats = StreamStats(frames, time.perf_counter() - t_start, interrupted, t_pre / n, t_inf / n, t_post / n,
                        str(save) if save is not None and writer is not None else None)
    log(f"stream: {stats.line()}")
    return stats
