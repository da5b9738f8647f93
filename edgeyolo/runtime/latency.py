"""A torch-free latency loop for a deployed artifact: model-only and end-to-end (pre-process +
inference + post-process) percentiles on one image. ``edgeyolo bench`` is the full matrix; this is
what to run on the device itself, where only the runtime is installed."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .detector import Detector


@dataclass
class Timing:
    p50: float
    p90: float
    p99: float
    mean: float
    iters: int

    @classmethod
    def of(cls, ms: list[float] | np.ndarray) -> "Timing":
        a = np.asarray(ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(a, (50, 90, 99))
        return cls(float(p50), float(p90), float(p99), float(a.mean()), len(a))

    def line(self) -> str:
        return f"p50 {self.p50:.2f} ms, p90 {self.p90:.2f}, p99 {self.p99:.2f}, mean {self.mean:.2f} ({self.iters} runs)"


def time_calls(fn: Callable[[], object], iters: int, warmup: int) -> Timing:
    """``fn`` run ``warmup`` times untimed, then ``iters`` times, each with perf_counter (ms)."""
    if iters < 1 or warmup < 0:
        raise ValueError(f"--iters must be >= 1 and --warmup >= 0, got {iters}, {warmup}")
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return Timing.of(ms)


def measure(detector: Detector, image_bgr: np.ndarray, iters: int = 100, warmup: int = 10) -> dict[str, Timing]:
    """{"model": inference only on a prepared input, "preprocess", "postprocess", "end2end"}."""
    x, lbs = detector.preprocess([image_bgr])
    outputs = detector.infer(x)
    return {
        "preprocess": time_calls(lambda: detector.preprocess([image_bgr]), iters, warmup),
        "model": time_calls(lambda: detector.infer(x), iters, warmup),
        "postprocess": time_calls(lambda: detector.postprocess(outputs, lbs), iters, warmup),
        "end2end": time_calls(lambda: detector([image_bgr]), iters, warmup),
    }
