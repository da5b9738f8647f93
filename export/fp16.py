"""The FP16 ONNX (``<stem>_fp16.onnx``): what ``--fp16`` means for a strongly typed TensorRT (11.x),
which builds exactly the tensor types the ONNX has and has no FP16 builder flag. Weights and
activations FP16; the graph's input and outputs stay FP32 (the runtime feeds and reads FP32); the
decode after the last convs stays FP32 (pixel coordinates up to the image size lose whole pixels
in FP16's 11-bit mantissa, and exp/pow overflow past 65504). It runs in ONNX Runtime on a CPU, so
the export verifies it against PyTorch and gates it on mAP like any artifact; ``trtexec`` takes it too.

The conversion is onnxruntime's own float16 converter (installed with onnxruntime): it keeps the
I/O types and a node block list, and inserts the casts at the boundaries. It only retypes float
tensors, so an ``--uint8-input`` graph keeps its uint8 (B, H, W, 3) input as is: the in-graph Cast
becomes uint8 -> FP16 (0..255 are exact in FP16) and the /255 runs in FP16 like the convs after it.
"""
from __future__ import annotations

from pathlib import Path

import onnx

from edgeyolo.atomic import atomic_path


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node comes after its inputs' producers. The float16
    converter appends its input casts at the end, which the ONNX checker and TensorRT's parser
    (it imports nodes in file order) both reject."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"graph {graph.name!r}: a node's input is produced by no node (e.g. {rest[0].name})")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def fp32_nodes(proto: onnx.ModelProto) -> list[str]:
    """The nodes kept in FP32: Detect's decode (everything after the last convs) and any in-graph NMS."""
    from .int8.graph import decode_nodes
    return decode_nodes(proto)


def to_fp16(src: str | Path, dst: str | Path) -> Path:
    """Write the FP16 form of the FP32 ONNX ``src`` to ``dst`` (atomically); metadata is kept."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    proto = onnx.load(str(src))
    keep = fp32_nodes(proto)
    half = convert_float_to_float16(proto, keep_io_types=True, node_block_list=keep)
    topological_sort(half.graph)
    onnx.checker.check_model(half)
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return Path(dst)
