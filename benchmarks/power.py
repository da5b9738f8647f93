"""Power during the timed loop: ``tegrastats`` read in a background thread, its samples kept only
between ``start()`` and ``stop()``, then mean power and energy per frame.

The line source is injectable (``lines`` = a callable returning an iterator of text lines), so
tests feed recorded tegrastats output; on a Jetson it is the ``tegrastats --interval N`` process.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .jetson import parse_tegrastats

LineSource = Callable[[], Iterator[str]]


@dataclass
class PowerResult:
    samples: int
    mean_w: float | None
    energy_j_per_frame: float | None
    source: str  # the rail read (VDD_IN, POM_5V_IN, sum of rails)

    def as_dict(self) -> dict:
        return {"power_samples": self.samples, "power_w": self.mean_w,
                "energy_mj_per_frame": None if self.energy_j_per_frame is None else round(self.energy_j_per_frame * 1000, 3),
                "power_source": self.source}


def energy_per_frame(mean_w: float, wall_s: float, frames: int) -> float:
    """Joules per frame: mean power over the timed loop times its duration, over the frames it ran."""
    if frames < 1 or wall_s < 0:
        raise ValueError(f"energy needs frames >= 1 and a duration >= 0, got {frames}, {wall_s}")
    return mean_w * wall_s / frames


def tegrastats_lines(interval_ms: int = 100) -> Iterator[str]:
    """Lines of a running ``tegrastats``; the process ends when the generator is closed."""
    exe = shutil.which("tegrastats")
    if exe is None:
        return
    proc = subprocess.Popen([exe, "--interval", str(interval_ms)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield from proc.stdout
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()


class PowerSampler:
    """Reads lines continuously from ``lines()`` in a daemon thread (tegrastats buffers, so it is
    started before warm-up); only samples that arrive between ``start()`` and ``stop()`` count."""

    def __init__(self, lines: LineSource, clock: Callable[[], float] = time.monotonic):
        self._lines, self._clock = lines, clock
        self._recording = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._power: list[int] = []
        self._source = "none"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PowerSampler:
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def _read(self) -> None:
        it = self._lines()
        try:
            for line in it:
                if self._done.is_set():
                    break
                if not self._recording.is_set():
                    continue
                sample = parse_tegrastats(line)
                if sample.power_mw is not None:
                    with self._lock:
                        self._power.append(sample.power_mw)
                        self._source = sample.power_source
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def start(self) -> None:
        with self._lock:
            self._power.clear()
        self._recording.set()

    def stop(self) -> None:
        self._recording.clear()

    def result(self, wall_s: float, frames: int) -> PowerResult:
        with self._lock:
            p = list(self._power)
        if not p:
            return PowerResult(0, None, None, self._source)
        mean_w = sum(p) / len(p) / 1000.0
        return PowerResult(len(p), round(mean_w, 3), energy_per_frame(mean_w, wall_s, frames), self._source)
