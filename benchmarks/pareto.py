"""The accuracy/latency Pareto front and ``pareto.png`` (mAP@0.5:0.95 against latency per cell).

A cell is on the front when no other cell is at least as fast and at least as accurate while being
strictly better in one of the two: those are the only cells worth shipping on this device.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

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
    """Scatter of ``y_key`` (mAP, percent) against ``x_key`` (latency, ms), the front drawn as a step
    line (see :func:`_draw_scored` for colours, markers and labels). Cells without mAP (random
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
    if ax is not None:
        _draw_scored(ax, scored, x_key, y_key)
    if strip is not None:
        # a dot plot: one row per model, one marker per format/precision (labels per point would
        # overlap: random-weights matrices are wide)
        models = sorted({str(c.get("model")) for c in unscored},
                        key=lambda m: min(float(c[x_key]) for c in unscored if str(c.get("model")) == m))
        kinds = sorted({(str(c.get("format")), str(c.get("precision"))) for c in unscored})
        for k, (fmt, prec) in enumerate(kinds):
            sel = [c for c in unscored if (str(c.get("format")), str(c.get("precision"))) == (fmt, prec)]
            strip.scatter([float(c[x_key]) for c in sel], [models.index(str(c.get("model"))) for c in sel],
                          marker=MARKERS[k % len(MARKERS)], s=30, zorder=3, label=f"{fmt} {prec}")
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


MARKERS = "o^sDvP*Xh<>"
LABEL_ALL_UP_TO = 8  # more labelled points than this overlap; then only the front is labelled


def _label(c: dict) -> str:
    return f"{c.get('model')} {c.get('format')} {c.get('precision')} {c.get('imgsz')}"


def _draw_scored(ax: Any, scored: Sequence[dict], x_key: str, y_key: str) -> list[str]:
    """The accuracy panel: one colour per model (fastest first), one marker per format/precision,
    the front as a red step line with its points circled. Every point is labelled up to
    ``LABEL_ALL_UP_TO`` cells; beyond that (a study of several trained backbones) the front points
    are numbered and listed in a box, and the legend names the rest. Returns the labels drawn, in latency order."""
    from matplotlib.lines import Line2D  # noqa: PLC0415

    pts = [(float(c[x_key]), float(c[y_key])) for c in scored]
    front = pareto_front(pts)
    fastest: dict[str, float] = {}
    for c, (x, _) in zip(scored, pts):
        fastest[str(c.get("model"))] = min(x, fastest.get(str(c.get("model")), x))
    models = sorted(fastest, key=fastest.__getitem__)
    kinds = list(dict.fromkeys((str(c.get("format")), str(c.get("precision"))) for c in scored))
    color = {m: f"C{i % 10}" for i, m in enumerate(models)}
    marker = {k: MARKERS[i % len(MARKERS)] for i, k in enumerate(kinds)}
    for c, (x, y) in zip(scored, pts):
        ax.scatter([x], [y], color=color[str(c.get("model"))], s=36, zorder=3,
                   marker=marker[(str(c.get("format")), str(c.get("precision")))])
    fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
    ax.step(fx, fy, where="post", color="tab:red", lw=1.5, zorder=2)
    ax.scatter(fx, fy, facecolors="none", edgecolors="tab:red", s=110, zorder=4)
    numbered = len(scored) > LABEL_ALL_UP_TO
    order = front if numbered else sorted(range(len(scored)), key=lambda i: pts[i])  # latency order
    drawn = [_label(scored[i]) for i in order]
    if not numbered:
        # labels staggered vertically (in order of latency) so cells of equal mAP stay readable
        for j, i in enumerate(order):
            ax.annotate(drawn[j], pts[i], fontsize=7, rotation=20, xytext=(4, 3 + 10 * (j % 3)), textcoords="offset points")
    else:
        # a study: front points numbered, named in a box in the upper left, the corner no cell can
        # reach (faster and more accurate than the front); long labels of near points would overlap
        for j, i in enumerate(front):
            ax.annotate(str(j + 1), pts[i], fontsize=8, fontweight="bold", xytext=(-10, 6), textcoords="offset points")
        rows = [f"{j + 1}  {drawn[j]}: {pts[i][0]:.3g} ms, {pts[i][1]:.2f}" for j, i in enumerate(front)]
        ax.text(0.01, 0.98, "Pareto front\n" + "\n".join(rows), transform=ax.transAxes, va="top", ha="left",
                fontsize=7, family="monospace", bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
    pad = max(0.5, 0.15 * (hi - lo))
    ax.set_ylim(lo - pad, hi + 2.5 * pad)  # room above for the labels
    ax.set_ylabel("mAP@0.5:0.95 (%)")
    handles = [Line2D([], [], color="tab:red", lw=1.5, label="Pareto front" + (" (numbered)" if numbered else ""))]
    handles += [Line2D([], [], ls="", marker="o", color=color[m], label=m) for m in models if len(models) > 1]
    handles += [Line2D([], [], ls="", marker=marker[k], color="0.4", label=" ".join(k)) for k in kinds]
    if len(models) > 1:  # a colour per model: a long legend, kept outside so it hides no point
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0)
    else:
        ax.legend(handles=handles, loc="lower right", fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return drawn
