"""Inference backends: numpy (B, 3, H, W) float32 in (or (B, H, W, 3) uint8 for an artifact whose
``ModelInfo.input`` says so), list of numpy outputs out, plus the artifact's ``ModelInfo``. ``load_backend`` picks one by
file name, through the format table (``edgeyolo.formats``):

* ``.onnx``: ONNX Runtime (CUDA execution provider when asked for and installed);
* ``.engine`` / ``.plan``: TensorRT through pycuda or cuda-python (``trt_backend``), sidecar checked first;
* ``.torchscript`` / ``.trt.ts``: torch.jit, only when torch (and torch-tensorrt) happen to be installed.

Nothing here imports torch at module level; ``import edgeyolo.runtime.backends`` works on a
machine that has only numpy, OpenCV and ONNX Runtime / TensorRT.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeyolo.formats import format_of

from .info import TORCHSCRIPT_METADATA, ModelInfo, decode_metadata, model_info


class Backend(Protocol):
    info: ModelInfo
    output_names: list[str]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]: ...


class OrtBackend:
    """ONNX Runtime session; ``path`` may also be the bytes of an in-memory ModelProto."""

    def __init__(self, path: str | Path | bytes, threads: int | None = None, providers: list[str] | None = None,
                 device: str = "cpu"):
        import onnxruntime as ort  # noqa: PLC0415
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3
        if providers is None:
            providers = ["CPUExecutionProvider"]
            if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
        model = path if isinstance(path, bytes) else str(path)
        try:
            self.session = ort.InferenceSession(model, so, providers=providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            where = "<in-memory model>" if isinstance(path, bytes) else path
            raise ValueError(f"{where}: ONNX Runtime cannot load it ({str(e).splitlines()[0][:200]})") from None
        self.providers = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.input_dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
        outs = self.session.get_outputs()
        self.output_names = [o.name for o in outs]
        meta = decode_metadata(self.session.get_modelmeta().custom_metadata_map)
        self.info = model_info("<in-memory model>" if isinstance(path, bytes) else path, "onnx", meta,
                               self.output_names, [len(o.shape) for o in outs], list(inp.shape)) \
            if meta.get("names") or meta.get("nc") else None  # bare ONNX (calibration copies): no info

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=self.input_dtype)})


class TorchModuleBackend:
    """Any torch module as a backend: numpy in, torch on ``device`` (FP16 input when ``half``),
    numpy float32 out. Torch is imported here, never at module level; the export layer's PyTorch
    reference, the bench's checkpoints and TorchScript files all run through this one call."""

    def __init__(self, module: Any, device: str = "cpu", half: bool = False):
        import torch  # noqa: PLC0415
        self.torch, self.module, self.device, self.half = torch, module.eval(), device, half

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        torch = self.torch
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        t = t.half() if self.half else t
        with torch.inference_mode():
            y = self.module(t)
        ys = [y] if isinstance(y, torch.Tensor) else list(y)
        return [v.float().cpu().numpy() for v in ys]


def read_torchscript(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """A TorchScript export (eval mode) on ``device`` and the metadata in its extra file. Needs torch."""
    import torch  # noqa: PLC0415
    files = {TORCHSCRIPT_METADATA: ""}
    with warnings.catch_warnings():  # recent torch warns on every load that TorchScript is deprecated: noise for a deploy format we keep
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
        module = torch.jit.load(str(path), map_location=device, _extra_files=files)
    return module.eval(), (json.loads(files[TORCHSCRIPT_METADATA]) if files[TORCHSCRIPT_METADATA] else {})


class TorchScriptBackend(TorchModuleBackend):
    """A TorchScript export, when torch is installed (the runtime never requires it)."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        try:
            import torch  # noqa: F401, PLC0415  (only to say clearly that it is missing)
        except ImportError:
            raise ValueError(f"{path}: TorchScript needs PyTorch, which is not installed; "
                             "deploy the .onnx or .engine export instead") from None
        module, meta = read_torchscript(path, device)
        super().__init__(module, device, half=bool(meta.get("half", False)))
        self.output_names = ["output"]
        rank = 3 if meta.get("decode", True) else 5
        n_out = 1 if meta.get("decode", True) else len(meta.get("stride") or (8, 16, 32))
        self.info = model_info(path, "torchscript", meta, [f"output{i}" for i in range(n_out)] if n_out > 1
                               else self.output_names, [rank] * n_out)


def _load_onnx(path: Path, device: str, threads: int | None) -> OrtBackend:
    b = OrtBackend(path, threads, device=device)
    if b.info is None:
        raise ValueError(f"{path}: no class names in the ONNX metadata (not an edgeyolo export?)")
    return b


def _load_engine(path: Path, device: str, threads: int | None) -> Any:
    from .trt_backend import TrtBackend  # noqa: PLC0415
    return TrtBackend(path)


def _load_torchscript(path: Path, device: str, threads: int | None) -> TorchScriptBackend:
    return TorchScriptBackend(path, device)


def _load_torch_tensorrt(path: Path, device: str, threads: int | None) -> TorchScriptBackend:
    try:
        import torch_tensorrt  # noqa: F401, PLC0415  (registers the TensorRT ops the module calls)
    except ImportError:
        raise ValueError(f"{path}: a torch-tensorrt module needs torch_tensorrt installed") from None
    return TorchScriptBackend(path, device)


# Format.backend -> how it loads: (path, device, threads) -> a Backend
LOADERS = {"onnxruntime": _load_onnx, "tensorrt": _load_engine, "torch.jit": _load_torchscript,
           "torch_tensorrt": _load_torch_tensorrt}


def load_backend(path: str | Path, device: str = "cpu", threads: int | None = None) -> Any:
    """The backend for the artifact at ``path``; one-line ValueError for a missing or unknown file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    return LOADERS[format_of(path).backend](path, device, threads)
