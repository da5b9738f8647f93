"""INT8 as explicit quantization: a Q/DQ ONNX (QuantizeLinear/DequantizeLinear pairs) that
TensorRT >= 8 builds and ONNX Runtime runs, so its accuracy can be measured on the CPU.

Why onnxruntime.quantization rather than hand-written Q/DQ insertion: ``quantize_static`` with
``QuantFormat.QDQ`` does exactly the TensorRT recipe when asked (per-channel symmetric int8
weights on axis 0, per-tensor activations, MinMax / Entropy (KL, as TensorRT's calibrator) /
Percentile calibration, ``nodes_to_exclude`` for layers kept in higher precision), caches the
calibration ranges, and is maintained against ORT's own QDQ fusions.

Two placements, one per runtime (``runtime``):
- TensorRT: Q/DQ on the inputs of convs only (NVIDIA's placement guidance for weighted ops); the
  builder fuses the conv, its activation and the next conv's Q. Int8 (not uint8) activations and
  weights, symmetric, zero point 0 everywhere (``check_trt_qdq`` verifies it on the written model).
- ONNX Runtime: conv outputs quantized too, so ORT fuses DQ -> Conv -> Q into one QLinearConv;
  asymmetric uint8 activations (ORT's U8S8 kernels; S8S8 Q/DQ falls back to float convs and was
  1.2-1.5x slower than FP32 here). A ReLU / ReLU6 after a conv is folded into that conv's uint8
  range (zero point 0, saturating at the calibrated max) instead of running in float between a DQ
  and a Q (yolov4-mbv3l's INT8 went from 0.64x to 0.59x of FP32, benchmarks/README.md). Outputs
  feeding the float decode stay unrounded. Weights use 7 of their 8 bits (``reduce_range``): on
  x86 CPUs without VNNI (AVX2 only, e.g. AMD Zen 2/3, Intel before Ice Lake) ORT's U8S8 kernels add
  pairs of uint8 x int8 products in int16 (VPMADDUBSW), which saturates with full-range weights;
  a conv with seeded weights was off by 8 % of its range on such a CPU, and by 1.6 % with 7-bit
  weights ([-64, 64]: 255 x 64 x 2 < 32,767 cannot saturate) on any CPU. TensorRT's placement keeps 8.
"""
from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from edgeyolo.atomic import atomic_path

from ..targets import ONNXRUNTIME, TENSORRT
from .calibration import calibration_reader, ort_method
from .graph import decode_nodes, drop_dead, load, unround

# Activations ORT's Q/DQ quantizer removes when their input is a quantized conv output and
# activations are asymmetric (the ONNX Runtime placement): the Q's range [0, max] does the clamp.
FOLDED_ACTIVATIONS = ("Relu", "Clip")


def quantize_qdq(fp32_onnx: str | Path, out: str | Path, batches: Sequence[np.ndarray] | None, method: str = "entropy",
                 cache: str | Path | None = None, exclude: Sequence[str] = (), only: Sequence[str] | None = None,
                 runtime: str = TENSORRT, full_range_weights: bool | None = None) -> Path:
    """Write the Q/DQ model of ``fp32_onnx`` to ``out`` for ``runtime`` (see the module docstring).

    ``batches`` (float32 (B, 3, H, W)) feed calibration unless ``cache`` already holds ranges (then
    they may be None). ``exclude``: node names kept in float (TensorRT then picks FP16/FP32 for
    them). ``only``: quantize just these nodes (per-layer sensitivity). ``full_range_weights``: all 8
    bits of the weights (default: TensorRT yes, ONNX Runtime no, see the module docstring).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # noqa: PLC0415
    if runtime not in (TENSORRT, ONNXRUNTIME):
        raise ValueError(f"runtime must be {TENSORRT!r} or {ONNXRUNTIME!r}, got {runtime!r}")
    trt = runtime == TENSORRT
    full_range = trt if full_range_weights is None else full_range_weights
    reader, extra = calibration_reader(batches)
    # QuantizeBias False: ORT would store biases as INT32 behind a DequantizeLinear, which TensorRT's
    # parser rejects; TensorRT quantizes the bias itself when it fuses the conv.
    extra.update({"ActivationSymmetric": trt, "WeightSymmetric": True, "QuantizeBias": False})
    if trt:
        extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    fp32 = onnx.load(str(fp32_onnx))
    decode = decode_nodes(fp32)
    exclude = list(exclude) + decode + ([] if trt else _unfoldable_clips(fp32))
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # ORT's per-tensor chatter
    with atomic_path(out) as tmp:  # a crash leaves no half-written model
        with contextlib.redirect_stdout(io.StringIO()):  # and its calibrators' print() per chunk and per tensor
            quantize_static(str(fp32_onnx), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8 if trt else QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"] if trt else ["Conv", *FOLDED_ACTIVATIONS],
                            calibrate_method=ort_method(method),
                            nodes_to_exclude=exclude or None, nodes_to_quantize=list(only) if only is not None else None,
                            reduce_range=not full_range, extra_options=extra, calibration_cache_path=str(cache) if cache else None)
        if not trt:  # the head convs' outputs go to the float decode: rounding them only loses accuracy
            proto, decode_set = onnx.load(str(tmp)), set(decode)
            heads = {i for n in fp32.graph.node if n.name in decode_set for i in n.input}
            unround(proto, [n.name for n in proto.graph.node if n.op_type == "Conv" and n.output[0] in heads])
            onnx.save(drop_dead(proto), str(tmp))
    return Path(out)


def _unfoldable_clips(proto: onnx.ModelProto) -> list[str]:
    """Clip nodes whose lower bound is above 0: a uint8 range always contains 0, so folding such a
    Clip into the range would let values in (0, min) through. Kept as float nodes instead."""
    from onnx import numpy_helper  # noqa: PLC0415
    consts = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    out = []
    for n in proto.graph.node:
        if n.op_type != "Clip":
            continue
        lo = next((a.f for a in n.attribute if a.name == "min"), None)  # opset < 11
        if len(n.input) > 1 and n.input[1]:
            lo = float(consts[n.input[1]]) if n.input[1] in consts else float("inf")  # computed bound: keep
        if lo is not None and lo > 0:
            out.append(n.name)
    return out


def check_trt_qdq(path_or_proto: str | Path | onnx.ModelProto) -> list[str]:
    """Problems TensorRT's parser would have with the Q/DQ nodes: non-zero or non-int8 zero points."""
    from onnx import numpy_helper  # noqa: PLC0415
    proto = load(path_or_proto)
    inits = {i.name: i for i in proto.graph.initializer}
    problems = []
    for n in proto.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits:
            zp = inits[n.input[2]]
            if zp.data_type != onnx.TensorProto.INT8:
                problems.append(f"{n.name}: zero point type {onnx.TensorProto.DataType.Name(zp.data_type)}, TensorRT needs INT8")
            elif np.any(numpy_helper.to_array(zp) != 0):
                problems.append(f"{n.name}: non-zero zero point (TensorRT needs symmetric quantization)")
    return problems
