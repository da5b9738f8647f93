"""Backends shared by ``bench`` and ``detect``. Exported artifacts (ONNX, TensorRT engines,
TorchScript) load through the deployed runtime, ``edgeyolo.runtime.load_backend``, so what is
measured is what a device runs; a PyTorch checkpoint gets ``CheckpointBackend``, the DeployModel
the exports are traced from, with the same ``info`` / call interface. Every backend computes the
same decoded (B, N, 5 + nc) output and plugs into ``edgeyolo.runtime.Detector``.

Model-only means the backend call alone on an input already in place: for torch backends the
tensor is created on the device once, outside the loop; ONNX Runtime gets the numpy array; the
TensorRT backend copies host<->device inside its call (said in the cell's notes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeyolo.runtime.backends import OrtBackend, TorchModuleBackend, TorchScriptBackend, load_backend
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


@dataclass
class Loaded:
    backend: Any  # numpy (B, 3, H, W) float32 0..1 -> [outputs as numpy], with ``.info`` (a ModelInfo)
    notes: list[str] = field(default_factory=list)

    @property
    def info(self) -> ModelInfo:
        return self.backend.info


def load_checkpoint_runner(path: Path, device: str = "cpu", half: bool = False) -> Loaded:
    return Loaded(CheckpointBackend(path, device, half))


def load_artifact_runner(path: Path, device: str = "cpu", threads: int | None = None) -> Loaded:
    """An exported artifact through the runtime (ONNX on the CUDA execution provider when
    ``device`` is CUDA and onnxruntime-gpu is installed)."""
    backend = load_backend(path, device, threads)
    notes: list[str] = []
    if isinstance(backend, OrtBackend):
        notes.append(f"onnxruntime {backend.providers[0]}")
    elif not isinstance(backend, TorchScriptBackend):
        notes.append("TensorRT runtime (pycuda): host<->device copies inside the timed call")
    return Loaded(backend, notes)


def model_only_call(runner: Any, x: np.ndarray) -> Callable[[], Any]:
    """A no-argument callable running only the backend on ``x``, with the input already in place."""
    if isinstance(runner, TorchModuleBackend):
        torch = runner.torch
        t = torch.from_numpy(np.ascontiguousarray(x)).to(runner.device)
        if runner.half:
            t = t.half()
        module = runner.module

        def call() -> Any:
            with torch.inference_mode():
                return module(t)
        return call
    if isinstance(runner, OrtBackend):
        session, feed = runner.session, {runner.input: np.ascontiguousarray(x, dtype=np.float32)}
        return lambda: session.run(None, feed)
    return lambda: runner(x)
