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
  feeding the float decode stay unrounded.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx

from edgeyolo.atomic import atomic_path

from .images import batches_digest
from .targets import ONNXRUNTIME, TENSORRT

CALIB_METHODS = ("entropy", "minmax", "percentile")
# ONNX Runtime's calibrators keep every intermediate tensor of every image they are given before
# reducing them: 512 images at 320 px took 24 GB and were OOM-killed. Calibration is therefore fed
# in chunks of at most this many images (ORT reduces and frees after each chunk; MinMax ranges
# merge exactly, histograms are merged bin-wise).
CALIB_CHUNK = 8


class BatchReader:
    """onnxruntime's CalibrationDataReader over in-memory float32 NCHW batches."""

    def __init__(self, batches: Sequence[np.ndarray], input_name: str = "images"):
        self.batches, self.input_name, self._i = list(batches), input_name, 0
        self._end = len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Serve only batches[start_index:end_index] (ORT's chunked calibration calls this)."""
        self._i, self._end = start_index, min(end_index, len(self.batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= self._end:
            return None
        self._i += 1
        return {self.input_name: np.ascontiguousarray(self.batches[self._i - 1], dtype=np.float32)}

    def rewind(self) -> None:
        self._i, self._end = 0, len(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod
    table = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}
    if method not in table:
        raise ValueError(f"--calib-method must be one of {', '.join(CALIB_METHODS)}, got {method!r}")
    return table[method]


def calibration_cache_path(fp32_onnx: str | Path, batches: Sequence[np.ndarray], method: str,
                           cache_dir: str | Path) -> Path:
    """``cache_dir/calib-<hash>.json``; the hash covers the model bytes, the images and the method,
    so a cache is reused exactly when its ranges are still valid."""
    h = hashlib.sha256(Path(fp32_onnx).read_bytes())
    h.update(batches_digest(batches).encode())
    h.update(method.encode())
    return Path(cache_dir) / f"calib-{h.hexdigest()[:16]}.json"


def calib_chunk(n: int, limit: int = CALIB_CHUNK) -> int:
    """The largest chunk size <= ``limit`` that divides ``n`` (ORT requires equal chunks)."""
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def quantize_qdq(fp32_onnx: str | Path, out: str | Path, batches: Sequence[np.ndarray] | None, method: str = "entropy",
                 cache: str | Path | None = None, exclude: Sequence[str] = (), only: Sequence[str] | None = None,
                 runtime: str = TENSORRT) -> Path:
    """Write the Q/DQ model of ``fp32_onnx`` to ``out`` for ``runtime`` (see the module docstring).

    ``batches`` feed calibration unless ``cache`` already holds ranges (then they may be None).
    ``exclude``: node names kept in float (TensorRT then picks FP16/FP32 for them). ``only``: quantize
    just these nodes (per-layer sensitivity).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    if runtime not in (TENSORRT, ONNXRUNTIME):
        raise ValueError(f"runtime must be {TENSORRT!r} or {ONNXRUNTIME!r}, got {runtime!r}")
    trt = runtime == TENSORRT
    # QuantizeBias False: ORT would store biases as INT32 behind a DequantizeLinear, which TensorRT's
    # parser rejects; TensorRT quantizes the bias itself when it fuses the conv.
    extra = {"ActivationSymmetric": trt, "WeightSymmetric": True, "QuantizeBias": False}
    if trt:
        extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    reader = BatchReader(batches) if batches is not None else None
    if reader is not None and len(reader) > CALIB_CHUNK:
        extra["CalibStridedMinMax"] = calib_chunk(len(reader))  # despite the name: chunks for every method
    fp32 = onnx.load(str(fp32_onnx))
    decode = decode_nodes(fp32)
    exclude = list(exclude) + decode + ([] if trt else _unfoldable_clips(fp32))
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # ORT's per-tensor chatter
    with atomic_path(out) as tmp:  # a crash leaves no half-written model
        with contextlib.redirect_stdout(io.StringIO()):  # and its calibrators' print() per chunk and per tensor
            quantize_static(str(fp32_onnx), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8 if trt else QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"] if trt else ["Conv", *FOLDED_ACTIVATIONS],
                            calibrate_method=_ort_method(method),
                            nodes_to_exclude=exclude or None, nodes_to_quantize=list(only) if only is not None else None,
                            extra_options=extra, calibration_cache_path=str(cache) if cache else None)
        if not trt:  # the head convs' outputs go to the float decode: rounding them only loses accuracy
            proto, decode_set = onnx.load(str(tmp)), set(decode)
            heads = {i for n in fp32.graph.node if n.name in decode_set for i in n.input}
            _unround(proto, [n.name for n in proto.graph.node if n.op_type == "Conv" and n.output[0] in heads])
            onnx.save(_drop_dead(proto), str(tmp))
    return Path(out)


# Activations ORT's Q/DQ quantizer removes when their input is a quantized conv output and
# activations are asymmetric (the ONNX Runtime placement): the Q's range [0, max] does the clamp.
FOLDED_ACTIVATIONS = ("Relu", "Clip")


def _unfoldable_clips(proto: onnx.ModelProto) -> list[str]:
    """Clip nodes whose lower bound is above 0: a uint8 range always contains 0, so folding such a
    Clip into the range would let values in (0, min) through. Kept as float nodes instead."""
    from onnx import numpy_helper
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


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> the nodes that read it."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return consumers


def decode_nodes(path_or_proto: str | Path | onnx.ModelProto) -> list[str]:
    """Nodes after the last convs (Detect's decode, in-graph NMS): kept in float. One per-tensor
    int8 scale cannot cover pixel coordinates (hundreds) and probabilities (0..1) in one output."""
    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto))
    consumers = _consumers(proto.graph)
    feeds_conv: dict[str, bool] = {}

    def reaches_conv(n: onnx.NodeProto) -> bool:  # iterative DFS would be overkill: graphs are shallow after convs
        if n.name not in feeds_conv:
            feeds_conv[n.name] = n.op_type == "Conv" or any(reaches_conv(c) for o in n.output
                                                             for c in consumers.get(o, []))
        return feeds_conv[n.name]

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(proto.graph.node) + 100))
    try:
        return [n.name for n in proto.graph.node if not reaches_conv(n)]
    finally:
        sys.setrecursionlimit(limit)


def check_trt_qdq(path_or_proto: str | Path | onnx.ModelProto) -> list[str]:
    """Problems TensorRT's parser would have with the Q/DQ nodes: non-zero or non-int8 zero points."""
    from onnx import numpy_helper
    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto))
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


def quantizable_nodes(path: str | Path, op_types: Sequence[str] = ("Conv",)) -> list[str]:
    """Names of the nodes whose quantization is ranked by sensitivity (convs carry the FLOPs)."""
    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type in op_types]


_ACT_OPS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Softplus", "Tanh", "Mul", "Div", "Add", "Mish",
            "LeakyRelu"}


