"""The export run behind ``edgeyolo export``: prepare the graph, write each format, verify it
against PyTorch, gate on mAP, write export.json. ``edgeyolo.cli.export`` only parses arguments."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from edgeyolo import __version__
from edgeyolo.atomic import atomic_path
from edgeyolo.ops.metrics import paired_bootstrap
from edgeyolo.runtime.info import FLOAT_INPUT, UINT8_INPUT

from .deploy import DeployModel, prepare_model
from .formats import Format
from .onnx_nms import MAX_DET, MAX_ROWS, nms_kind, write_nms
from .report import Artifact, ExportReport
from .runtime import OrtRunner, Runner, TorchRunner, fit_batch, load_runner
from .targets import check_target_formats, engine_target, get_target, resolve_opset
from .verify import FP32_REL_TOL, parity

MAX_MAP_DROP = {"fp32": 0.5, "fp16": 0.5, "int8": 1.0}  # mAP points


@dataclass
class ExportOptions:
    weights: Path
    formats: list[Format]
    imgsz: int = 640
    batch: int = 1
    fp16: bool = False
    int8: str | None = None  # None | "on" | "auto" | "implicit"
    calib_data: Path | None = None
    calib_images: int = 512
    calib_method: str = "entropy"
    dynamic: bool = False
    opset: int | None = None
    simplify: bool = True
    nms: bool | str = False  # False | "auto" (True) | "onnx" | "efficient": see nms_kind
    raw: bool = False
    uint8_input: bool = False  # (B, H, W, 3) uint8 BGR in; BGR->RGB, /255 and the layout change in the graph
    target: str | None = None  # --target: a TensorRT version or "ort"
    workspace: float = 4.0
    dla: int | None = None
    keep_fp16: list[str] = field(default_factory=list)
    out: Path | None = None
    verify: bool = True
    data: Path | None = None
    max_map_drop: float | None = None
    max_int8_drop: float | None = None
    verify_images: int = 4


def run_export(o: ExportOptions, log: Callable[[str], None] = print) -> ExportReport:
    from edgeyolo.models.checkpoint import load_model
    if o.imgsz % 32:
        raise ValueError(f"--imgsz must be a multiple of 32 (the largest stride), got {o.imgsz}")
    if o.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {o.batch}")
    if o.nms and o.raw:
        raise ValueError("--nms needs decoded boxes; it cannot be combined with --raw")
    if o.uint8_input and (not {f.name for f in o.formats} <= {"onnx", "engine"} or o.int8):
        raise ValueError("--uint8-input takes --format onnx or engine without --int8 (INT8 calibration and "
                         "TorchScript feed float NCHW)")
    model, ckpt = load_model(o.weights)
    names, nc = list(ckpt["names"]), model.nc
    target = get_target(o.target)
    fnames = {f.name for f in o.formats}
    if "engine" in fnames:  # built by this machine's TensorRT
        import tensorrt as trt
        target = engine_target(o.target, trt.__version__)
    check_target_formats(target, [f.name for f in o.formats])
    opset = resolve_opset(target, o.opset)
    out = Path(o.out) if o.out else Path(o.weights).parent
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(o.weights).stem
    deploy, prep = prepare_model(model, target, decode=not o.raw, uint8_input=o.uint8_input)
    log(f"graph: {prep.summary()} ({target.label} target, opset {opset})")
    rep = ExportReport(str(o.weights), str(model.cfg.get("name", "?")), o.imgsz, o.batch, target.name, opset, prep.as_dict())
    meta = {"names": names, "nc": nc, "stride": [int(s) for s in model.stride.tolist()],
            "anchors": model.head.anchors.tolist(), "imgsz": o.imgsz,
            "batch": o.batch, "model": rep.model, "decode": not o.raw, "target": target.name, "opset": opset,
            "edgeyolo": __version__, "source": Path(o.weights).name, "input": UINT8_INPUT if o.uint8_input else FLOAT_INPUT}

    onnx_path = None
    if fnames & {"onnx", "engine"}:
        from .onnx_export import export_onnx
        t0 = time.perf_counter()
        onnx_path = export_onnx(deploy, out / f"{stem}.onnx", o.imgsz, o.batch, opset, o.dynamic, o.simplify, meta)
        a = rep.add(Artifact("onnx", str(onnx_path), "fp32", seconds=round(time.perf_counter() - t0, 2)))
        if target.is_tensorrt:
            _check_forbidden(onnx_path, target, a)
        if o.nms and "onnx" in fnames:
            a_nms = write_nms(onnx_path, out / f"{stem}_nms.onnx", nc, efficient=False)
            rep.add(Artifact("onnx", str(a_nms), "fp32", notes=["in-graph NonMaxSuppression: output (K, 7)"]))
    fp16_path = None
    if onnx_path is not None and o.fp16 and ("onnx" in fnames or target.strongly_typed and not o.int8):
        from .fp16 import to_fp16
        t0 = time.perf_counter()
        fp16_path = to_fp16(onnx_path, out / f"{stem}_fp16.onnx")
        rep.add(Artifact("onnx", str(fp16_path), "fp16", seconds=round(time.perf_counter() - t0, 2),
                         notes=["FP16 weights and activations; "
                                f"{'uint8' if o.uint8_input else 'FP32'} input, FP32 outputs and decode"]))
    if "torchscript" in fnames:
        from .torchscript_export import export_torchscript
        half = o.fp16 and torch.cuda.is_available()
        if o.fp16 and not half:
            raise ValueError("--fp16 TorchScript needs a CUDA GPU (FP16 convs do not run on the CPU)")
        t0 = time.perf_counter()
        p = export_torchscript(deploy, out / f"{stem}.torchscript", o.imgsz, o.batch, {**meta, "half": half},
                               device="cuda" if half else "cpu", half=half)
        rep.add(Artifact("torchscript", str(p), "fp16" if half else "fp32", seconds=round(time.perf_counter() - t0, 2)))
        deploy = deploy.float().cpu()

    int8_path = None
    if o.int8 and o.int8 != "implicit":
        int8_path = _int8(o, onnx_path, out / f"{stem}_int8.onnx", rep, nc, target.runtime, log)
    if "engine" in fnames:
        from .tensorrt_build import EngineOptions, build_engine
        src = int8_path if int8_path is not None else onnx_path
        if target.strongly_typed and fp16_path is not None and int8_path is None:
            src = fp16_path  # TensorRT 11 has no FP16 flag: the ONNX's types are the engine's precision
        engine_meta = meta
        if o.nms:  # the engine's own NMS graph (not an artifact: the fixed-rows tail is for TensorRT)
            from .onnx_export import read_metadata
            kind = nms_kind(o.nms, target)
            src = write_nms(src, out / f"{src.stem}_trtnms.onnx", nc, efficient=kind == "efficient",
                            rows=min(MAX_DET * max(o.batch, 1), MAX_ROWS))
            engine_meta = {**meta, "nms": read_metadata(src)["nms"]}
            log(f"engine input: {src.name} ({'EfficientNMS_TRT' if kind == 'efficient' else 'NonMaxSuppression'} appended)")
        eng = out / f"{stem}.engine"
        t0 = time.perf_counter()
        calib = None
        if o.int8 == "implicit":
            from .images import calibration_batches
            calib = calibration_batches(_calib_source(o), o.imgsz, o.calib_images, o.batch)
        build_engine(src, eng, EngineOptions(nhwc=o.uint8_input, fp16=o.fp16, int8=bool(o.int8), workspace_gib=o.workspace, dla_core=o.dla,
                                             dynamic_batch=o.dynamic, max_batch=max(o.batch, 1), imgsz=o.imgsz,
                                             target=target.name, metadata=engine_meta),
                     calibration=calib, cache_dir=out)
        rep.add(Artifact("engine", str(eng), "int8" if o.int8 else "fp16" if o.fp16 else "fp32",
                         seconds=round(time.perf_counter() - t0, 2)))
    if "torch-tensorrt" in fnames:
        from .tensorrt_build import export_torch_tensorrt
        p = export_torch_tensorrt(deploy, out / f"{stem}.trt.ts", o.imgsz, o.batch, o.fp16, o.workspace, meta)
        rep.add(Artifact("torch-tensorrt", str(p), "fp16" if o.fp16 else "fp32"))

    if o.verify:
        _verify(o, rep, DeployModel(model, decode=not o.raw).eval(), nc, log)
    return rep


def _check_forbidden(path: Path, target, artifact: Artifact) -> None:
    from .trt_ops import forbidden_nodes
    bad = forbidden_nodes(path, target.name)
    if bad:
        artifact.error = f"nodes TensorRT {target.name} rejects: {bad}"


def _calib_source(o: ExportOptions) -> Path:
    if o.calib_data is not None:
        return o.calib_data
    if o.data is not None:
        return o.data
    from edgeyolo.data import synthetic_data_yaml
    warnings.warn("no --calib-data: calibrating INT8 on the built-in synthetic set; pass your own images", stacklevel=3)
    return synthetic_data_yaml()


def _int8(o: ExportOptions, fp32_onnx: Path | None, dst: Path, rep: ExportReport, nc: int, runtime: str, log) -> Path:
    """Calibrate, quantize (Q/DQ), honour --keep-fp16 / --int8 auto; returns the Q/DQ model path."""
    from .images import calibration_batches
    from .quantize import auto_exclude, calibration_cache_path, layer_groups, quantize_qdq, ranked_layers
    if fp32_onnx is None:  # pragma: no cover - int8 applies to onnx/engine, which export the ONNX first
        raise ValueError("--int8 needs the ONNX export")
    batches = calibration_batches(_calib_source(o), o.imgsz, o.calib_images, o.batch)
    if o.batch > 1:  # the calibrator runs the static-batch FP32 model: whole batches only (no blank padding,
        batches = [b for b in batches if len(b) == o.batch]  # which would skew the activation ranges)
        if not batches:
            raise ValueError(f"--calib-images {o.calib_images}: fewer calibration images than --batch {o.batch}")
    cache = calibration_cache_path(fp32_onnx, batches, o.calib_method, dst.parent)
    groups = layer_groups(fp32_onnx)
    keep = [n for key in o.keep_fp16 for n in _match_layers(key, groups)]
    t0 = time.perf_counter()
    p = quantize_qdq(fp32_onnx, dst, batches, o.calib_method, cache=cache, exclude=keep, runtime=runtime)
    notes = [f"calibrated on {sum(len(b) for b in batches)} images ({o.calib_method}), cache {cache.name}"]
    if o.int8 == "auto":
        ref = OrtRunner(fp32_onnx)
        error = detection_error(ref, batches[: min(8, len(batches))], o.imgsz)
        ranking = ranked_layers(p, fp32_onnx, error)
        if o.data is not None:
            from .evaluate import evaluate_map
            base = evaluate_map(ref, o.data, o.imgsz, nc).map50_95 * 100
            drop = lambda path: base - evaluate_map(OrtRunner(path), o.data, o.imgsz, nc).map50_95 * 100  # noqa: E731
            limit = o.max_int8_drop if o.max_int8_drop is not None else MAX_MAP_DROP["int8"]
        else:  # no labels: keep layers until the output deviation halves (a proxy, said so in the report)
            base_err = error(p)
            drop = lambda path: error(path) / max(base_err, 1e-12)  # noqa: E731
            limit = 0.5
            notes.append("--int8 auto without --data: layers kept until the output error halved (no mAP)")
        p, kept, final = auto_exclude(fp32_onnx, dst, cache, None, ranking,
                                      drop, limit, o.calib_method, runtime)
        keep = sorted(set(keep) | set(kept))
        notes.append(f"auto: {len([k for k in kept if k in groups])} convs kept in float, final drop {final:.3f}")
    if keep:
        notes.append(f"kept in float: {len(keep)} nodes")
    log(f"int8: {dst.name} ({'; '.join(notes)}) in {time.perf_counter() - t0:.1f}s")
    rep.add(Artifact("onnx", str(p), "int8", seconds=round(time.perf_counter() - t0, 2), notes=notes))
    return p


def _match_layers(key: str, groups: dict[str, list[str]]) -> list[str]:
    """--keep-fp16 entries: a conv node name or a module path (``neck.layers.10``, ``backbone.layers.3``)."""
    slash = "/" + key.strip().strip("/").replace(".", "/").replace("/layers/", "/layers.").replace("/m/", "/m.") + "/"
    hits = [n for conv, members in groups.items() if conv == key or slash in conv + "/" for n in members]
    if not hits:
        raise ValueError(f"--keep-fp16 {key!r} matches no conv layer (e.g. 'neck.layers.10' or an ONNX Conv node name)")
    return hits


def detection_error(ref: Runner, probe: list[np.ndarray], imgsz: int) -> Callable[[Any], float]:
    """model (ModelProto or path) -> its mean decoded-detection deviation from ``ref`` on the
    ``probe`` batches: what per-layer sensitivity ranks by (fast, and needs no labels)."""
    import onnx
    refs = [ref(x)[0] for x in probe]

    def error(model: Any) -> float:
        run = fit_batch(OrtRunner(model.SerializeToString()) if isinstance(model, onnx.ModelProto) else OrtRunner(model))
        return float(np.mean([_det_error(r, run(x)[0], imgsz) for r, x in zip(refs, probe)]))
    return error


def _det_error(ref: np.ndarray, out: np.ndarray, imgsz: int) -> float:
    """Mean deviation of decoded detections: boxes in units of the image size, plus scores."""
    return float(np.abs(ref[..., :4] - out[..., :4]).mean() / imgsz + np.abs(ref[..., 4:] - out[..., 4:]).mean())


def _verify(o: ExportOptions, rep: ExportReport, reference: DeployModel, nc: int, log) -> None:
    from .images import verification_batches
    batches = verification_batches(o.data, o.imgsz, o.verify_images, o.batch)
    ref = TorchRunner(reference)
    ref_map = None
    if o.data is not None and not o.raw:
        from .evaluate import evaluate_map
        ref_map = evaluate_map(ref, o.data, o.imgsz, nc)
        rep.pytorch_map = ref_map.as_dict()
        log(f"pytorch: mAP50-95 {ref_map.map50_95 * 100:.2f} on {ref_map.images} images")
    for a in rep.artifacts:
        from .formats import FORMATS
        fmt = FORMATS[a.format]
        if not fmt.runnable_here():
            rep.pending.append(f"{Path(a.path).name}: not verified here (needs {', '.join(fmt.missing())})")
            continue
        if a.path.endswith("_nms.onnx"):
            try:
                load_runner(a.path)(batches[0])
            except Exception as e:  # the in-graph NMS model must at least run
                a.error = f"does not run: {str(e).splitlines()[0][:200]}"
                rep.errors.append(f"{Path(a.path).name}: {a.error}")
            continue
        # an FP16 TorchScript is checked where it is meant to run (CPU half kernels are slow, not absent)
        runner = load_runner(a.path, "cuda" if a.precision == "fp16" and torch.cuda.is_available() else "cpu")
        par = parity(ref, runner, batches, decoded=not o.raw)
        a.parity = par.as_dict()
        log(f"{Path(a.path).name}: {par.line()}")
        if a.precision == "fp32" and not par.ok(10 * FP32_REL_TOL):
            rep.errors.append(f"{Path(a.path).name}: outputs differ from PyTorch ({par.line()})")
        if a.error:
            rep.errors.append(f"{Path(a.path).name}: {a.error}")
        if ref_map is not None:
            from .evaluate import evaluate_map
            m = evaluate_map(runner, o.data, o.imgsz, nc)
            drop = (ref_map.map50_95 - m.map50_95) * 100
            lo, hi = (100 * v for v in paired_bootstrap(ref_map.evaluator, m.evaluator))
            a.map = {**m.as_dict(), "drop": round(drop, 3), "drop_ci95": [round(lo, 3), round(hi, 3)]}
            limit = (o.max_int8_drop if a.precision == "int8" else o.max_map_drop)
            limit = MAX_MAP_DROP[a.precision] if limit is None else limit
            log(f"{Path(a.path).name}: mAP50-95 {m.map50_95 * 100:.2f} (drop {drop:.2f}, 95% interval {lo:.2f} to "
                f"{hi:.2f} over {m.images} images, gate {limit})")
            if drop <= limit < hi:  # passes, but the set is too small to be sure it would on more images
                log(f"{Path(a.path).name}: note: the drop's interval reaches past the gate; check it on a larger "
                    "validation set before shipping")
            if drop > limit:
                rep.errors.append(f"{Path(a.path).name}: mAP drop {drop:.2f} > {limit} points (artifact kept)")
