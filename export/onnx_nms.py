"""In-graph NMS appended to an exported ONNX graph whose output is the decoded (B, N, 5 + nc).

- ``add_onnx_nms``: ONNX NonMaxSuppression, runs in ONNX Runtime, and TensorRT's parser builds its
  INMSLayer from it (8.5+). Output ``output`` (K, 7): batch index, x1, y1, x2, y2, score (objectness
  * class probability), class. With ``rows`` the output is a fixed (rows, 7), best first, padded
  with batch index -1: what an engine gets, since a data-dependent output shape would need an
  output allocator in the runtime.
- ``add_efficient_nms``: TensorRT's ``EfficientNMS_TRT`` plugin (TensorRT >= 8.0, found by the
  parser through the plugin registry). Outputs ``num_dets`` (B, 1) int32, ``det_boxes`` (B, M, 4),
  ``det_scores`` (B, M), ``det_classes`` (B, M) int32. No ONNX Runtime kernel: engines only.
  Deprecated from TensorRT 10.12 ("no alternatives are planned"): used only on 8.2 or when asked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeyolo.atomic import atomic_path

from .onnx_export import OUTPUT_NAME, set_metadata

# The in-graph NMS settings: detect's defaults (conf 0.25, IoU 0.45) and the runtime's max_det
CONF_THRES, IOU_THRES, MAX_DET = 0.25, 0.45, 300


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _boxes_scores(model: onnx.ModelProto, nc: int, prefix: str) -> tuple[str, str]:
    """Rename the model output to a hidden tensor and append nodes computing xyxy boxes (B, N, 4)
    and scores (B, N, nc); returns their names."""
    g = model.graph
    outs = [o for o in g.output if o.name == OUTPUT_NAME]
    if not outs:
        raise ValueError(f"in-graph NMS needs the decoded '{OUTPUT_NAME}' output (not --raw)")
    if nc < 1:
        raise ValueError(f"nc must be >= 1, got {nc}")
    no = nc + 5
    dec = prefix + "decoded"
    for n in g.node:
        n.output[:] = [dec if o == OUTPUT_NAME else o for o in n.output]
    g.output.remove(outs[0])

    def sl(start: int, end: int, name: str) -> str:
        s, e, a = (_const(g, f"{prefix}{name}_{k}", np.array([v], np.int64)) for k, v in
                   (("s", start), ("e", end), ("a", 2)))
        g.node.append(helper.make_node("Slice", [dec, s, e, a], [prefix + name]))
        return prefix + name

    xy, wh, obj, cls = sl(0, 2, "xy"), sl(2, 4, "wh"), sl(4, 5, "obj"), sl(5, no, "cls")
    half = _const(g, prefix + "half", np.array(0.5, np.float32))
    g.node.extend([
        helper.make_node("Mul", [wh, half], [prefix + "hwh"]),
        helper.make_node("Sub", [xy, prefix + "hwh"], [prefix + "x1y1"]),
        helper.make_node("Add", [xy, prefix + "hwh"], [prefix + "x2y2"]),
        helper.make_node("Concat", [prefix + "x1y1", prefix + "x2y2"], [prefix + "boxes"], axis=2),
        helper.make_node("Mul", [cls, obj], [prefix + "scores"]),
    ])
    return prefix + "boxes", prefix + "scores"


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


# TensorRT's TopK takes k <= 3840 (8.x; 10.x raised it, 8.5 is the floor here)
MAX_ROWS = 3840


def add_onnx_nms(model: onnx.ModelProto, nc: int, conf_thres: float = CONF_THRES, iou_thres: float = IOU_THRES,
                 max_det_per_class: int = MAX_DET, rows: int | None = None) -> onnx.ModelProto:
    """Append ONNX NonMaxSuppression (opset >= 11); modifies and returns ``model``.

    ONNX's NonMaxSuppression bounds boxes per class only: ``max_det_per_class`` is the runtime's
    per-image ``max_det`` (300), so no class loses a box the PyTorch path (per-class NMS, then the
    best ``max_det`` of the image) keeps; the runtime applies that total after it. The thresholds
    are recorded in the metadata (``nms``): boxes under ``conf_thres`` are gone from this graph."""
    g, p = model.graph, "nms_"
    boxes, scores = _boxes_scores(model, nc, p)
    new_axes = _opset(model) >= 13  # Unsqueeze takes its axes as an input from opset 13, an attribute before

    def unsqueeze(x: str, y: str) -> onnx.NodeProto:
        if new_axes:
            return helper.make_node("Unsqueeze", [x, p + "ax1"], [y])
        return helper.make_node("Unsqueeze", [x], [y], axes=[1])
    if new_axes:
        _const(g, p + "ax1", np.array([1], np.int64))
    g.node.extend([
        helper.make_node("Transpose", [scores], [p + "scores_t"], perm=[0, 2, 1]),  # (B, nc, N)
        helper.make_node("NonMaxSuppression",
                         [boxes, p + "scores_t", _const(g, p + "max", np.array([max_det_per_class], np.int64)),
                          _const(g, p + "iou", np.array([iou_thres], np.float32)),
                          _const(g, p + "conf", np.array([conf_thres], np.float32))], [p + "sel"]),  # (K, 3)
        helper.make_node("Gather", [p + "sel", _const(g, p + "i0", np.array(0, np.int64))], [p + "b"], axis=1),
        helper.make_node("Gather", [p + "sel", _const(g, p + "i1", np.array(1, np.int64))], [p + "c"], axis=1),
        helper.make_node("Gather", [p + "sel", _const(g, p + "i2", np.array(2, np.int64))], [p + "i"], axis=1),
        unsqueeze(p + "b", p + "b1"),
        unsqueeze(p + "i", p + "i1_"),
        helper.make_node("Concat", [p + "b1", p + "i1_"], [p + "bi"], axis=1),  # (K, 2)
        helper.make_node("GatherND", [boxes, p + "bi"], [p + "kboxes"]),  # (K, 4)
        helper.make_node("GatherND", [p + "scores_t", p + "sel"], [p + "kscores"]),  # (K,)
        unsqueeze(p + "kscores", p + "kscores1"),
        helper.make_node("Cast", [p + "b1"], [p + "bf"], to=TensorProto.FLOAT),
        unsqueeze(p + "c", p + "c1"),
        helper.make_node("Cast", [p + "c1"], [p + "cf"], to=TensorProto.FLOAT),
        helper.make_node("Concat", [p + "bf", p + "kboxes", p + "kscores1", p + "cf"],
                         [OUTPUT_NAME if rows is None else p + "rows"], axis=1),
    ])
    if rows is not None:
        _fixed_rows(g, p, rows)
    g.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["num_dets" if rows is None else rows, 7]))
    nms = {"conf": conf_thres, "iou": iou_thres, "max_det_per_class": max_det_per_class}
    set_metadata(model, {"nms": nms if rows is None else {**nms, "rows": rows}})
    onnx.checker.check_model(model)
    return model


def _fixed_rows(g: onnx.GraphProto, p: str, rows: int) -> None:
    """(K, 7) -> (rows, 7): append ``rows`` padding rows (batch -1, score -1), keep the ``rows`` best
    by score (TopK with a constant k has a static output shape). Padding sorts last and its batch
    index matches no image. With several images the bound is shared: an image with more than
    rows / batch boxes can crowd out another's lowest-scored ones (the runtime's max_det is per image)."""
    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"in-graph NMS rows must be 1..{MAX_ROWS} (TensorRT's TopK limit), got {rows}")
    pad = np.zeros((rows, 7), np.float32)
    pad[:, 0], pad[:, 5], pad[:, 6] = -1, -1, -1
    g.node.extend([
        helper.make_node("Concat", [p + "rows", _const(g, p + "pad", pad)], [p + "padded"], axis=0),
        helper.make_node("Gather", [p + "padded", _const(g, p + "i5", np.array(5, np.int64))], [p + "pscores"], axis=1),
        helper.make_node("TopK", [p + "pscores", _const(g, p + "k", np.array([rows], np.int64))],
                         [p + "top", p + "topi"], axis=0, largest=1, sorted=1),
        helper.make_node("Gather", [p + "padded", p + "topi"], [OUTPUT_NAME], axis=0),
    ])


def add_efficient_nms(model: onnx.ModelProto, nc: int, conf_thres: float = CONF_THRES, iou_thres: float = IOU_THRES,
                      max_det: int = MAX_DET) -> onnx.ModelProto:
    """Append TensorRT's EfficientNMS_TRT plugin node; modifies and returns ``model``. ``max_det``
    bounds the boxes of an image (all classes), as the runtime's PyTorch-equivalent path does."""
    g, p = model.graph, "enms_"
    boxes, scores = _boxes_scores(model, nc, p)
    outs = ["num_dets", "det_boxes", "det_scores", "det_classes"]
    g.node.append(helper.make_node(
        "EfficientNMS_TRT", [boxes, scores], outs, domain="TRT", plugin_version="1", background_class=-1,
        box_coding=0, iou_threshold=float(iou_thres), max_output_boxes=int(max_det), score_activation=0,
        score_threshold=float(conf_thres)))
    if not any(o.domain == "TRT" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("TRT", 1))
    batch = g.input[0].type.tensor_type.shape.dim[0]
    b = batch.dim_param or batch.dim_value
    g.output.extend([
        helper.make_tensor_value_info("num_dets", TensorProto.INT32, [b, 1]),
        helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, [b, max_det, 4]),
        helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, [b, max_det]),
        helper.make_tensor_value_info("det_classes", TensorProto.INT32, [b, max_det]),
    ])
    set_metadata(model, {"nms": {"conf": conf_thres, "iou": iou_thres, "max_det": max_det}})
    return model


def nms_kind(asked: bool | str, target) -> str:
    """The engine's in-graph NMS: ONNX NonMaxSuppression (INMSLayer) wherever the parser builds it,
    EfficientNMS_TRT (deprecated from 10.12) on 8.2 or when asked for."""
    if asked == "efficient" or (asked in (True, "auto") and not target.nms_layer):
        return "efficient"
    return "onnx"


def write_nms(src: Path, dst: Path, nc: int, efficient: bool, rows: int | None = None) -> Path:
    """``src`` with its in-graph NMS appended, written (atomically) to ``dst``."""
    proto = onnx.load(str(src))
    proto = add_efficient_nms(proto, nc) if efficient else add_onnx_nms(proto, nc, rows=rows)
    with atomic_path(dst) as tmp:
        onnx.save(proto, str(tmp))
    return dst
