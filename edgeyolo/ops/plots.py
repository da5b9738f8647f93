"""Training and validation figures (PNG): PR / F1 curves, confusion matrix, results.png, labels.

matplotlib is imported inside each function (importing this module costs nothing), and figures
are drawn on ``matplotlib.figure.Figure`` with the Agg canvas rather than through pyplot: no global
backend switch, no figure registry to leak, safe in dataloader workers and headless machines.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from edgeyolo.atomic import atomic_path
from edgeyolo.runs import RESULTS_COLUMNS, read_results_columns  # noqa: F401  (the columns plot_results reads)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .confusion import ConfusionMatrix
    from .metrics import DetectionMetrics

# results.png panels, YOLOv5's layout: training losses and P, R on top; validation losses and mAPs below.
_RESULTS_PANELS = ("train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision", "metrics/recall",
                   "val/box_loss", "val/obj_loss", "val/cls_loss", "metrics/mAP50", "metrics/mAP50-95")


def _figure(w: float, h: float, nrows: int = 1, ncols: int = 1) -> tuple["Figure", np.ndarray]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), tight_layout=True)
    FigureCanvasAgg(fig)
    return fig, np.atleast_1d(fig.subplots(nrows, ncols)).ravel()


def _save(fig: "Figure", path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150)
    return Path(path)


def _names(names: Sequence[str] | None, nc: int) -> list[str]:
    return list(names) if names is not None else [str(i) for i in range(nc)]


def plot_pr_curve(metrics: "DetectionMetrics", path: str | Path, names: Sequence[str] | None = None) -> Path:
    """COCO's interpolated precision at IoU 0.5 against recall, per class (labelled when < 21
    classes) and the mean over classes with GT."""
    from .metrics import RECALL_THRESHOLDS

    names = _names(names, len(metrics.nt))
    fig, (ax,) = _figure(9, 6)
    pr = metrics.precision[:, 0, :]  # (nc, 101) at IoU 0.5
    valid = np.flatnonzero(metrics.valid)
    for c in valid:
        kw = {"label": f"{names[c]} {metrics.ap50[c]:.3f}"} if len(valid) < 21 else {"color": "grey"}
        ax.plot(RECALL_THRESHOLDS, pr[c], linewidth=1, **kw)
    if len(valid):
        ax.plot(RECALL_THRESHOLDS, pr[valid].mean(0), linewidth=3, color="blue",
                label=f"all classes {metrics.map50:.3f} mAP@0.5")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1), title="Precision-Recall Curve")
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    return _save(fig, path)


def plot_conf_curve(metrics: "DetectionMetrics", path: str | Path, names: Sequence[str] | None = None,
                    ylabel: str = "F1") -> Path:
    """F1, Precision or Recall against the confidence threshold (IoU 0.5), per class and mean."""
    from .metrics import CONF_GRID

    curves = {"F1": metrics.f1_curve, "Precision": metrics.p_curve, "Recall": metrics.r_curve}
    if ylabel not in curves:
        raise ValueError(f"ylabel must be one of {sorted(curves)}, got {ylabel!r}")
    names = _names(names, len(metrics.nt))
    fig, (ax,) = _figure(9, 6)
    y = curves[ylabel]
    valid = np.flatnonzero(metrics.valid)
    for c in valid:
        kw = {"label": names[c]} if len(valid) < 21 else {"color": "grey"}
        ax.plot(CONF_GRID, y[c], linewidth=1, **kw)
    if len(valid):
        mean = y[valid].mean(0)
        ax.plot(CONF_GRID, mean, linewidth=3, color="blue",
                label=f"all classes {mean.max():.2f} at {CONF_GRID[mean.argmax()]:.3f}")
    ax.set(xlabel="Confidence", ylabel=ylabel, xlim=(0, 1), ylim=(0, 1), title=f"{ylabel}-Confidence Curve")
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    return _save(fig, path)


def plot_confusion_matrix(cm: "ConfusionMatrix | np.ndarray", path: str | Path, names: Sequence[str] | None = None,
                          normalize: bool = True) -> Path:
    """Heat map of the (nc + 1, nc + 1) [predicted, true] matrix; columns normalised if asked.
    Cell values are printed when there are fewer than 30 classes."""
    m = np.asarray(cm.matrix if hasattr(cm, "matrix") else cm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"confusion matrix must be (nc + 1, nc + 1), got {m.shape}")
    nc = m.shape[0] - 1
    if normalize:
        col = m.sum(0, keepdims=True)
        m = np.divide(m, col, out=np.zeros_like(m), where=col > 0)
    labels = _names(names, nc) + ["background"]
    fig, (ax,) = _figure(12, 9)
    im = ax.imshow(np.where(m > (0.005 if normalize else 0), m, np.nan), cmap="Blues", vmin=0.0,
                   vmax=1.0 if normalize else None)
    fig.colorbar(im, ax=ax)
    if nc < 30:
        ax.set_xticks(range(nc + 1), labels, rotation=90)
        ax.set_yticks(range(nc + 1), labels)
        for i in range(nc + 1):
            for j in range(nc + 1):
                if m[i, j] > 0:
                    ax.text(j, i, f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}", ha="center", va="center",
                            fontsize=8, color="white" if m[i, j] > 0.5 * np.nanmax(m) else "black")
    ax.set(xlabel="True", ylabel="Predicted", title="Confusion Matrix" + (" (normalised)" if normalize else ""))
    return _save(fig, path)


def plot_results(csv_path: str | Path, path: str | Path | None = None) -> Path:
    """results.png (2 x 5 panels: losses, P, R, mAPs against epoch) from a results CSV with the
    ``RESULTS_COLUMNS``; written next to the CSV unless ``path`` is given."""
    cols = read_results_columns(csv_path)
    missing = [c for c in ("epoch", *_RESULTS_PANELS) if c not in cols]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}")
    fig, axes = _figure(15, 6, 2, 5)
    x = cols["epoch"]
    for ax, name in zip(axes, _RESULTS_PANELS):
        y = cols[name]
        ax.plot(x, y, marker=".", linewidth=2, markersize=6, label="results")
        if len(y) >= 3:  # a smoothed trend as YOLOv5 draws it
            k = max(3, len(y) // 10) | 1
            pad = np.pad(y, k // 2, mode="edge")
            ax.plot(x, np.convolve(pad, np.ones(k) / k, mode="valid"), ":", label="smooth", linewidth=2)
        ax.set_title(name, fontsize=12)
    axes[0].legend()
    return _save(fig, Path(path) if path is not None else Path(csv_path).with_name("results.png"))


def plot_labels(labels: np.ndarray, path: str | Path, names: Sequence[str] | None = None,
                nc: int | None = None) -> Path:
    """Dataset label statistics: instances per class, and box width against height.

    labels (N, 5) = cls, cx, cy, w, h normalised to each image (YOLO label format).
    """
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 5)
    nc = nc if nc is not None else (int(labels[:, 0].max()) + 1 if len(labels) else 1)
    names = _names(names, nc)
    counts = np.bincount(labels[:, 0].astype(np.int64), minlength=nc)[:nc]
    fig, axes = _figure(12, 5, 1, 2)
    axes[0].bar(range(nc), counts, color="steelblue")
    axes[0].set(ylabel="instances", title=f"{len(labels)} labels")
    if nc < 30:
        axes[0].set_xticks(range(nc), names, rotation=90)
    else:
        axes[0].set_xlabel("classes")
    wh = labels[:, 3:5]
    if len(wh) > 50000:  # beyond this a scatter only gets slower, not more telling
        wh = wh[np.random.default_rng(0).choice(len(wh), 50000, replace=False)]
    axes[1].scatter(wh[:, 0], wh[:, 1], s=3, alpha=0.3, color="steelblue", linewidths=0)
    axes[1].set(xlabel="width", ylabel="height", xlim=(0, 1), ylim=(0, 1), title="box size (normalised)")
    return _save(fig, path)
