"""The video/camera loop: every frame of a file processed and saved with the FPS overlay, the
reader thread overlapped and stopped, Ctrl-C (in-process and a real SIGINT) leaves a playable file."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeyolo.runtime.detector import Detector
from edgeyolo.runtime.stream import parse_source, run_stream
from runtime_helpers import export_tiny


@pytest.fixture(scope="module")
def onnx_model(overfit_run, tmp_path_factory) -> Path:
    return export_tiny(overfit_run / "weights" / "best.pt", tmp_path_factory.mktemp("st"))


def write_video(path: Path, n: int, size=(128, 96)) -> Path:
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    for i in range(n):
        im = np.full((h, w, 3), 90, np.uint8)
        cv2.rectangle(im, (10 + 2 * i, 20), (60 + 2 * i, 60), (40, 40, 220), -1)  # a moving box
        vw.write(im)
    vw.release()
    return path


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_stream_saves_every_frame_with_overlay(onnx_model, tmp_path):
    src = write_video(tmp_path / "in.mp4", 12)
    det = Detector.load(onnx_model)
    before = threading.active_count()
    stats = run_stream(det, str(src), save=tmp_path / "out.mp4", log=lambda s: None)
    assert stats.frames == 12 and not stats.interrupted and stats.infer_ms > 0 and stats.fps > 0
    assert count_frames(tmp_path / "out.mp4") == 12
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    frame = cap.read()[1]
    cap.release()
    assert frame[2:10, 2:30].mean() < 60  # the dark FPS band top-left (the input is grey 90 there)
    assert threading.active_count() == before  # the reader thread is gone
    assert run_stream(det, str(src), max_frames=5, log=lambda s: None).frames == 5


def test_ctrl_c_stops_cleanly(onnx_model, tmp_path):
    src = write_video(tmp_path / "in.mp4", 30)
    det = Detector.load(onnx_model)
    calls = {"n": 0}
    infer = det.infer

    def interrupting(x):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return infer(x)
    det.infer = interrupting
    before = threading.active_count()
    stats = run_stream(det, str(src), save=tmp_path / "out.mp4", log=lambda s: None)
    assert stats.interrupted and stats.frames == 5
    assert count_frames(tmp_path / "out.mp4") == 5  # the writer was released: a playable file
    assert threading.active_count() == before


def test_sigint_to_the_cli(onnx_model, tmp_path):
    src = write_video(tmp_path / "in.mp4", 2000, size=(64, 48))
    out = tmp_path / "out.mp4"
    p = subprocess.Popen([sys.executable, "-m", "edgeyolo.runtime", "stream", "--model", str(onnx_model), "--source",
                          str(src), "--save", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not out.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr[-2000:]
    assert "interrupted" in stdout and "FPS" in stdout
    n = count_frames(out)
    assert 0 < n < 2000


def test_sources():
    assert parse_source("0") == (0, True) and parse_source(1) == (1, True)
    assert parse_source("rtsp://cam/stream") == ("rtsp://cam/stream", True)
    with pytest.raises(ValueError, match="no such file .*--source 0"):
        parse_source("missing.mp4")


def test_stream_refuses_what_it_cannot_write_or_show(onnx_model, tmp_path, monkeypatch, capsys):
    """A --save OpenCV cannot write is an error, not a 'saved' line with no file; --show on a
    headless OpenCV is one line, before any frame; CLI path errors are one line too."""
    src = write_video(tmp_path / "in.mp4", 3)
    det = Detector.load(onnx_model)
    with pytest.raises(ValueError, match="OpenCV cannot write this video"):
        run_stream(det, str(src), save=tmp_path / "out", log=lambda s: None)  # no container OpenCV knows
    assert not (tmp_path / "out").exists()

    def no_gui(name):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ 2.x")
    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    with pytest.raises(ValueError, match="--show needs OpenCV with window support"):
        run_stream(det, str(src), show=True, log=lambda s: None)
    from edgeyolo.runtime.cli import main
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["detect", "--model", str(onnx_model), "--source", str(src), "--save-dir", str(tmp_path / "afile" / "d")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 1 and err.startswith("edgeyolo-run: error:") and len(err.splitlines()) == 1
