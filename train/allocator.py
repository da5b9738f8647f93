"""Keep freed memory in the process while training on a CPU (glibc's ``mallopt``).

Why: every training step allocates and frees the same activations and gradients, tens of MB each.
With glibc's defaults a block that large is an ``mmap`` given back to the kernel when freed (and the
heap's top is trimmed back too), so the next step's block is fresh pages that the kernel faults in
and zeroes one 4 KiB page at a time: about 110,000 minor page faults and 0.2-0.3 s of system time per
step of yolov4s-mbv3s at 320, batch 16, on a 2-core CPU, a fifth of the step
(``benchmarks/studies/train_step_compare.py``). Serving every block from the heap and never trimming
it makes the faults stop after the first steps; the cost is that the process keeps its peak memory
until it exits, which a training process reaches every step anyway.

Only glibc (Linux) has these knobs; elsewhere, or where the user already chose (``MALLOC_*`` or
``GLIBC_TUNABLES`` set, or another allocator preloaded), nothing is changed.
"""
from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # an int; larger than any heap top a training step frees


def _user_chose() -> str:
    if any(k.startswith("MALLOC_") for k in os.environ) or "GLIBC_TUNABLES" in os.environ:
        return "the environment sets glibc malloc tunables"
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return f"LD_PRELOAD={preload}"
    return ""


def keep_freed_memory() -> str:
    """Tell glibc to serve large blocks from the heap and never trim it, for this process and the
    data-loader workers it forks later. Returns what was done, for the log: ``""`` when nothing
    applied (not Linux/glibc, or the user's own choice stands, which is named)."""
    if not sys.platform.startswith("linux"):
        return ""
    chose = _user_chose()
    if chose:
        return f"allocator left as set: {chose}"
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - musl and others have no mallopt worth calling
    except (OSError, AttributeError):
        return ""
    if libc.mallopt(M_MMAP_MAX, 0) != 1 or libc.mallopt(M_TRIM_THRESHOLD, _NEVER_TRIM) != 1:
        return ""
    return "allocator: freed memory kept for reuse (glibc mallopt: no mmap, no trim)"
