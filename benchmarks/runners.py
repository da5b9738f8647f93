"""Runners shared by ``bench`` and ``detect``: the export layer's (TorchScript, ONNX Runtime,
TensorRT) plus a small adapter for PyTorch checkpoints (the DeployModel the exports are traced
from, so every backend computes the same decoded (B, N, 5 + nc) output), and the model-only
callables the timing loop calls.

Model-only means the backend call alone on an input already in place: for torch backends the
tensor is created on the device once, outside the loop; ONNX Runtime gets the numpy array; the
TensorRT runner copies host<->device inside its call (said in the cell's notes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeyolo.export.runtime import OrtRunner, Runner, TorchRunner


@dataclass
class Loaded:
    runner: Runner  # numpy (B, 3, H, W) float32 0..1 -> [outputs as numpy]
    nc: int
    imgsz: int | None  # the artifact's fixed input size, None for a checkpoint (any multiple of 32)
    batch: int | None
    names: list[str]
    precision: str
    notes: list[str] = field(default_factory=list)
    model: Any = None  # the YOLO module for checkpoints (GFLOPs)


def _ort_providers(device: str) -> list[str]:
    import onnxruntime as ort  # noqa: PLC0415
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def load_checkpoint_runner(path: Path, device: str = "cpu", half: bool = False) -> Loaded:
    """A .pt checkpoint run eagerly: ``load_model`` + ``DeployModel(decode=True)``, no BN fusion
    (the model as trained; the exported formats get the fused graph)."""
    from edgeyolo.export.deploy import DeployModel  # noqa: PLC0415
    from edgeyolo.models.checkpoint import load_model  # noqa: PLC0415
    model, ckpt = load_model(path, device)
    deploy = DeployModel(model, decode=True).eval()
    if half:
        deploy = deploy.half()
    return Loaded(TorchRunner(deploy, device, half=half), model.nc, None, None, list(ckpt["names"]),
                  "fp16" if half else "fp32", model=model)


def load_artifact_runner(path: Path, device: str = "cpu", threads: int | None = None) -> Loaded:
    """An exported artifact through the export layer's ``load_runner`` (ONNX on the CUDA execution
    provider when ``device`` is CUDA and onnxruntime-gpu is installed)."""
    from edgeyolo.export.formats import format_of  # noqa: PLC0415
    from edgeyolo.export.runtime import load_runner  # noqa: PLC0415

    from .matrix import precision_of_artifact  # noqa: PLC0415
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--weights {path}: file not found")
    fmt = format_of(path)
    notes: list[str] = []
    if fmt.backend == "onnxruntime":
        from edgeyolo.export.onnx_export import read_metadata  # noqa: PLC0415
        meta = read_metadata(path)
        providers = _ort_providers(device)
        runner: Runner = OrtRunner(path, threads, providers)
        notes.append(f"onnxruntime {providers[0]}")
    elif fmt.backend == "torch.jit":
        from edgeyolo.export.torchscript_export import load_torchscript  # noqa: PLC0415
        module, meta = load_torchscript(path, device)
        runner = TorchRunner(module, device, half=bool(meta.get("half", False)))
    else:
        from edgeyolo.export.trt_sidecar import read_sidecar  # noqa: PLC0415
        meta = read_sidecar(path)  # imgsz, names, nc, batch, precision at the top level
        runner = load_runner(path, device, threads)
        notes.append("TensorRT runner: host<->device copies inside the timed call")
    names = list(meta.get("names") or [])
    nc = int(meta.get("nc") or len(names) or 0)
    if nc < 1:
        raise ValueError(f"--weights {path}: no class count in the artifact's metadata (not an edgeyolo export?)")
    imgsz = meta.get("imgsz")
    return Loaded(runner, nc, int(imgsz) if imgsz else None, int(meta.get("batch") or 1), names or [str(i) for i in range(nc)],
                  precision_of_artifact(path, meta), notes)


def model_only_call(runner: Runner, x: np.ndarray) -> Callable[[], Any]:
    """A no-argument callable running only the backend on ``x``, with the input already in place."""
    if isinstance(runner, TorchRunner):
        torch = runner.torch
        t = torch.from_numpy(np.ascontiguousarray(x)).to(runner.device)
        if runner.half:
            t = t.half()
        module = runner.module

        def call() -> Any:
            with torch.inference_mode():
                return module(t)
        return call
    if isinstance(runner, OrtRunner):
        session, feed = runner.session, {runner.input: np.ascontiguousarray(x, dtype=np.float32)}
        return lambda: session.run(None, feed)
    return lambda: runner(x)
