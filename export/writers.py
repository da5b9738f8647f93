"""How ``edgeyolo export`` writes each format: one writer per ``edgeyolo.formats.Format`` row (its
``writer`` names it), plus the ONNX graph step that the formats built from the ONNX run first. Each
writer takes the export's ``ExportContext`` and adds its artifacts to the report."""
from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Callable

import torch

from edgeyolo.formats import Format

from .context import ExportContext
from .onnx_nms import MAX_DET, MAX_ROWS, nms_kind, write_nms
from .report import Artifact

Writer = Callable[[ExportContext], None]


def writer_of(fmt: Format) -> Writer:
    """The writer a format row names as ``"module:function"``."""
    module, _, name = fmt.writer.partition(":")
    return getattr(importlib.import_module(module), name)


def _seconds(t0: float) -> float:
    return round(time.perf_counter() - t0, 2)


def write_onnx_graph(ctx: ExportContext) -> None:
    """The FP32 ONNX every ONNX-based format starts from; with --nms (--format onnx) its in-graph
    NMS copy; with --fp16 its FP16 copy (--format onnx, or the strongly typed engine's input)."""
    from .onnx_export import export_onnx  # noqa: PLC0415
    o = ctx.o
    t0 = time.perf_counter()
    ctx.onnx = export_onnx(ctx.deploy, ctx.artifact_path("onnx"), o.imgsz, o.batch, ctx.opset, o.dynamic, o.simplify, ctx.meta)
    a = ctx.rep.add(Artifact("onnx", str(ctx.onnx), "fp32", seconds=_seconds(t0)))
    if ctx.target.is_tensorrt:
        _check_forbidden(ctx.onnx, ctx.target.name, a)
    if o.nms and "onnx" in ctx.fnames:
        a_nms = write_nms(ctx.onnx, ctx.artifact_path("onnx", "_nms"), ctx.nc, efficient=False)
        ctx.rep.add(Artifact("onnx", str(a_nms), "fp32", notes=["in-graph NonMaxSuppression: output (K, 7)"]))
    if o.fp16 and ("onnx" in ctx.fnames or ctx.target.strongly_typed and not o.int8):
        from .fp16 import to_fp16  # noqa: PLC0415
        t0 = time.perf_counter()
        ctx.fp16_onnx = to_fp16(ctx.onnx, ctx.artifact_path("onnx", "_fp16"))
        ctx.rep.add(Artifact("onnx", str(ctx.fp16_onnx), "fp16", seconds=_seconds(t0),
                             notes=["FP16 weights and activations; "
                                    f"{'uint8' if o.uint8_input else 'FP32'} input, FP32 outputs and decode"]))


def _check_forbidden(path: Path, target_name: str, artifact: Artifact) -> None:
    from .trt_ops import forbidden_nodes  # noqa: PLC0415
    bad = forbidden_nodes(path, target_name)
    if bad:
        artifact.error = f"nodes TensorRT {target_name} rejects: {bad}"


def write_torchscript(ctx: ExportContext) -> None:
    """``<stem>.torchscript``, traced on the GPU in FP16 with --fp16, else on the CPU in FP32."""
    from .torchscript_export import export_torchscript  # noqa: PLC0415
    o = ctx.o
    half = o.fp16 and torch.cuda.is_available()
    if o.fp16 and not half:
        raise ValueError("--fp16 TorchScript needs a CUDA GPU (FP16 convs do not run on the CPU)")
    t0 = time.perf_counter()
    p = export_torchscript(ctx.deploy, ctx.artifact_path("torchscript"), o.imgsz, o.batch, {**ctx.meta, "half": half},
                           device="cuda" if half else "cpu", half=half)
    ctx.rep.add(Artifact("torchscript", str(p), "fp16" if half else "fp32", seconds=_seconds(t0)))
    ctx.deploy = ctx.deploy.float().cpu()  # the trace moved it; the formats after this one take it as it was


def write_onnx(ctx: ExportContext) -> None:
    """--format onnx: the FP32 / NMS / FP16 files come from ``write_onnx_graph``; here the INT8 model."""
    ctx.int8_onnx()


def write_engine(ctx: ExportContext) -> None:
    """``<stem>.engine``, built by this machine's TensorRT from the INT8, FP16 or FP32 ONNX (with
    --nms, from a copy with the engine's own NMS tail appended)."""
    from .tensorrt_build import EngineOptions, build_engine  # noqa: PLC0415
    o, out = ctx.o, ctx.out
    int8 = ctx.int8_onnx()
    src = int8 if int8 is not None else ctx.onnx
    if ctx.target.strongly_typed and ctx.fp16_onnx is not None and int8 is None:
        src = ctx.fp16_onnx  # TensorRT 11 has no FP16 flag: the ONNX's types are the engine's precision
    engine_meta = ctx.meta
    if o.nms:  # the engine's own NMS graph (not an artifact: the fixed-rows tail is for TensorRT)
        from .onnx_export import read_metadata  # noqa: PLC0415
        kind = nms_kind(o.nms, ctx.target)
        src = write_nms(src, out / f"{src.stem}_trtnms.onnx", ctx.nc, efficient=kind == "efficient",
                        rows=min(MAX_DET * max(o.batch, 1), MAX_ROWS))
        engine_meta = {**ctx.meta, "nms": read_metadata(src)["nms"]}
        ctx.log(f"engine input: {src.name} ({'EfficientNMS_TRT' if kind == 'efficient' else 'NonMaxSuppression'} appended)")
    eng = ctx.artifact_path("engine")
    t0 = time.perf_counter()
    calib = None
    if o.int8 == "implicit":
        from .int8.calibration import calibration_batches, calibration_source  # noqa: PLC0415
        calib = calibration_batches(calibration_source(o.calib_data, o.data), o.imgsz, o.calib_images, o.batch)
    build_engine(src, eng, EngineOptions(nhwc=o.uint8_input, fp16=o.fp16, int8=bool(o.int8), workspace_gib=o.workspace,
                                         dla_core=o.dla, dynamic_batch=o.dynamic, max_batch=max(o.batch, 1),
                                         imgsz=o.imgsz, target=ctx.target.name, metadata=engine_meta),
                 calibration=calib, cache_dir=out)
    ctx.rep.add(Artifact("engine", str(eng), "int8" if o.int8 else "fp16" if o.fp16 else "fp32", seconds=_seconds(t0)))


def write_torch_tensorrt(ctx: ExportContext) -> None:
    """``<stem>.trt.ts``: torch-tensorrt's TorchScript module, FP16 kernels allowed with --fp16."""
    from .tensorrt_build import export_torch_tensorrt  # noqa: PLC0415
    o = ctx.o
    p = export_torch_tensorrt(ctx.deploy, ctx.artifact_path("torch-tensorrt"), o.imgsz, o.batch, o.fp16, o.workspace, ctx.meta)
    ctx.rep.add(Artifact("torch-tensorrt", str(p), "fp16" if o.fp16 else "fp32"))
