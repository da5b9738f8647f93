"""The accuracy/latency Pareto front and ``pareto.png`` (mAP@0.5:0.95 against latency per cell).

A cell is on the front when no other cell is at least as fast and at least as accurate while being
strictly better in one of the two: those are the only cells worth shipping on this device.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from edgeyolo.atomic import atomic_path


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points of (latency, accuracy) pairs (lower latency and higher
    accuracy are better), sorted by latency. Exact duplicates are all kept; NaN points never are."""
    valid = [i for i, (lat, acc) in enumerate(points) if not (math.isnan(lat) or math.isnan(acc))]
    # by latency ascending, ties by accuracy descending: a point is on the front iff its accuracy
    # beats every faster point's (or equals the best so far at the same latency: a duplicate)
    order = sorted(valid, key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        lat, acc = points[i]
        if acc > best:
            front.append(i)
            best = acc
        elif front and acc == best and points[front[-1]] == (lat, acc):
            front.append(i)  # identical to the last front point: equally good
    return front


def plot_pareto(cells: Sequence[dict], path: str | Path, title: str = "", x_key: str = "p50_ms",
                y_key: str = "map50_95") -> Path | None:
    """Scatter of ``y_key`` (mAP, percent) against ``x_key`` (latency, ms), each point labelled
    ``model format precision imgsz``, the front drawn as a step line. Cells without mAP (random
    weights) go on a separate latency-only strip below, sharing the latency axis, so they are never
    read as mAP 0. Returns None when no cell has a latency."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - Agg: no display, no pyplot state
    from matplotlib.figure import Figure  # noqa: PLC0415

    timed = [c for c in cells if isinstance(c.get(x_key), (int, float))]
    if not timed:
        return None
    scored = [c for c in timed if isinstance(c.get(y_key), (int, float))]
    unscored = [c for c in timed if not isinstance(c.get(y_key), (int, float))]
    n_models = len({str(c.get("model")) for c in unscored})
    fig = Figure(figsize=(10, 6 + (0.25 * n_models + 1 if scored and unscored else 0)), dpi=120)
    FigureCanvasAgg(fig)
    if scored and unscored:
        ax, strip = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 0.5 + 0.3 * n_models]})
    elif scored:
        ax, strip = fig.add_subplot(1, 1, 1), None
    else:
        ax, strip = None, fig.add_subplot(1, 1, 1)
    lab = lambda c: f"{c.get('model')} {c.get('format')} {c.get('precision')} {c.get('imgsz')}"  # noqa: E731
    if ax is not None:
        pts = [(float(c[x_key]), float(c[y_key])) for c in scored]
        front = pareto_front(pts)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], c="tab:blue", s=28, zorder=3, label="cell")
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.step(fx, fy, where="post", color="tab:red", lw=1.5, zorder=2, label="Pareto front")
        ax.scatter(fx, fy, facecolors="none", edgecolors="tab:red", s=90, zorder=4)
        # labels staggered vertically (in order of latency) so cells of equal mAP stay readable
        for i, (c, (x, y)) in enumerate(sorted(zip(scored, pts), key=lambda t: t[1])):
            ax.annotate(lab(c), (x, y), fontsize=7, rotation=20, xytext=(4, 3 + 10 * (i % 3)), textcoords="offset points")
        lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
        pad = max(0.5, 0.15 * (hi - lo))
        ax.set_ylim(lo - pad, hi + 2.5 * pad)  # room above for the labels
        ax.set_ylabel("mAP@0.5:0.95 (%)")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    if strip is not None:
        # a dot plot: one row per model, one marker per format/precision (labels per point would
        # overlap: random-weights matrices are wide)
        models = sorted({str(c.get("model")) for c in unscored},
                        key=lambda m: min(float(c[x_key]) for c in unscored if str(c.get("model")) == m))
        kinds = sorted({(str(c.get("format")), str(c.get("precision"))) for c in unscored})
        markers = "o^sDvP*Xh<>"
        for k, (fmt, prec) in enumerate(kinds):
            sel = [c for c in unscored if (str(c.get("format")), str(c.get("precision"))) == (fmt, prec)]
            strip.scatter([float(c[x_key]) for c in sel], [models.index(str(c.get("model"))) for c in sel],
                          marker=markers[k % len(markers)], s=30, zorder=3, label=f"{fmt} {prec}")
        strip.set_yticks(range(len(models)))
        strip.set_yticklabels(models, fontsize=7)
        strip.set_ylim(-0.7, len(models) - 0.3)
        strip.invert_yaxis()
        strip.set_title("no mAP (random weights): latency only", fontsize=8)
        strip.legend(loc="best", fontsize=7, ncol=min(len(kinds), 4))
        strip.grid(True, which="both", alpha=0.3)
    bottom = strip if strip is not None else ax
    bottom.set_xscale("log")
    bottom.set_xlabel(f"latency {x_key.replace('_ms', '')} (ms, log scale)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return Path(path)
