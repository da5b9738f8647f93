"""The timing core every latency in the tables comes from: warm-up, then timed iterations of a
callable, each bracketed by a device synchronisation, and the statistics of the intervals.

Pure by design: the clock, the synchronisation and the interval timer are arguments, so the
statistics are tested with a fake clock, and the same loop times CPU backends (``perf_counter``,
no sync) and CUDA (``torch.cuda.synchronize``, or CUDA events with :class:`CudaEventTimer`).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

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


class CudaEventTimer:
    """CUDA events recorded on the current stream around the call: GPU time without host jitter
    (the end event is synchronised, which is the device sync of the interval)."""

    def __init__(self) -> None:
        import torch  # noqa: PLC0415 - only on CUDA machines
        self.torch = torch

    def start(self) -> Any:
        self.torch.cuda.synchronize()
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def stop(self, token: Any) -> float:
        end = self.torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return token.elapsed_time(end) / 1000.0  # ms -> s


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


def measure(fn: Callable[[], Any], warmup: int, iters: int, batch: int = 1, mode: str = "model-only",
            timer: IntervalTimer | None = None, clock: Callable[[], float] = time.perf_counter,
            on_start: Callable[[], None] | None = None, on_stop: Callable[[], None] | None = None) -> TimingStats:
    """Call ``fn`` ``warmup`` times untimed, then ``iters`` times timed by ``timer`` (default: the
    host ``clock`` without sync). ``on_start``/``on_stop`` bracket the timed loop only (power
    sampling, memory peaks). The loop body is two timer calls and a store into a preallocated
    list; what that costs on a machine is measured by ``benchmarks/studies/harness_overhead.py``."""
    if warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {warmup}")
    if iters < 1:
        raise ValueError(f"--iters must be >= 1, got {iters}")
    timer = timer or ClockTimer(clock)
    for _ in range(warmup):
        fn()
    times: list[float] = [0.0] * iters  # preallocated: no list growth inside the timed loop
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
    return summarize(times, batch, mode, warmup, wall)


def torch_sync(device: str) -> Callable[[], None] | None:
    """The device synchronisation for ``device`` (None on the CPU: CPU backends return when done)."""
    if device.startswith("cuda"):
        import torch  # noqa: PLC0415
        return torch.cuda.synchronize
    return None


def timer_for(device: str, cuda_events: bool = True) -> IntervalTimer:
    """CUDA events on a GPU, the host clock with a sync elsewhere."""
    if device.startswith("cuda") and cuda_events:
        return CudaEventTimer()
    return ClockTimer(time.perf_counter, torch_sync(device))


# ---- memory -------------------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next reading is this cell's peak, not the
    process's lifetime peak. Linux only; False where it cannot (then peaks are lifetime peaks)."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb(status_text: str | None = None) -> float:
    """Peak resident set size in MiB: VmHWM from /proc/self/status, else ``getrusage``'s lifetime peak."""
    try:
        text = status_text if status_text is not None else _STATUS.read_text()
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)  # kB
    except OSError:
        pass
    import resource  # noqa: PLC0415 - POSIX only
    import sys  # noqa: PLC0415
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024.0), 1)  # bytes on macOS, kB on Linux
