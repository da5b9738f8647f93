"""Data: dataset YAML, label checking, augmentation, the dataset and its loader, the COCO
converter and the built-in synthetic set.

Names are imported lazily (PEP 562) so ``import edgeyolo.data.letterbox`` in the torch-free
runtime does not pull in torch, and importing the package does no work.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "DataConfig": "config", "load_data_config": "config", "img2label_path": "config", "IMG_FORMATS": "config",
    "Problem": "labels", "check_image_label": "labels",
    "SplitScan": "scan", "scan_split": "scan",
    "DetectionDataset": "dataset", "DEFAULT_HYP": "dataset",
    "build_dataloader": "loader", "seed_worker": "loader", "build_train_loader": "epoch_loader",
    "synthetic_data_yaml": "synthetic", "generate_synthetic": "synthetic", "SYNTH_NAMES": "synthetic",
    "convert_coco": "coco", "SEED_CLASSES": "coco",
    "plot_samples": "show",
}
__all__ = [
    "DEFAULT_HYP", "IMG_FORMATS", "SEED_CLASSES", "SYNTH_NAMES", "DataConfig", "DetectionDataset", "Problem",
    "SplitScan", "build_dataloader", "build_train_loader", "check_image_label", "convert_coco", "generate_synthetic", "img2label_path",
    "letterbox", "load_data_config", "plot_samples", "scan_split", "seed_worker", "synthetic_data_yaml",
]

# Bound eagerly (numpy + OpenCV only): the package attribute ``letterbox`` is then always the
# function, never the submodule of the same name that ``import edgeyolo.data.letterbox`` would bind.
from .letterbox import letterbox  # noqa: E402

if TYPE_CHECKING:
    from .coco import SEED_CLASSES, convert_coco
    from .config import IMG_FORMATS, DataConfig, img2label_path, load_data_config
    from .dataset import DEFAULT_HYP, DetectionDataset
    from .epoch_loader import build_train_loader
    from .labels import Problem, check_image_label
    from .loader import build_dataloader, seed_worker
    from .scan import SplitScan, scan_split
    from .show import plot_samples
    from .synthetic import SYNTH_NAMES, generate_synthetic, synthetic_data_yaml


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
