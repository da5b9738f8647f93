"""TensorRT engine builder (``[trt]`` extra), against the public Python API of TensorRT 8.5
(JetPack 5) and 10.x (JetPack 6): explicit batch, an optimization profile for dynamic batch,
FP16 / INT8 (Q/DQ ONNX, or the implicit calibrator on 8.x), workspace pool limit, timing
cache, DLA with GPU fallback. The plan is written raw, with a JSON sidecar (``trt_sidecar``).
``tensorrt`` is imported inside the functions so this module imports anywhere.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeyolo.atomic import atomic_path, atomic_write_bytes


@dataclass
class EngineOptions:
    imgsz: int = 640
    max_batch: int = 1
    dynamic_batch: bool = False
    fp16: bool = False
    int8: bool = False
    workspace_gib: float = 4.0
    dla_core: int | None = None
    target: str = "10"
    metadata: dict[str, Any] = field(default_factory=dict)


def profile_shapes(o: EngineOptions) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) input shapes: batch 1..max_batch (opt = max) when dynamic, else fixed."""
    s = (3, o.imgsz, o.imgsz)
    lo = 1 if o.dynamic_batch else o.max_batch
    return (lo, *s), (o.max_batch, *s), (o.max_batch, *s)


def trt_major(version: str) -> int:
    """'10.3.0' -> 10; compared as a number so an 11.x is not taken for 8.x."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ValueError(f"unrecognised TensorRT version {version!r}") from None


def implicit_calibration_cache(onnx_path: str | Path, calibration: Sequence[np.ndarray], folder: Path) -> Path:
    """The implicit calibrator's scale cache, named by the ONNX and the calibration images: a
    retrained model or other images never reuse stale INT8 scales (TensorRT trusts any cache it reads)."""
    import hashlib

    from .images import batches_digest
    h = hashlib.sha256(Path(onnx_path).read_bytes())
    h.update(batches_digest(calibration).encode())
    return folder / f"calib-{h.hexdigest()[:16]}.trtcache"


def build_engine(onnx_path: str | Path, engine_path: str | Path, o: EngineOptions,
                 calibration: Sequence[np.ndarray] | None = None, cache_dir: str | Path | None = None) -> Path:
    import tensorrt as trt

    from edgeyolo.runtime.sidecar import current_environment, write_sidecar
    if o.dla_core is not None and o.dynamic_batch:
        raise ValueError("--dla needs a fixed batch (DLA has no dynamic shapes; with GPU fallback the whole "
                         "network would silently run on the GPU): leave out --dynamic")
    major = trt_major(trt.__version__)
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")  # the parser finds EfficientNMS_TRT (--nms) in this registry
    builder = trt.Builder(logger)
    # EXPLICIT_BATCH is required on 8.x and deprecated (always on) from 10.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if flag is None or major >= 10 else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"{onnx_path}: TensorRT {trt.__version__} cannot parse it: {errors[:400]} "
                         "(run `edgeyolo export --check-trt` to list unsupported nodes)")
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):  # 8.4+
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(o.workspace_gib * 2**30))
    else:  # 8.2 (JetPack 4.6) has only the workspace property
        config.max_workspace_size = int(o.workspace_gib * 2**30)
    if o.fp16 or o.dla_core is not None:  # DLA runs FP16/INT8 only
        config.set_flag(trt.BuilderFlag.FP16)
    if o.int8:
        config.set_flag(trt.BuilderFlag.INT8)
        if calibration is not None:  # implicit quantization (TensorRT 8.x): the ONNX has no Q/DQ
            if major >= 10:
                raise ValueError(f"implicit INT8 calibration is deprecated from TensorRT 10 (this is "
                                 f"{trt.__version__}): use --int8 (Q/DQ)")
            from .trt_calibrator import make_calibrator
            cache = implicit_calibration_cache(onnx_path, calibration, Path(cache_dir or Path(engine_path).parent))
            config.int8_calibrator = make_calibrator(calibration, o.max_batch, cache)
    if o.dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise ValueError("--dla: this device has no DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(o.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    inp = network.get_input(0)
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, *profile_shapes(o))
    config.add_optimization_profile(profile)
    if o.int8 and calibration is not None:
        config.set_calibration_profile(profile)
    tc_path = Path(cache_dir or Path(engine_path).parent) / "timing.cache"
    timing = config.create_timing_cache(tc_path.read_bytes() if tc_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ValueError(f"TensorRT {trt.__version__} failed to build {onnx_path} (see the TensorRT log above)")
    atomic_write_bytes(engine_path, bytes(plan))
    atomic_write_bytes(tc_path, bytes(config.get_timing_cache().serialize()))
    precision = "int8" if o.int8 else "fp16" if o.fp16 else "fp32"
    opts = {k: v for k, v in asdict(o).items() if k != "metadata"}
    write_sidecar(engine_path, current_environment(), precision, o.metadata, opts)
    return Path(engine_path)


def export_torch_tensorrt(model, path: str | Path, imgsz: int, batch: int, fp16: bool, workspace_gib: float,
                          metadata: dict[str, Any]) -> Path:
    """torch-tensorrt's TorchScript path: compile the deploy model, save it with the same metadata
    extra file as the TorchScript export, so ``load_runner`` runs it."""
    import json

    import torch
    import torch_tensorrt
    model = model.eval().cuda()
    precisions = {torch.half, torch.float} if fp16 else {torch.float}
    ts = torch.jit.trace(model, torch.zeros(batch, 3, imgsz, imgsz, device="cuda"))
    trt_mod = torch_tensorrt.compile(ts, ir="ts", inputs=[torch_tensorrt.Input((batch, 3, imgsz, imgsz))],
                                     enabled_precisions=precisions, workspace_size=int(workspace_gib * 2**30))
    from .torchscript_export import METADATA_FILE
    with atomic_path(path) as tmp:
        torch.jit.save(trt_mod, str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata)})
    return Path(path)
