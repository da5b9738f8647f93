"""Run any artifact for verification and the mAP gate: exported files go through the deployed
runtime (``edgeyolo.runtime.load_backend``: ONNX Runtime, TensorRT + pycuda, TorchScript), so
what export verifies is what a device runs; ``TorchRunner`` wraps an in-memory module (the
PyTorch reference). Every runner is a callable float32 (B, 3, H, W) numpy -> list of numpy outputs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from edgeyolo.runtime.backends import OrtBackend as OrtRunner  # noqa: F401  (re-exported: export's name for it)
from edgeyolo.runtime.backends import TorchModuleBackend as TorchRunner  # noqa: F401  (the PyTorch reference)
from edgeyolo.runtime.backends import load_backend

Runner = Callable[[np.ndarray], list[np.ndarray]]


def load_runner(path: str | Path, device: str = "cpu", threads: int | None = None) -> Runner:
    """A runner for the exported artifact at ``path`` (TorchScript, ONNX, TensorRT engine)."""
    return load_backend(path, device, threads)
