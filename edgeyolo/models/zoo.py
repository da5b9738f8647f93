"""Model names: every backbone of the seeds at the s/m/l/x head scales of PyTorch_YOLOv4."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

# Backbone key -> config file shipped in edgeyolo/models/configs (the seeds' L models).
BACKBONES: dict[str, str] = {
    "cspdarknet": "yolov4-l.yaml",
    "mbv2": "yolov4-mbv2.yaml",
    "mbv3s": "yolov4-mbv3s.yaml",
    "mbv3l": "yolov4-mbv3l.yaml",
    "mbv3s-tv": "yolov4-mbv3s-tv.yaml",
    "mbv3l-tv": "yolov4-mbv3l-tv.yaml",
    "r50": "yolov4-r50.yaml",
    "rx50": "yolov4-rx50.yaml",
    "ser50": "yolov4-ser50.yaml",
}
# Scale letter -> (depth_multiple, width_multiple), as PyTorch_YOLOv4's yolov4{s,m,l,x}-mish.
SCALES: dict[str, tuple[float, float]] = {"s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}
SEED_MODELS = ("yolov4-l", "yolov4-mbv2", "yolov4-mbv3s", "yolov4-mbv3l", "yolov4-r50", "yolov4-rx50", "yolov4-ser50")
_NAME = re.compile(r"^yolov4([smlx]?)-(.+)$")


def config_dir() -> Path:
    return Path(str(resources.files("edgeyolo.models") / "configs"))


def canonical_name(scale: str, backbone: str) -> str:
    """The seeds' names for L models (``yolov4-mbv3s``, ``yolov4-l``), ``yolov4s-mbv3s`` otherwise."""
    if scale == "l":
        return "yolov4-l" if backbone == "cspdarknet" else f"yolov4-{backbone}"
    return f"yolov4{scale}-{backbone}"


def model_names() -> list[str]:
    """All model names, seed L models first."""
    return [canonical_name(s, b) for s in ("l", "s", "m", "x") for b in BACKBONES]


def resolve_name(name: str) -> tuple[str, Path, tuple[float, float]] | None:
    """``name`` -> (canonical name, config file, (depth, width) multiples), or None if not a zoo name."""
    if name == "yolov4-l":
        name = "yolov4l-cspdarknet"
    m = _NAME.match(name)
    if not m or m.group(2) not in BACKBONES:
        return None
    scale, backbone = m.group(1) or "l", m.group(2)
    return canonical_name(scale, backbone), config_dir() / BACKBONES[backbone], SCALES[scale]
