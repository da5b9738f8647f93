"""Run any artifact: ``load_runner(path)`` picks the backend from ``FORMATS`` by suffix and returns
a callable float32 (B, 3, H, W) numpy -> list of numpy outputs. Used by verification, the mAP
gate and the bench runner."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .formats import format_of

Runner = Callable[[np.ndarray], list[np.ndarray]]


class TorchRunner:
    def __init__(self, module: Any, device: str = "cpu", half: bool = False):
        import torch
        self.torch, self.module, self.device, self.half = torch, module.eval(), device, half

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        t = self.torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        if self.half:
            t = t.half()
        with self.torch.inference_mode():
            y = self.module(t)
        ys = [y] if isinstance(y, self.torch.Tensor) else list(y)
        return [v.float().cpu().numpy() for v in ys]


class OrtRunner:
    def __init__(self, path: str | Path | bytes, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3
        model = path if isinstance(path, bytes) else str(path)  # bytes: an in-memory ModelProto
        self.session = ort.InferenceSession(model, so, providers=providers or ["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)})


def load_runner(path: str | Path, device: str = "cpu", threads: int | None = None) -> Runner:
    """A runner for the artifact at ``path`` (TorchScript, ONNX, TensorRT engine)."""
    fmt = format_of(path)
    if fmt.backend == "onnxruntime":
        return OrtRunner(path, threads)
    if fmt.backend == "torch.jit":
        from .torchscript_export import load_torchscript
        module, meta = load_torchscript(path, device)
        return TorchRunner(module, device, half=bool(meta.get("half", False)))
    if fmt.backend == "tensorrt":
        from .trt_runtime import TrtRunner
        return TrtRunner(path)
    raise ValueError(f"{path}: no runner for backend {fmt.backend}")  # pragma: no cover
