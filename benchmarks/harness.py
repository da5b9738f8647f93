"""The bench's timers and memory peaks around the runtime's timing core
(``edgeyolo.runtime.latency``: the warm-up and timed loop, and its statistics): CUDA events, a
torch device synchronisation, and the process's peak resident memory.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from edgeyolo.runtime.latency import ClockTimer, IntervalTimer


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
