"""Load ImageNet backbone checkpoints from local files (nothing is downloaded).

Each backbone YAML declares how public checkpoint keys map onto its rows (``weights.map``: key
prefix -> row prefix) and which keys belong to the classifier (``weights.ignore``). Loading is
strict: every backbone tensor must be provided and every checkpoint tensor must be used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .yolo import YOLO


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Plain state_dict, or one wrapped in ``state_dict``/``model`` (timm/Cadene/training scripts)."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state_dict (expected a mapping of tensor names to tensors)")
    # Checkpoints saved from DataParallel/DDP prefix every key with "module."
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def _short(keys: list[str], n: int = 4) -> str:
    return "none" if not keys else ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_backbone_weights(model: YOLO, path: str | Path) -> int:
    """Load a torchvision / Cadene / timm-legacy ImageNet checkpoint into ``model.backbone``.

    Returns the number of tensors loaded. A file that does not fit raises a one-line ValueError
    naming the missing and unexpected keys.
    """
    path = Path(path)
    name = model.cfg.get("name", "model")
    spec = model.cfg["backbone"].get("weights") if isinstance(model.cfg["backbone"], dict) else None
    if not spec:
        raise ValueError(f"{name}: its backbone (the seeds' own blocks) matches no public checkpoint layout; "
                         "use a -tv MobileNetV3 or a torchvision/Cadene backbone for pretrained weights")
    if not path.is_file():
        raise ValueError(f"{path}: backbone weights not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({str(e).strip().splitlines()[0][:120]})") from None
    source = _unwrap(raw, path)

    prefixes = sorted(spec["map"].items(), key=lambda kv: -len(kv[0]))  # longest prefix wins
    ignore = tuple(spec.get("ignore", ()))
    mapped, unexpected = {}, []
    for key, tensor in source.items():
        if key.startswith(ignore):
            continue
        for src, dst in prefixes:
            if key.startswith(src):
                mapped["layers." + dst + key[len(src):]] = tensor
                break
        else:
            unexpected.append(key)
    target = model.backbone.state_dict()
    unexpected += [k for k in mapped if k not in target]
    # Old checkpoints (torchvision's resnet50-0676ba61, Cadene's) have no BN num_batches_tracked.
    missing = [k for k in target if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: does not fit the {name} backbone: missing {_short(missing)}; "
                         f"unexpected {_short(unexpected)}")
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in mapped.items() if v.shape != target[k].shape]
    if wrong:
        raise ValueError(f"{path}: shapes do not fit the {name} backbone: {_short(wrong, 2)}")
    model.backbone.load_state_dict(mapped, strict=False)
    return len(mapped)
