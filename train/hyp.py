"""Training hyperparameters: ``hyp.scratch.yaml`` (shipped next to this file) is the set of keys
and their defaults; a user file overrides any subset of them and nothing else."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

DEFAULT_HYP = Path(__file__).with_name("hyp.scratch.yaml")

# Keys whose value must lie in a range; (low, high), inclusive. Others only need to be numbers.
_RANGES: dict[str, tuple[float, float]] = {
    "lr0": (1e-8, 10.0), "lrf": (0.0, 1.0), "momentum": (0.0, 1.0), "weight_decay": (0.0, 1.0),
    "warmup_epochs": (0.0, 1e6), "warmup_momentum": (0.0, 1.0), "warmup_bias_lr": (0.0, 10.0),
    "box": (0.0, 1e3), "cls": (0.0, 1e3), "obj": (0.0, 1e3), "cls_pw": (0.0, 1e3), "obj_pw": (0.0, 1e3),
    "iou_t": (0.0, 1.0), "anchor_t": (1.0, 100.0), "fl_gamma": (0.0, 10.0), "label_smoothing": (0.0, 1.0),
    "hsv_h": (0.0, 1.0), "hsv_s": (0.0, 1.0), "hsv_v": (0.0, 1.0), "degrees": (0.0, 180.0),
    "translate": (0.0, 1.0), "scale": (0.0, 10.0), "shear": (0.0, 90.0), "perspective": (0.0, 0.001),
    "flipud": (0.0, 1.0), "fliplr": (0.0, 1.0), "mosaic": (0.0, 1.0), "mixup": (0.0, 1.0),
    "letterbox_bands": (0.0, 1.0),
}


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: no such hyperparameter file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a hyperparameter file must be a mapping of key: number")
    return data


def load_hyp(path: str | Path | None = None) -> dict[str, float]:
    """The defaults of ``hyp.scratch.yaml`` overridden by the keys of ``path`` (None: defaults).

    Raises a one-line ValueError naming the file and the key for an unknown key, a value that is
    not a number, or one outside its range.
    """
    hyp = {str(k): float(v) for k, v in _read(DEFAULT_HYP).items()}
    if path is None:
        return hyp
    path = Path(path)
    for key, value in _read(path).items():
        key = str(key)
        if key not in hyp:
            close = difflib.get_close_matches(key, list(hyp), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{path}: unknown hyperparameter {key!r}{hint}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path}: hyperparameter {key!r} must be a number, got {value!r}")
        lo, hi = _RANGES.get(key, (float("-inf"), float("inf")))
        if not lo <= value <= hi:
            raise ValueError(f"{path}: hyperparameter {key!r} = {value} is outside [{lo:g}, {hi:g}]")
        hyp[key] = float(value)
    return hyp
