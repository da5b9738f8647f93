"""TensorRT engine builder (``[trt]`` extra), against the public Python API of TensorRT 8.5
(JetPack 5), 10.3 (JetPack 6), 10.16 (JetPack 7.2) and 11.x, held to their recorded surfaces
(``export/trt_surface``): explicit batch, an optimization profile for dynamic batch, FP16 / INT8
(Q/DQ ONNX, or the implicit calibrator on 8.x; builder flags up to 10.x, the ONNX's own types on
strongly typed 11.x), workspace pool limit, timing cache, DLA with GPU fallback. The plan is written raw, with a JSON sidecar (``trt_sidecar``).
``tensorrt`` is imported inside the functions so this module imports anywhere.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeyolo.atomic import atomic_path, atomic_write_bytes

from .int8.calibration import implicit_calibration_cache


@dataclass
class EngineOptions:
    imgsz: int = 640
    max_batch: int = 1
    dynamic_batch: bool = False
    fp16: bool = False
    int8: bool = False
    workspace_gib: float = 4.0
    dla_core: int | None = None
    target: str = "10.3"
    nhwc: bool = False  # a (B, H, W, 3) input (export --uint8-input), else (B, 3, H, W)
    metadata: dict[str, Any] = field(default_factory=dict)


def profile_shapes(o: EngineOptions) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) input shapes: batch 1..max_batch (opt = max) when dynamic, else fixed."""
    s = (o.imgsz, o.imgsz, 3) if o.nhwc else (3, o.imgsz, o.imgsz)
    lo = 1 if o.dynamic_batch else o.max_batch
    return (lo, *s), (o.max_batch, *s), (o.max_batch, *s)


def trt_major(version: str) -> int:
    """'10.3.0' -> 10; compared as a number so an 11.x is not taken for 8.x (nor for a 10.x: 11 is
    strongly typed only, without precision flags or calibrators)."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ValueError(f"unrecognised TensorRT version {version!r}") from None


def build_engine(onnx_path: str | Path, engine_path: str | Path, o: EngineOptions,
                 calibration: Sequence[np.ndarray] | None = None, cache_dir: str | Path | None = None) -> Path:
    """Parse ``onnx_path`` and write the serialized plan to ``engine_path`` with its sidecar.

    Version checks follow one convention, which tests/test_trt_surface.py reads: a name that a
    supported TensorRT lacks is used only under ``major <op> N`` or ``hasattr(obj, "name")``
    (an ``if`` around it, or an ``if ...: raise`` before it in the same block)."""
    import tensorrt as trt

    from edgeyolo.runtime.sidecar import current_environment, write_sidecar
    if o.dla_core is not None and o.dynamic_batch:
        raise ValueError("--dla needs a fixed batch (DLA has no dynamic shapes; with GPU fallback the whole "
                         "network would silently run on the GPU): leave out --dynamic")
    major = trt_major(trt.__version__)
    if major >= 11:  # strongly typed only: the ONNX's own tensor types are the precision
        _check_strongly_typed(onnx_path, o, calibration, trt.__version__)
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")  # the parser finds EfficientNMS_TRT (--nms efficient) in this registry
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, major))
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
    if major < 11:  # weakly typed: precision comes from builder flags (deprecated from 10.12, gone in 11)
        if o.fp16 or o.dla_core is not None:  # DLA runs FP16/INT8 only
            config.set_flag(trt.BuilderFlag.FP16)
        if o.int8:  # Q/DQ nodes (and the implicit calibrator) need INT8 kernels allowed
            config.set_flag(trt.BuilderFlag.INT8)
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
    if o.int8 and calibration is not None:  # implicit quantization: the ONNX has no Q/DQ
        cache = implicit_calibration_cache(onnx_path, calibration, Path(cache_dir or Path(engine_path).parent))
        _set_implicit_calibrator(trt, major, config, profile, calibration, o.max_batch, cache)
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


def _network_flags(trt: Any, major: int) -> int:
    """EXPLICIT_BATCH before 10 (required there; 10 ignores it, 11 removed it). STRONGLY_TYPED on 11:
    11 ignores it (always strongly typed) but keeps it, and it states what the build assumes. Not on
    10.x, where it exists too: the weakly typed network is what the precision flags act on."""
    if major < 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if major >= 11:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def _set_implicit_calibrator(trt: Any, major: int, config: Any, profile: Any, calibration: Sequence[np.ndarray],
                             batch: int, cache: Path) -> None:
    if major >= 10:
        raise ValueError(f"implicit INT8 calibration is deprecated from TensorRT 10 (this is "
                         f"{trt.__version__}): use --int8 (Q/DQ)")
    from .int8.trt_calibrator import make_calibrator
    config.int8_calibrator = make_calibrator(calibration, batch, cache)
    config.set_calibration_profile(profile)


def onnx_is_fp16(onnx_path: str | Path) -> bool:
    """True when the graph's weights are FP16 (what ``export --fp16`` writes for a strongly typed target)."""
    import onnx
    from onnx import TensorProto
    model = onnx.load(str(onnx_path), load_external_data=False)
    return any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)


def _check_strongly_typed(onnx_path: str | Path, o: EngineOptions, calibration: Any, version: str) -> None:
    """TensorRT 11 builds exactly the types in the ONNX: refuse what it would silently build in FP32."""
    if o.int8 and calibration is not None:
        raise ValueError(f"TensorRT {version} has no implicit INT8 calibration (removed in 11): use --int8 (Q/DQ)")
    if o.fp16 and not o.int8 and not onnx_is_fp16(onnx_path):
        raise ValueError(f"{onnx_path}: an FP32 ONNX builds an FP32 engine on TensorRT {version} (strongly "
                         "typed): build --fp16 from the FP16 ONNX (`edgeyolo export --format onnx --fp16 --target 11`)")
    if o.dla_core is not None and not (o.fp16 or o.int8):
        raise ValueError(f"--dla on TensorRT {version} needs --fp16 or --int8: DLA runs FP16/INT8 only, and a "
                         "strongly typed network takes its precision from the ONNX")


def export_torch_tensorrt(model, path: str | Path, imgsz: int, batch: int, fp16: bool, workspace_gib: float,
                          metadata: dict[str, Any]) -> Path:
    """torch-tensorrt's TorchScript path: compile the deploy model, save it with the same metadata
    extra file as the TorchScript export, so ``load_backend`` runs it."""
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
