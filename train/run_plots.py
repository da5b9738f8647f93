"""A training run's figures: the data before the first epoch (labels.png, train_batch.png) and
best.pt's validation after the last (results.png, PR and F1 curves, confusion matrix). Plotting
modules are imported here, when a run draws (``--plots``), not with the trainer."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgeyolo.data import DetectionDataset
    from edgeyolo.ops.evaluate import ValResult


def plot_training_data(run_dir: Path, train_set: DetectionDataset, names: list[str], seed: int) -> None:
    """labels.png (instances per class, box sizes) and train_batch.png (16 augmented samples)."""
    from edgeyolo.data import plot_samples  # noqa: PLC0415
    from edgeyolo.ops.plots import plot_labels  # noqa: PLC0415

    labels = np.concatenate([lb for lb in train_set.labels if len(lb)] or [np.zeros((0, 5))])
    plot_labels(labels, run_dir / "labels.png", names, len(names))
    plot_samples(train_set, run_dir / "train_batch.png", n=16, seed=seed)


def plot_final(run_dir: Path, result: ValResult, names: list[str]) -> None:
    """results.png from results.csv, and the PR curve, F1 curve and confusion matrix of ``result``."""
    from edgeyolo.ops import plots  # noqa: PLC0415

    plots.plot_results(run_dir / "results.csv", run_dir / "results.png")
    plots.plot_pr_curve(result.metrics, run_dir / "PR_curve.png", names)
    plots.plot_conf_curve(result.metrics, run_dir / "F1_curve.png", names)
    plots.plot_confusion_matrix(result.confusion, run_dir / "confusion_matrix.png", names)
