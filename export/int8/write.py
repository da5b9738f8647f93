"""The INT8 step of ``edgeyolo export``: calibrate, write the Q/DQ ONNX (honouring --keep-fp16),
and for ``--int8 auto`` keep the most sensitive layers in float until the drop passes the gate."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from edgeyolo.runtime.backends import OrtBackend

from ..report import Artifact, ExportReport
from .calibration import calibration_batches, calibration_cache_path, calibration_source
from .layers import layer_groups, match_layers
from .qdq import quantize_qdq
from .search import auto_exclude
from .sensitivity import detection_error, ranked_layers

if TYPE_CHECKING:
    from ..pipeline import ExportOptions

AUTO_PROBE_BATCHES = 8  # calibration batches the sensitivity ranking compares outputs on


def write_int8(o: ExportOptions, fp32_onnx: Path, dst: Path, rep: ExportReport, nc: int, runtime: str,
               log: Callable[[str], None]) -> Path:
    """Calibrate, quantize (Q/DQ), honour --keep-fp16 / --int8 auto; adds the artifact to ``rep``
    and returns the Q/DQ model path."""
    batches = calibration_batches(calibration_source(o.calib_data, o.data), o.imgsz, o.calib_images, o.batch)
    if o.batch > 1:  # the calibrator runs the static-batch FP32 model: whole batches only (no blank padding,
        batches = [b for b in batches if len(b) == o.batch]  # which would skew the activation ranges)
        if not batches:
            raise ValueError(f"--calib-images {o.calib_images}: fewer calibration images than --batch {o.batch}")
    cache = calibration_cache_path(fp32_onnx, batches, o.calib_method, dst.parent)
    groups = layer_groups(fp32_onnx)
    keep = [n for key in o.keep_fp16 for n in match_layers(key, groups)]
    t0 = time.perf_counter()
    p = quantize_qdq(fp32_onnx, dst, batches, o.calib_method, cache=cache, exclude=keep, runtime=runtime)
    notes = [f"calibrated on {sum(len(b) for b in batches)} images ({o.calib_method}), cache {cache.name}"]
    if o.int8 == "auto":
        p, kept, final = _keep_sensitive_layers(o, fp32_onnx, p, dst, cache, batches, nc, runtime, notes)
        keep = sorted(set(keep) | set(kept))
        notes.append(f"auto: {len([k for k in kept if k in groups])} convs kept in float, final drop {final:.3f}")
    if keep:
        notes.append(f"kept in float: {len(keep)} nodes")
    log(f"int8: {dst.name} ({'; '.join(notes)}) in {time.perf_counter() - t0:.1f}s")
    rep.add(Artifact("onnx", str(p), "int8", seconds=round(time.perf_counter() - t0, 2), notes=notes))
    return p


def _keep_sensitive_layers(o: ExportOptions, fp32_onnx: Path, qdq: Path, dst: Path, cache: Path,
                           batches: list[np.ndarray], nc: int, runtime: str, notes: list[str]
                           ) -> tuple[Path, list[str], float]:
    """--int8 auto: rank the convs by sensitivity, then keep the fewest in float for the mAP drop on
    --data to pass --max-int8-drop (without --data: until the output error halves, said in
    ``notes``). Returns (model path, nodes kept in float, final drop)."""
    from ..pipeline import MAX_MAP_DROP  # noqa: PLC0415  (the pipeline imports the writers that import this)
    ref = OrtBackend(fp32_onnx)
    error = detection_error(ref, batches[: min(AUTO_PROBE_BATCHES, len(batches))], o.imgsz)
    ranking = ranked_layers(qdq, fp32_onnx, error)
    if o.data is not None:
        from ..evaluate import evaluate_map  # noqa: PLC0415
        base = evaluate_map(ref, o.data, o.imgsz, nc).map50_95 * 100
        drop = lambda path: base - evaluate_map(OrtBackend(path), o.data, o.imgsz, nc).map50_95 * 100  # noqa: E731
        limit = o.max_int8_drop if o.max_int8_drop is not None else MAX_MAP_DROP["int8"]
    else:  # no labels: keep layers until the output deviation halves (a proxy, said so in the report)
        base_err = error(qdq)
        drop = lambda path: error(path) / max(base_err, 1e-12)  # noqa: E731
        limit = 0.5
        notes.append("--int8 auto without --data: layers kept until the output error halved (no mAP)")
    return auto_exclude(fp32_onnx, dst, cache, None, ranking, drop, limit, o.calib_method, runtime)
