"""The timing core (SPEC section 6), torch-free: warm-up, then timed iterations of a callable,
each bracketed by an interval timer, and the statistics of the intervals. ``edgeyolo bench``
(``benchmarks/harness.py`` adds CUDA timers and memory peaks) and ``edgeyolo-run latency`` on the
device itself, where only the runtime is installed, both time through it.

Pure by design: the clock, the synchronisation and the interval timer are arguments, so the
statistics are tested with a fake clock, and the same loop times CPU backends (``perf_counter``,
no sync) and CUDA (a synchronising clock, or CUDA events).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

if TYPE_CHECKING:
    from .detector import Detector

MODES = ("model-only", "end-to-end")


class IntervalTimer(Protocol):
    """Times one call: ``start()`` before it, ``stop(token)`` after it -> seconds."""

    def start(self) -> Any: ...

    def stop(self, token: Any) -> float: ...


class ClockTimer:
    """Host clock with a device sync on both sides, so queued asynchronous work from before the
    interval is not counted and the work inside it is (a no-op sync on the CPU)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] | None = None):
        self.clock, self.sync = clock, sync

    def start(self) -> float:
        if self.sync is not None:
            self.sync()
        return self.clock()

    def stop(self, token: float) -> float:
        if self.sync is not None:
            self.sync()
        return self.clock() - token


@dataclass
class TimingStats:
    mode: str  # model-only | end-to-end
    batch: int
    warmup: int
    iters: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    fps: float  # images per second = batch / mean
    wall_s: float  # the timed loop's duration on the host clock (energy = power x this)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list; q in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(seconds: list[float], batch: int, mode: str, warmup: int, wall_s: float) -> TimingStats:
    """Statistics of per-iteration durations (seconds) -> milliseconds; throughput = batch / mean."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    ms = sorted(s * 1000.0 for s in seconds)
    n = len(ms)
    mean = sum(ms) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / (n - 1)) if n > 1 else 0.0  # sample std
    r = lambda v: round(v, 4)  # noqa: E731 - 0.1 us resolution is below any clock we use
    return TimingStats(mode, batch, warmup, n, r(percentile(ms, 50)), r(percentile(ms, 90)), r(percentile(ms, 99)),
                       r(mean), r(std), r(ms[0]), r(ms[-1]), round(batch * 1000.0 / mean, 3) if mean > 0 else math.inf,
                       round(wall_s, 4))


def time_intervals(fn: Callable[[], Any], warmup: int, iters: int, timer: IntervalTimer | None = None,
                   clock: Callable[[], float] = time.perf_counter, on_start: Callable[[], None] | None = None,
                   on_stop: Callable[[], None] | None = None) -> tuple[list[float], float]:
    """Call ``fn`` ``warmup`` times untimed, then ``iters`` times timed by ``timer`` (default: the
    host ``clock`` without sync) -> (each call's seconds, the timed loop's wall seconds).
    ``on_start``/``on_stop`` bracket the timed loop only (power sampling, memory peaks). The loop
    body is two timer calls and a store into a preallocated list; what that costs on a machine is
    measured by ``benchmarks/harness_overhead.py``."""
    if warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {warmup}")
    if iters < 1:
        raise ValueError(f"--iters must be >= 1, got {iters}")
    timer = timer or ClockTimer(clock)
    for _ in range(warmup):
        fn()
    times = [0.0] * iters  # preallocated: no list growth inside the timed loop
    if on_start is not None:
        on_start()
    t0 = clock()
    for i in range(iters):
        tok = timer.start()
        fn()
        times[i] = timer.stop(tok)
    wall = clock() - t0
    if on_stop is not None:
        on_stop()
    return times, wall


def measure(fn: Callable[[], Any], warmup: int, iters: int, batch: int = 1, mode: str = "model-only",
            timer: IntervalTimer | None = None, clock: Callable[[], float] = time.perf_counter,
            on_start: Callable[[], None] | None = None, on_stop: Callable[[], None] | None = None) -> TimingStats:
    """``time_intervals`` summarised: the bench's statistics of one cell (``batch`` images a call)."""
    times, wall = time_intervals(fn, warmup, iters, timer, clock, on_start, on_stop)
    return summarize(times, batch, mode, warmup, wall)


@dataclass
class Timing:
    """The device-side latency line: percentiles and mean in milliseconds, unrounded."""

    p50: float
    p90: float
    p99: float
    mean: float
    iters: int

    @classmethod
    def of(cls, ms: list[float] | np.ndarray) -> Timing:
        a = np.asarray(ms, dtype=np.float64)
        ordered = sorted(a.tolist())
        return cls(*(percentile(ordered, q) for q in (50, 90, 99)), float(a.mean()), len(a))

    def line(self) -> str:
        return f"p50 {self.p50:.2f} ms, p90 {self.p90:.2f}, p99 {self.p99:.2f}, mean {self.mean:.2f} ({self.iters} runs)"


def time_calls(fn: Callable[[], object], iters: int, warmup: int) -> Timing:
    """``fn`` run ``warmup`` times untimed, then ``iters`` times, each on the host clock: percentiles in ms."""
    seconds, _ = time_intervals(fn, warmup, iters)
    return Timing.of([s * 1e3 for s in seconds])


def measure_detector(detector: Detector, image_bgr: np.ndarray, iters: int = 100,
                     warmup: int = 10) -> dict[str, Timing]:
    """{"model": inference only on a prepared input, "preprocess", "postprocess", "end2end"} on one image."""
    x, lbs = detector.preprocess([image_bgr])
    outputs = detector.infer(x)
    return {
        "preprocess": time_calls(lambda: detector.preprocess([image_bgr]), iters, warmup),
        "model": time_calls(lambda: detector.infer(x), iters, warmup),
        "postprocess": time_calls(lambda: detector.postprocess(outputs, lbs), iters, warmup),
        "end2end": time_calls(lambda: detector([image_bgr]), iters, warmup),
    }
