"""Adapters that let export's checks feed any runtime backend (``edgeyolo.runtime.backends``)
float32 (B, 3, H, W) RGB batches of any size, as the PyTorch reference takes them: exported files
load through the deployed runtime, so what export verifies is what a device runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeyolo.runtime.backends import Backend, load_backend
from edgeyolo.runtime.info import UINT8_INPUT
from edgeyolo.runtime.processing import pad_to_batch


def load_float_input(path: str | Path, device: str = "cpu", threads: int | None = None) -> Backend:
    """The backend for the exported artifact at ``path`` (TorchScript, ONNX, TensorRT engine); one
    exported with --uint8-input still takes float (B, 3, H, W) RGB, converted back to its input."""
    backend = load_backend(path, device, threads)
    info = getattr(backend, "info", None)
    return FloatInput(backend) if info is not None and info.input == UINT8_INPUT else backend


class FloatInput:
    """Float (B, 3, H, W) RGB in 0..1 -> the (B, H, W, 3) uint8 BGR a --uint8-input artifact takes.
    Lossless for the images export verifies on (decoded uint8 images / 255), so parity and the mAP
    gate compare the same pixels as the PyTorch reference sees."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        u8 = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        return self.backend(np.ascontiguousarray(u8[:, ::-1].transpose(0, 2, 3, 1)))


def fit_batch(backend: Backend) -> Backend:
    """``backend`` taking any number of images: an artifact exported with a static batch B runs them
    in chunks of B, the last padded with blank images, and its per-image outputs are trimmed back
    (what the deployed ``Detector`` does). Other backends are returned as they are."""
    info = getattr(backend, "info", None)
    b = info.batch if info is not None else _session_batch(backend)
    if not b:
        return backend

    def run(x: np.ndarray) -> list[np.ndarray]:
        if len(x) == b:
            return backend(x)
        parts = []
        for i in range(0, len(x), b):
            chunk = x[i:i + b]
            parts.append([y[:len(chunk)] for y in backend(pad_to_batch(chunk, b))])
        return [np.concatenate(ys) for ys in zip(*parts)]
    return run


def _session_batch(backend: Backend) -> int | None:
    """The fixed batch of a bare ONNX Runtime session (no edgeyolo metadata), else None."""
    session = getattr(backend, "session", None)
    dim = session.get_inputs()[0].shape[0] if session is not None else None
    return dim if isinstance(dim, int) and dim > 0 else None
