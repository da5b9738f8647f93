"""The JSON sidecar kept beside every engine plan (``model.engine.json``).

A TensorRT plan only deserializes on the exact TensorRT version and GPU model it was built with;
anything else is undefined behaviour (often a segfault inside deserialize_cuda_engine). The
runtime compares the sidecar with the machine before touching the plan and raises a clear error.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".json"


def sidecar_path(engine: str | Path) -> Path:
    return Path(str(engine) + SIDECAR_SUFFIX)


def jetson_model() -> str | None:
    """The Jetson board name from the device tree, None elsewhere."""
    p = Path("/proc/device-tree/model")
    try:
        return p.read_text().strip("\x00\n ") or None
    except OSError:
        return None


def current_environment() -> dict[str, Any]:
    """TensorRT version and GPU of this machine (imports tensorrt and torch.cuda)."""
    import tensorrt as trt
    import torch
    env: dict[str, Any] = {"tensorrt": trt.__version__, "jetson": jetson_model(), "gpu": None, "compute_capability": None}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    return env


def write_sidecar(engine: str | Path, env: dict[str, Any], precision: str, metadata: dict[str, Any],
                  build_options: dict[str, Any]) -> Path:
    data = {"engine": Path(engine).name, **env, "precision": precision, **{k: metadata[k] for k in
            ("imgsz", "names", "stride", "nc", "decode", "batch") if k in metadata}, "build": build_options}
    path = sidecar_path(engine)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


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
