"""Backends as ``bench`` and ``detect`` use them. Exported artifacts (ONNX, TensorRT engines,
TorchScript) load through the deployed runtime, ``edgeyolo.runtime.backends.load_backend``, so what
is measured is what a device runs; a PyTorch checkpoint gets ``CheckpointBackend``, the DeployModel
the exports are traced from, with the same ``info`` / call interface. Every backend computes the
same decoded (B, N, 5 + nc) output and plugs into ``edgeyolo.runtime.Detector``.

Model-only means the backend call alone on an input already in place: for torch backends the
tensor is created on the device once, outside the loop; ONNX Runtime gets the numpy array; the
TensorRT backend copies host<->device inside its call (said in the cell's notes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeyolo.runtime.backends import Backend, OrtBackend, TorchModuleBackend
from edgeyolo.runtime.info import DECODED, ModelInfo


class CheckpointBackend(TorchModuleBackend):
    """A .pt checkpoint run eagerly: ``load_model`` + ``DeployModel(decode=True)``, no BN fusion
    (the model as trained; the exported formats get the fused graph)."""

    def __init__(self, path: str | Path, device: str = "cpu", half: bool = False):
        from edgeyolo.export.deploy import DeployModel  # noqa: PLC0415
        from edgeyolo.models.checkpoint import load_model  # noqa: PLC0415
        model, ckpt = load_model(path, device)
        deploy = DeployModel(model, decode=True).eval()
        super().__init__(deploy.half() if half else deploy, device, half=half)
        self.output_names = ["output"]
        self.info = ModelInfo(str(path), "pytorch", [str(n) for n in ckpt["names"]], None, None,
                              [int(s) for s in model.stride.tolist()], model.head.anchors.tolist(), DECODED,
                              "fp16" if half else "fp32")


def backend_notes(backend: Backend) -> list[str]:
    """What the bench table says about how ``backend`` runs (which ONNX Runtime provider, where
    TensorRT's copies are timed); nothing for torch backends."""
    if isinstance(backend, OrtBackend):
        return [f"onnxruntime {backend.providers[0]}"]
    if isinstance(backend, TorchModuleBackend):
        return []
    return ["TensorRT runtime (pycuda): host<->device copies inside the timed call"]


def model_only_call(backend: Backend, x: np.ndarray) -> Callable[[], Any]:
    """A no-argument callable running only the backend on ``x``, with the input already in place."""
    if isinstance(backend, TorchModuleBackend):
        torch = backend.torch
        t = torch.from_numpy(np.ascontiguousarray(x)).to(backend.device)
        if backend.half:
            t = t.half()
        module = backend.module

        def call() -> Any:
            with torch.inference_mode():
                return module(t)
        return call
    if isinstance(backend, OrtBackend):
        session, feed = backend.session, {backend.input: np.ascontiguousarray(x, dtype=np.float32)}
        return lambda: session.run(None, feed)
    return lambda: backend(x)
