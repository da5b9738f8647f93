"""The video/camera loop: every frame of a file processed and saved with the FPS overlay, the
reader thread overlapped and stopped, Ctrl-C at any point (in-process and a real SIGINT)
leaves a playable file or none, and the CLI exits 130."""
from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
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


# The CLI in a child process whose detector holds (in an interruptible sleep) at one point until the
# SIGINT comes: at the model load, or at frame N's inference. The real video runs at ~1,500 FPS, so
# "wait, then signal" races the end of the file on a loaded machine; holding makes the point exact.
CHILD = """
import sys, time
from edgeyolo.runtime import cli, detector

def hold(where):
    print(f"holding {where} until SIGINT", flush=True)
    while True:
        time.sleep(1)

at = sys.argv[1]
if at == "load":
    detector.Detector.load = staticmethod(lambda *a, **k: hold("the model load"))
else:
    infer, calls = detector.Detector.infer, [0]

    def held_infer(self, x):
        calls[0] += 1
        if calls[0] == int(at):
            hold(f"frame {calls[0]}")
        return infer(self, x)
    detector.Detector.infer = held_infer
cli.main(sys.argv[2:])
"""


def sigint_while_held(onnx_model: Path, src: Path, out: Path, at: str) -> tuple[int, str, str]:
    """Run ``edgeyolo-run stream`` held at ``at``, send SIGINT once it says it is holding there;
    returns (exit code, stdout, stderr)."""
    err = out.with_name("stderr.txt")
    with open(err, "w") as ef:
        p = subprocess.Popen([sys.executable, "-c", CHILD, at, "stream", "--model", str(onnx_model), "--source",
                              str(src), "--save", str(out)], stdout=subprocess.PIPE, stderr=ef, text=True,
                             # a shell that starts jobs in the background (nohup, `&` in scripts) ignores
                             # SIGINT, and a child would inherit that: give it the default a terminal gives
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in p.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while not seen or not seen[-1].startswith("holding"):
        line = lines.get(timeout=300)  # queue.Empty instead of a hang if the child never gets there
        if line is None:
            p.wait(timeout=60)
            pytest.fail(f"the stream ended (exit {p.returncode}) before holding at {at}:\n{err.read_text()[-2000:]}")
        seen.append(line)
    p.send_signal(signal.SIGINT)
    code = p.wait(timeout=60)
    while (line := lines.get(timeout=60)) is not None:
        seen.append(line)
    return code, "".join(seen), err.read_text()


def test_sigint_to_the_cli(onnx_model, tmp_path):
    """Ctrl-C mid-stream: exit 130, the stats line says interrupted, and the saved file plays back
    exactly the frames the stream counted."""
    src, out = write_video(tmp_path / "in.mp4", 10, size=(64, 48)), tmp_path / "out.mp4"
    code, stdout, stderr = sigint_while_held(onnx_model, src, out, "3")
    assert code == 130, stderr[-2000:]
    assert "stream: 2 frames in" in stdout and f"interrupted; saved {out}" in stdout
    assert count_frames(out) == 2


@pytest.mark.parametrize("at", ["load", "1"])
def test_sigint_before_the_first_frame(onnx_model, tmp_path, at):
    """Ctrl-C while the model loads or before any frame is out: still exit 130, and no file (there
    is nothing to save), rather than an unplayable one."""
    src, out = write_video(tmp_path / "in.mp4", 10, size=(64, 48)), tmp_path / "out.mp4"
    code, stdout, stderr = sigint_while_held(onnx_model, src, out, at)
    assert code == 130, stderr[-2000:]
    if at == "load":
        assert "stream:" not in stdout and stderr.strip().endswith("Aborted.")
    else:
        assert "stream: 0 frames in" in stdout and "interrupted" in stdout and "saved" not in stdout
    assert not out.exists()


def test_ctrl_c_while_the_source_opens(onnx_model, tmp_path, monkeypatch):
    """A Ctrl-C before the loop starts (here while the capture reports its frame rate) releases the
    capture, starts no reader thread, returns interrupted stats, and the CLI exits 130."""
    src = write_video(tmp_path / "in.mp4", 10, size=(64, 48))
    released: list[bool] = []

    class InterruptedCapture:
        def __init__(self, source):
            self.cap = real(source)

        def isOpened(self):
            return self.cap.isOpened()

        def get(self, prop):
            raise KeyboardInterrupt

        def release(self):
            released.append(True)
            self.cap.release()
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", InterruptedCapture)
    before = threading.active_count()
    try:
        stats = run_stream(Detector.load(onnx_model), str(src), save=tmp_path / "out.mp4", log=lambda s: None)
    except KeyboardInterrupt:  # escaping, it would end the whole pytest session rather than fail this test
        pytest.fail("a Ctrl-C while the source opens escaped run_stream")
    assert stats.interrupted and stats.frames == 0 and stats.saved is None and released == [True]
    assert threading.active_count() == before and not (tmp_path / "out.mp4").exists()
    from edgeyolo.runtime.cli import run
    assert run(["stream", "--model", str(onnx_model), "--source", str(src), "--save", str(tmp_path / "o.mp4")]) == 130


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
