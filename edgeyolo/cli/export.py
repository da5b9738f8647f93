"""``edgeyolo export``: argument parsing only; the work is in ``edgeyolo.export.pipeline.run_export``.

The option tables (formats, targets) come from modules that import neither torch nor onnx, so
``edgeyolo export --help`` answers at once."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
from click.core import ParameterSource

from edgeyolo.export.int8.calibration import CALIB_METHODS  # numpy only: --help loads no onnx
from edgeyolo.export.targets import DEFAULT_TARGET, TARGETS, check_target_formats, get_target, tensorrt_target_names
from edgeyolo.formats import FORMATS, check_options, check_requirements, parse_formats

# Options checked against the FORMATS table when given explicitly.
_CHECKED = ("fp16", "int8", "calib_data", "calib_images", "calib_method", "dynamic", "opset", "simplify", "nms",
            "target", "workspace", "dla", "keep_fp16", "max_int8_drop", "uint8_input")


@click.command("export")
@click.option("--weights", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="edgeyolo checkpoint (.pt); with --check-trt also an .onnx file")
@click.option("--format", "format_", default="torchscript,onnx", show_default=True,
              help=f"comma-separated: {', '.join(FORMATS)}")
@click.option("--imgsz", default=640, show_default=True, type=int, help="square input size")
@click.option("--batch", default=1, show_default=True, type=int, help="batch size (max batch with --dynamic)")
@click.option("--fp16", is_flag=True, help="FP16 engine / TorchScript (CUDA); with onnx also <stem>_fp16.onnx "
              "(FP16 weights and activations, FP32 I/O and decode: what a strongly typed TensorRT 11 builds FP16 from)")
@click.option("--int8", type=click.Choice(["on", "auto", "implicit"]), is_flag=False, flag_value="on", default=None,
              help="Q/DQ INT8; 'auto' keeps the most sensitive layers in float; 'implicit' = TensorRT 8.x calibrator")
@click.option("--calib-data", type=click.Path(dir_okay=False, path_type=Path), help="data YAML for calibration")
@click.option("--calib-images", default=512, show_default=True, type=int)
@click.option("--calib-method", type=click.Choice(CALIB_METHODS), default="entropy", show_default=True)
@click.option("--dynamic", is_flag=True, help="dynamic batch axis")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the target's)")
@click.option("--simplify/--no-simplify", default=True, show_default=True)
@click.option("--nms", type=click.Choice(["auto", "onnx", "efficient"]), is_flag=False, flag_value="auto", default=None,
              help="in-graph NMS: ONNX NonMaxSuppression (TensorRT builds INMSLayer from it); 'efficient' = "
                   "TensorRT's EfficientNMS_TRT plugin for engines (deprecated from 10.12; 'auto' uses it on 8.2 only)")
@click.option("--raw", is_flag=True, help="export the raw head logits, no decode")
@click.option("--uint8-input", is_flag=True,
              help="input the letterboxed image as OpenCV holds it, (B, H, W, 3) uint8 BGR: BGR->RGB, /255 and "
                   "the layout change run in the graph, the device's CPU only letterboxes")
@click.option("--target", "--trt-target", "target", default=None,
              callback=lambda ctx, param, value: _target_name(value),
              help=f"runtime the graph is prepared for: a TensorRT version ({', '.join(t for t in TARGETS if t != 'ort')}"
                   "; any version string maps to one), or 'ort' for ONNX Runtime on a CPU (faster Mish, uint8 INT8; "
                   f"TensorRT cannot build it) [default: {DEFAULT_TARGET}]")
@click.option("--workspace", type=float, default=4.0, show_default=True, help="TensorRT workspace, GiB")
@click.option("--dla", type=int, default=None, help="DLA core (Jetson), GPU fallback on")
@click.option("--keep-fp16", default="", help="comma-separated layers kept out of INT8 (e.g. neck.layers.18)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output folder (default: beside the weights)")
@click.option("--verify/--no-verify", default=True, show_default=True, help="parity (and mAP with --data) checks")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="data YAML: mAP of each artifact against PyTorch's (the export fails past the gate)")
@click.option("--max-map-drop", type=float, default=None, help="FP32/FP16 mAP gate in points (default 0.5)")
@click.option("--max-int8-drop", type=float, default=None, help="INT8 mAP gate in points (default 1.0)")
@click.option("--check-trt", is_flag=True, help="only list the nodes --target's ONNX parser cannot import")
@click.pass_context
def export(ctx: click.Context, weights: Path, format_: str, check_trt: bool, **kw) -> None:
    """Turn a trained checkpoint into deployable artifacts and prove nothing was lost on the way."""
    if check_trt:
        _check_trt(weights, kw)
        return
    formats = parse_formats(format_)
    given = {k: kw[k] for k in _CHECKED if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    check_options(formats, given)
    check_target_formats(get_target(kw["target"]), [f.name for f in formats])
    check_requirements(formats)
    if kw["int8"] == "implicit" and "engine" not in {f.name for f in formats}:
        raise ValueError("--int8 implicit is TensorRT's calibrator: it needs --format engine")
    from edgeyolo.export.pipeline import ExportOptions, run_export
    opts = ExportOptions(weights=weights, formats=formats, **{k: v for k, v in kw.items() if k != "keep_fp16"},
                         keep_fp16=[s for s in kw["keep_fp16"].split(",") if s.strip()])
    rep = run_export(opts, log=click.echo)
    path = rep.write(Path(opts.out or weights.parent) / "export.json")
    for a in rep.artifacts:
        click.echo(f"  {a.format:<14} {a.precision:<5} {a.size_mb:>8.1f} MB  {a.path}")
    for p in rep.pending:
        click.echo(f"  pending: {p}")
    click.echo(f"report: {path}")
    if rep.failed:
        for e in rep.errors:
            click.echo(f"edgeyolo: error: {e}", err=True)
        click.echo("edgeyolo: warning: the artifacts were kept; do not deploy them before fixing this", err=True)
        sys.exit(1)


def _target_name(value: str | None) -> str | None:
    """--target as its TARGETS key ("11.4.0" -> "11"); an unknown one is a usage error."""
    if value is None:
        return None
    try:
        return get_target(value).name
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _check_trt(weights: Path, kw: dict) -> None:
    from edgeyolo.export.trt_ops import check_trt
    target = kw["target"] or DEFAULT_TARGET
    if not get_target(target).is_tensorrt:
        raise ValueError(f"--check-trt lints for a TensorRT parser; choose a TensorRT --target ({tensorrt_target_names()})")
    if weights.suffix == ".onnx":
        problems = check_trt(weights, target)
    else:
        from edgeyolo.models.checkpoint import load_model

        from edgeyolo.export.deploy import prepare_model
        from edgeyolo.export.onnx_export import export_onnx
        from edgeyolo.export.targets import resolve_opset
        model, _ = load_model(weights)
        t = get_target(target)
        deploy, _ = prepare_model(model, t, decode=not kw["raw"])
        with tempfile.TemporaryDirectory() as tmp:
            p = export_onnx(deploy, Path(tmp) / "m.onnx", kw["imgsz"], kw["batch"], resolve_opset(t, kw["opset"]),
                            kw["dynamic"], kw["simplify"])
            problems = check_trt(p, target)
    if not problems:
        click.echo(f"{weights.name}: every node imports in TensorRT {target}")
        return
    for p in problems:
        click.echo(p)
    click.echo(f"edgeyolo: error: {len(problems)} problem{'s' if len(problems) != 1 else ''} for TensorRT {target}", err=True)
    sys.exit(1)
