"""``--int8 auto``'s search: keep the fewest of the most sensitive layers in float for the INT8
model's measured drop to pass a gate."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..targets import TENSORRT
from .qdq import quantize_qdq


def kept_nodes(ranking: Sequence[Sequence[str]], k: int) -> list[str]:
    """The node names of the first ``k`` layers of ``ranking``."""
    return [x for g in ranking[:k] for x in g]


def fewest_layers(n: int, drop_of: Callable[[int], float], max_drop: float) -> tuple[int, float]:
    """The smallest k in 0..n with ``drop_of(k) <= max_drop`` (k = how many of the most sensitive
    layers stay in float): doubling (0, 1, 2, 4, ...) to the first k under the gate, then bisecting
    between it and the last miss, so about 2 log2(k) evaluations. The drop is measured, not
    guaranteed monotonic in k, so this is the first crossing the search meets. If even k = n misses,
    returns n. Returns (k, drop_of(k))."""
    seen: dict[int, float] = {}

    def at(k: int) -> float:
        if k not in seen:
            seen[k] = float(drop_of(k))
        return seen[k]

    miss, hit = -1, 0
    while at(hit) > max_drop:
        if hit >= n:
            return n, seen[n]
        miss, hit = hit, 1 if hit == 0 else min(2 * hit, n)
    while hit - miss > 1:
        mid = (miss + hit) // 2
        if at(mid) <= max_drop:
            hit = mid
        else:
            miss = mid
    return hit, seen[hit]


def auto_exclude(fp32_onnx: str | Path, out: str | Path, cache: str | Path, batches: Sequence[np.ndarray] | None,
                 ranking: Sequence[Sequence[str]], drop: Callable[[Path], float], max_drop: float, method: str,
                 runtime: str = TENSORRT) -> tuple[Path, list[str], float]:
    """Keep the fewest of the most sensitive layers in float for ``drop(qdq_path)`` <= ``max_drop``
    (see ``fewest_layers``). ``ranking``: layers most sensitive first, each the node names of a conv
    and its activation (``layer_groups``). Returns (model path, nodes kept in float, final drop)."""
    written: list[int] = []

    def write(k: int) -> Path:
        p = quantize_qdq(fp32_onnx, out, batches, method, cache=cache, exclude=kept_nodes(ranking, k), runtime=runtime)
        written.append(k)
        return p

    k, final = fewest_layers(len(ranking), lambda k: drop(write(k)), max_drop)
    p = Path(out) if written[-1] == k else write(k)  # the search may have ended on another k
    return p, kept_nodes(ranking, k), final
