"""Checkpoints: a state_dict plus the model config and metadata, never a pickled module.

Layout (every value is a tensor, number, string, list or dict, so ``torch.load(weights_only=True)``
reads it)::

    {"format": "edgeyolo", "version": 1, "model": state_dict, "cfg": resolved model config,
     "names": [class names], "meta": {...}, "train_state": {...} (training runs only)}
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from edgeyolo.atomic import atomic_path
from .builder import build_model
from .yolo import YOLO

FORMAT, VERSION = "edgeyolo", 1


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write with torch.save to a temp file beside ``path``, then rename: never a half-written file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def make_checkpoint(model: YOLO, names: list[str], meta: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None) -> dict[str, Any]:
    if len(names) != model.nc:
        raise ValueError(f"{len(names)} class names for a model with nc={model.nc}")
    ckpt = {"format": FORMAT, "version": VERSION, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "cfg": model.cfg, "names": list(names), "meta": dict(meta or {})}
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


def save_checkpoint(path: str | Path, model: YOLO, names: list[str], meta: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None) -> Path:
    atomic_torch_save(make_checkpoint(model, names, meta, train_state), path)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint dict; a missing, corrupt or foreign file is a one-line ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):  # torch's own errors for this are miniz internals or "[Errno 22]"
        raise ValueError(f"{path}: not a readable checkpoint (truncated, or not a torch zip archive: "
                         "an interrupted copy?)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason[:160]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        keys = list(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: not an edgeyolo checkpoint (found {keys}); train one with `edgeyolo train`")
    if ckpt.get("version", 0) > VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt['version']} is newer than this edgeyolo reads ({VERSION})")
    for key in ("model", "cfg", "names"):
        if key not in ckpt:
            raise ValueError(f"{path}: checkpoint has no {key!r}")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[YOLO, dict[str, Any]]:
    """Rebuild the model from a checkpoint's config and load its weights (eval mode)."""
    ckpt = read_checkpoint(path)
    model = build_model(ckpt["cfg"], nc=len(ckpt["names"]))
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the model config "
                         f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), ckpt
