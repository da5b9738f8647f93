"""``edgeyolo export --check-trt``: every ONNX node a TensorRT target's parser cannot import.

The tables are the onnx-tensorrt operator support matrices (docs/operators.md of onnx/onnx-tensorrt):
the 8.x matrix (release 8.2/8.4, opset <= 13) as the base, with the operators each later parser
added. Restrictions the matrices state that matter for detectors are checked too (Q/DQ zero points).
"""
from __future__ import annotations

from pathlib import Path

import onnx

# Supported ("Y") in onnx-tensorrt's matrix for TensorRT 8.2/8.4 (opset <= 13).
_BASE_8X = set("""Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN
LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg
NonMaxSuppression Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range
ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare
Relu Reshape Resize ReverseSequence RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Sigmoid
Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu
Tile TopK Transpose Unsqueeze Upsample Where Xor""".split())
# Operators the 8.5 matrix (docs/operators.md at onnx-tensorrt 6d0ab7b, opset <= 17) marks Y beyond
# 8.4's. The 8.6 target uses it too (its additions are left to the 10 table: a conservative lint).
_ADDED_85 = {"HardSwish", "Trilu", "Shrink", "Reciprocal", "OneHot", "NonZero", "Mod", "RoiAlign", "GridSample",
             "MeanVarianceNormalization", "RandomNormal", "RandomNormalLike"}
# And beyond 8.5 in the 10.15 matrix (AffineGrid, Bernoulli, CenterCropPad, Col2Im, Compress, DFT, Det and
# Multinomial are still N there).
_ADDED_10 = {"Mish", "GroupNormalization", "Gelu", "LayerNormalization", "IsInf", "Hardmax", "BlackmanWindow",
             "HammingWindow", "HannWindow", "STFT", "CastLike", "DeformConv"}
_TABLE_10 = _BASE_8X | _ADDED_85 | _ADDED_10
# 10.3 and 10.16 read the 10.15 matrix; 11 too, until its own matrix is read (a conservative lint:
# an operator 11 added is reported, never one it lacks passed).
SUPPORTED: dict[str, set[str]] = {
    "8.2": _BASE_8X,
    "8.5": _BASE_8X | _ADDED_85,
    "8.6": _BASE_8X | _ADDED_85,
    "10.3": _TABLE_10,
    "10.16": _TABLE_10,
    "11": _TABLE_10,
}
# Plugins the parser finds through the registry (custom domain nodes), by target.
PLUGINS = {"EfficientNMS_TRT", "BatchedNMSDynamic_TRT", "BatchedNMS_TRT"}
# What our own graphs must never contain for a target, whatever the parser tolerates: BN should
# have been fused, ScatterND comes only from in-place slice writes (old parsers mis-handle it).
FORBIDDEN: dict[str, set[str]] = {"8.2": {"ScatterND", "BatchNormalization", "HardSwish"},
                                  **{t: {"ScatterND", "BatchNormalization"} for t in ("8.5", "8.6", "10.3", "10.16", "11")}}


def _load(path_or_proto: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(path_or_proto, onnx.ModelProto):
        return path_or_proto
    if not Path(path_or_proto).is_file():
        raise ValueError(f"{path_or_proto}: ONNX file not found")
    return onnx.load(str(path_or_proto), load_external_data=False)


def check_trt(path_or_proto: str | Path | onnx.ModelProto, target: str) -> list[str]:
    """One line per problem: unsupported op types (with node count and first node name), an
    opset above the target's ceiling, non-zero Q/DQ zero points."""
    from .int8.qdq import check_trt_qdq
    from .targets import get_target
    t = get_target(target)
    proto = _load(path_or_proto)
    problems = []
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset > t.max_opset:
        problems.append(f"opset {opset}: TensorRT {t.name} reads opset <= {t.max_opset} (export with --opset {t.max_opset})")
    bad: dict[str, list[str]] = {}
    for n in proto.graph.node:
        if n.op_type in SUPPORTED[t.name] or n.op_type in PLUGINS:
            continue
        bad.setdefault(n.op_type, []).append(n.name or "<unnamed>")
    for op, nodes in sorted(bad.items()):
        problems.append(f"{op}: not supported by the TensorRT {t.name} ONNX parser ({len(nodes)} nodes, e.g. {nodes[0]})")
    problems += check_trt_qdq(proto)
    return problems


def forbidden_nodes(path_or_proto: str | Path | onnx.ModelProto, target: str) -> dict[str, int]:
    """Counts of the op types our exports promise not to contain for ``target``."""
    from .targets import get_target
    proto = _load(path_or_proto)
    banned = FORBIDDEN[get_target(target).name]
    out: dict[str, int] = {}
    for n in proto.graph.node:
        if n.op_type in banned:
            out[n.op_type] = out.get(n.op_type, 0) + 1
    return out
