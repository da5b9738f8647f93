"""TorchScript export: traced (the graph is static once the deploy wrapper fixes decode/raw),
frozen (weights become constants, BN-free convs fold further), metadata in extra files."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeyolo.atomic import atomic_path
from edgeyolo.runtime.backends import read_torchscript
from edgeyolo.runtime.info import TORCHSCRIPT_METADATA

METADATA_FILE = TORCHSCRIPT_METADATA  # the extra file the runtime reads the metadata from


def export_torchscript(model: nn.Module, path: str | Path, imgsz: int, batch: int = 1,
                       metadata: dict[str, Any] | None = None, device: str = "cpu", half: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to(device)
    x = torch.zeros(batch, 3, imgsz, imgsz, device=device)
    if half:
        model, x = model.half(), x.half()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarning on shape-derived Python ints (grids)
        ts = torch.jit.trace(model, x, strict=False)
        ts = torch.jit.freeze(ts)
    with atomic_path(path) as tmp:
        ts.save(str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata or {})})
    return path


def load_torchscript(path: str | Path, device: str = "cpu") -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The module and the metadata written beside it (the runtime's reader: one place knows the format)."""
    return read_torchscript(path, device)
