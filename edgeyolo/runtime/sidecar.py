"""The JSON sidecar kept beside every engine plan (``model.engine.json``).

A TensorRT plan only deserializes on the exact TensorRT version and GPU model it was built with;
anything else is undefined behaviour (often a segfault inside deserialize_cuda_engine). The
runtime compares the sidecar with the machine before touching the plan and raises a clear error.
Torch-free: the GPU is asked through the runtime's CUDA binding (pycuda or cuda-python), or torch
where it is the one installed (the machine that builds engines).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeyolo.atomic import atomic_write_text

SIDECAR_SUFFIX = ".json"


def sidecar_path(engine: str | Path) -> Path:
    return Path(str(engine) + SIDECAR_SUFFIX)


def jetson_model() -> str | None:
    """The Jetson board name from the device tree, None elsewhere."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or None
    except OSError:
        return None


def gpu_identity() -> tuple[str | None, str | None]:
    """(GPU name, compute capability "8.7") of device 0, via pycuda, cuda-python or torch, the first
    installed that sees it; (None, None) if none does."""
    try:
        import pycuda.driver as cuda  # noqa: PLC0415
        cuda.init()
        dev = cuda.Device(0)
        return dev.name(), ".".join(map(str, dev.compute_capability()))
    except ImportError:
        pass
    try:
        from .cuda_io import import_cudart  # noqa: PLC0415
        cudart = import_cudart()
    except ImportError:
        pass
    else:
        try:  # (cudaError_t, cudaDeviceProp); cuda-python 11.8 raises instead when libcuda is missing
            err, prop = cudart.cudaGetDeviceProperties(0)
        except RuntimeError:
            err = None
        # an error (e.g. cuda-bindings newer than the driver, which torch's own CUDA may not mind)
        # falls through to torch rather than recording no GPU
        if err is not None and int(err) == int(cudart.cudaError_t.cudaSuccess):
            name = prop.name.split(b"\0", 1)[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
            return name, f"{prop.major}.{prop.minor}"
    try:
        import torch  # noqa: PLC0415  (only where torch is installed anyway: the build machine)
    except ImportError:
        return None, None
    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.get_device_name(0), ".".join(map(str, torch.cuda.get_device_capability(0)))


def current_environment() -> dict[str, Any]:
    """TensorRT version, GPU and Jetson board of this machine (imports tensorrt)."""
    import tensorrt as trt  # noqa: PLC0415
    gpu, cc = gpu_identity()
    return {"tensorrt": trt.__version__, "jetson": jetson_model(), "gpu": gpu, "compute_capability": cc}


def write_sidecar(engine: str | Path, env: dict[str, Any], precision: str, metadata: dict[str, Any],
                  build_options: dict[str, Any]) -> Path:
    """Atomic write (temp file + rename) of the sidecar for ``engine``."""
    data = {"engine": Path(engine).name, **env, "precision": precision,
            **{k: metadata[k] for k in ("imgsz", "names", "stride", "nc", "decode", "batch", "anchors", "model",
                                       "input")
               if k in metadata}, "build": build_options}
    return atomic_write_text(sidecar_path(engine), json.dumps(data, indent=2) + "\n")


def read_sidecar(engine: str | Path) -> dict[str, Any]:
    path = sidecar_path(engine)
    if not path.is_file():
        raise ValueError(f"{engine}: no sidecar {path.name}; the plan cannot be checked against this machine "
                         "(rebuild it with `edgeyolo export --format engine`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: unreadable sidecar ({e.msg})") from None


def check_compatible(sidecar: dict[str, Any], env: dict[str, Any], engine: str = "engine") -> None:
    """Raise ValueError when the plan was built for another TensorRT version or GPU."""
    built, here = sidecar.get("tensorrt"), env.get("tensorrt")
    if built != here:
        raise ValueError(f"{engine} was built with TensorRT {built}, this machine has {here}: "
                         "plans are not portable across TensorRT versions; rebuild it here")
    for key, what in (("gpu", "GPU"), ("compute_capability", "compute capability"), ("jetson", "Jetson model")):
        if sidecar.get(key) != env.get(key):
            raise ValueError(f"{engine} was built on {what} {sidecar.get(key)!r}, this machine has {env.get(key)!r}: "
                             "plans are tuned to one GPU model; rebuild it here")