def layer_groups(path_or_proto: str | Path | onnx.ModelProto) -> dict[str, list[str]]:
    """Conv name -> the conv and its activation nodes (Mish = Softplus, Tanh, Mul; hswish =
    HardSigmoid, Mul; ...). A "layer" kept in higher precision must include its activation: the
    activation's input is the conv's output tensor, which would otherwise be rounded to int8 there
    with the same scale, undoing the exclusion."""
    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto))
    g = proto.graph
    consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    consumers = _consumers(g)
    groups: dict[str, list[str]] = {}
    for conv in (n for n in g.node if n.op_type == "Conv"):
        members, tensors, frontier = [conv.name], {conv.output[0]}, [conv.output[0]]
        while frontier:
            t = frontier.pop()
            for c in consumers.get(t, []):
                if c.name in members or c.op_type not in _ACT_OPS:
                    continue
                if all(i in tensors or i in consts or not i for i in c.input):
                    members.append(c.name)
                    tensors.update(c.output)
                    frontier.extend(c.output)
        groups[conv.name] = members
    return groups


def bypass_quantization(proto: onnx.ModelProto, nodes: Sequence[str], fp32: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a Q/DQ model in which ``nodes`` run in float, as if excluded from quantization:
    activation inputs read ``x`` instead of DQ(Q(x)), weights are the FP32 model's, and consumers of
    the node's output read it unrounded instead of through its Q -> DQ. A graph edit, no
    re-calibration, so per-layer sensitivity can try every conv cheaply."""
    proto = copy.deepcopy(proto)
    g = proto.graph
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    have = {i.name for i in g.initializer}
    wanted = set(nodes)
    _restore_folded(g, wanted, fp32, fp32_inits, have)
    producer = {o: n for n in g.node for o in n.output}
    for n in g.node:
        if n.name not in wanted:
            continue
        for k, name in enumerate(n.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                n.input[k] = q.input[0]
            else:  # a quantized weight: the FP32 model's tensor under the original name
                orig = dq.input[0].removesuffix("_quantized")
                if orig not in fp32_inits:
                    raise ValueError(f"{n.name}: no FP32 weight {orig!r} to restore")
                if orig not in have:
                    g.initializer.append(copy.deepcopy(fp32_inits[orig]))
                    have.add(orig)
                n.input[k] = orig
    _unround(proto, nodes)
    return _drop_dead(proto)


def _restore_folded(g: onnx.GraphProto, wanted: set[str], fp32: onnx.ModelProto,
                    fp32_inits: dict[str, onnx.TensorProto], have: set[str]) -> None:
    """In place: put back the wanted activations the quantizer folded into their conv's range (see
    FOLDED_ACTIVATIONS; it renamed the conv's output to the activation's). A conv run in float must
    apply its ReLU itself."""
    present = {n.name for n in g.node}
    for act in (n for n in fp32.graph.node if n.name in wanted and n.name not in present):
        if act.op_type not in FOLDED_ACTIVATIONS:
            raise ValueError(f"{act.name}: a {act.op_type} node is missing from the Q/DQ model")
        at = next((k for k, n in enumerate(g.node) if act.output[0] in n.output), None)
        if at is None:
            raise ValueError(f"{act.name}: no node produces {act.output[0]!r} in the Q/DQ model")
        prod = g.node[at]
        prod.output[list(prod.output).index(act.output[0])] = act.input[0]
        g.node.insert(at + 1, copy.deepcopy(act))
        for name in act.input[1:]:  # Clip's bounds: the quantizer dropped them with the node
            if name and name not in have:
                g.initializer.append(copy.deepcopy(fp32_inits[name]))
                have.add(name)


def _unround(proto: onnx.ModelProto, nodes: Sequence[str]) -> None:
    """In place: consumers of each node's output read it directly instead of through Q -> DQ."""
    g = proto.graph
    consumers = _consumers(g)
    wanted = set(nodes)
    for n in (n for n in g.node if n.name in wanted):
        out = n.output[0]
        for q in [c for c in consumers.get(out, []) if c.op_type == "QuantizeLinear"]:
            for dq in [c for c in consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"]:
                for c in consumers.get(dq.output[0], []):
                    c.input[:] = [out if x == dq.output[0] else x for x in c.input]
                for o in g.output:
                    if o.name == dq.output[0]:  # pragma: no cover - decode stays float, outputs are never DQ
                        raise ValueError("cannot bypass a node that feeds a graph output through Q/DQ")


def _drop_dead(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Remove nodes and initializers no graph output depends on."""
    g = proto.graph
    needed = {o.name for o in g.output}
    keep = []
    for n in reversed(list(g.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(n.input)
    del g.node[:]
    g.node.extend(reversed(keep))
    live = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(live)
    return proto


def layer_sensitivity(qdq_onnx: str | Path, fp32_onnx: str | Path, error: Callable[[onnx.ModelProto], float],
                      nodes: Sequence[str] | None = None) -> dict[str, float]:
    """Per quantized conv (with its activation, see ``layer_groups``): how much the error (``error(model)``, e.g. output deviation from FP32
    on the calibration images) falls when that conv alone goes back to float. Sorted, most
    sensitive first."""
    proto, fp32 = onnx.load(str(qdq_onnx)), onnx.load(str(fp32_onnx))
    groups = layer_groups(fp32)
    nodes = list(nodes) if nodes is not None else list(groups)
    base = float(error(proto))
    out = {name: base - float(error(bypass_quantization(proto, groups.get(name, [name]), fp32))) for name in nodes}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def ranked_layers(qdq_onnx: str | Path, fp32_onnx: str | Path, error: Callable[[onnx.ModelProto], float]
                  ) -> list[list[str]]:
    """The layers whose return to float lowers the error, most sensitive first, each as its node
    names (conv + activation, ``layer_groups``): what ``--int8 auto`` keeps in float, a prefix at a
    time (``kept_nodes``)."""
    groups = layer_groups(fp32_onnx)
    return [groups[n] for n, s in layer_sensitivity(qdq_onnx, fp32_onnx, error).items() if s > 0]


def kept_nodes(ranking: Sequence[Sequence[str]], k: int) -> list[str]:
    """The node names of the first ``k`` layers of ``ranking``."""
    return [x for g in ranking[:k] for x in g]


def fewest_layers(n: int, drop_of: Callable[[int], float], max_drop: float) -> tuple[int, float]:
    """The smallest k in 0..n with ``drop_of(k) <= max_drop`` (k = how many of the most sensitive
    layers stay in float): doubling (0, 1, 2, 4, ...) to the first k under the gate, then bisecting
    between it and the last miss, so about 2 log2(k) evaluations. The drop is measured, not
    guaranteed monotonic in k, so this is the first crossing the search meets. If even k = n misses,
    returns n. Returns (k, drop_of(k))."""
    seen: dict[int, float] = {}

    def at(k: int) -> float:
        if k not in seen:
            seen[k] = float(drop_of(k))
        return seen[k]

    miss, hit = -1, 0
    while at(hit) > max_drop:
        if hit >= n:
            return n, seen[n]
        miss, hit = hit, 1 if hit == 0 else min(2 * hit, n)
    while hit - miss > 1:
        mid = (miss + hit) // 2
        if at(mid) <= max_drop:
            hit = mid
        else:
            miss = mid
    return hit, seen[hit]


def auto_exclude(fp32_onnx: str | Path, out: str | Path, cache: str | Path, batches: Sequence[np.ndarray],
                 ranking: Sequence[Sequence[str]], drop: Callable[[Path], float], max_drop: float, method: str,
                 runtime: str = TENSORRT) -> tuple[Path, list[str], float]:
    """Keep the fewest of the most sensitive layers in float for ``drop(qdq_path)`` <= ``max_drop``
    (see ``fewest_layers``). ``ranking``: layers most sensitive first, each the node names of a conv
    and its activation (``layer_groups``). Returns (model path, nodes kept in float, final drop)."""
    written: list[int] = []

    def write(k: int) -> Path:
        p = quantize_qdq(fp32_onnx, out, batches, method, cache=cache, exclude=kept_nodes(ranking, k), runtime=runtime)
        written.append(k)
        return p

    k, final = fewest_layers(len(ranking), lambda k: drop(write(k)), max_drop)
    p = Path(out) if written[-1] == k else write(k)  # the search may have ended on another k
    return p, kept_nodes(ranking, k), final
