"""The export run behind ``edgeyolo export``: prepare the graph, write each format, verify it
against PyTorch, gate on mAP, write export.json. ``edgeyolo.cli.export`` only parses arguments."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from edgeyolo import __version__
from edgeyolo.formats import FORMATS, Format
from edgeyolo.ops.metrics import paired_bootstrap
from edgeyolo.runtime.backends import TorchModuleBackend
from edgeyolo.runtime.info import FLOAT_INPUT, UINT8_INPUT

from .adapters import load_float_input
from .context import ExportContext
from .deploy import DeployModel, prepare_model
from .report import ExportReport
from .targets import check_target_formats, engine_target, get_target, resolve_opset
from .verify import FP32_REL_TOL, parity
from .writers import write_onnx_graph, writer_of

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
    """Write every requested format (the ONNX graph first when one is built from it), then verify."""
    from edgeyolo.models.checkpoint import load_model
    _check_options(o)
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
    deploy, prep = prepare_model(model, target, decode=not o.raw, uint8_input=o.uint8_input)
    log(f"graph: {prep.summary()} ({target.label} target, opset {opset})")
    rep = ExportReport(str(o.weights), str(model.cfg.get("name", "?")), o.imgsz, o.batch, target.name, opset, prep.as_dict())
    meta = {"names": names, "nc": nc, "stride": [int(s) for s in model.stride.tolist()],
            "anchors": model.head.anchors.tolist(), "imgsz": o.imgsz,
            "batch": o.batch, "model": rep.model, "decode": not o.raw, "target": target.name, "opset": opset,
            "edgeyolo": __version__, "source": Path(o.weights).name, "input": UINT8_INPUT if o.uint8_input else FLOAT_INPUT}
    ctx = ExportContext(o, target, opset, deploy, meta, rep, out, Path(o.weights).stem, nc, log)
    if any(f.from_onnx for f in o.formats):
        write_onnx_graph(ctx)
    for fmt in FORMATS.values():  # the table's order, whatever the order asked in
        if fmt in o.formats:
            writer_of(fmt)(ctx)
    if o.verify:
        _verify(o, rep, DeployModel(model, decode=not o.raw).eval(), nc, log)
    return rep


def _check_options(o: ExportOptions) -> None:
    """Refuse combinations no format can write, one line each."""
    if o.imgsz % 32:
        raise ValueError(f"--imgsz must be a multiple of 32 (the largest stride), got {o.imgsz}")
    if o.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {o.batch}")
    if o.nms and o.raw:
        raise ValueError("--nms needs decoded boxes; it cannot be combined with --raw")
    if o.uint8_input and (not all("uint8_input" in f.options for f in o.formats) or o.int8):
        raise ValueError("--uint8-input takes --format onnx or engine without --int8 (INT8 calibration and "
                         "TorchScript feed float NCHW)")


def _verify(o: ExportOptions, rep: ExportReport, reference: DeployModel, nc: int, log) -> None:
    from .images import verification_batches
    batches = verification_batches(o.data, o.imgsz, o.verify_images, o.batch)
    ref = TorchModuleBackend(reference)
    ref_map = None
    if o.data is not None and not o.raw:
        from .evaluate import evaluate_map
        ref_map = evaluate_map(ref, o.data, o.imgsz, nc)
        rep.pytorch_map = ref_map.as_dict()
        log(f"pytorch: mAP50-95 {ref_map.map50_95 * 100:.2f} on {ref_map.images} images")
    for a in rep.artifacts:
        fmt = FORMATS[a.format]
        if not fmt.runnable_here():
            rep.pending.append(f"{Path(a.path).name}: not verified here (needs {', '.join(fmt.missing())})")
            continue
        if a.path.endswith("_nms.onnx"):
            try:
                load_float_input(a.path)(batches[0])
            except Exception as e:  # the in-graph NMS model must at least run
                a.error = f"does not run: {str(e).splitlines()[0][:200]}"
                rep.errors.append(f"{Path(a.path).name}: {a.error}")
            continue
        # an FP16 TorchScript is checked where it is meant to run (CPU half kernels are slow, not absent)
        runner = load_float_input(a.path, "cuda" if a.precision == "fp16" and torch.cuda.is_available() else "cpu")
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
