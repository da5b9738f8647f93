"""ONNX graph walks the INT8 code shares: who reads a tensor, which nodes follow the last convs
(the float decode), reading a node's output past its Q -> DQ, and dropping dead nodes."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import onnx


def load(path_or_proto: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """A ModelProto as it is, or loaded from its path."""
    return path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto))


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> the nodes that read it."""
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def decode_nodes(path_or_proto: str | Path | onnx.ModelProto) -> list[str]:
    """Nodes after the last convs (Detect's decode, in-graph NMS): kept in float. One per-tensor
    int8 scale cannot cover pixel coordinates (hundreds) and probabilities (0..1) in one output."""
    proto = load(path_or_proto)
    readers = consumers(proto.graph)
    feeds_conv: dict[str, bool] = {}

    def reaches_conv(n: onnx.NodeProto) -> bool:  # iterative DFS would be overkill: graphs are shallow after convs
        if n.name not in feeds_conv:
            feeds_conv[n.name] = n.op_type == "Conv" or any(reaches_conv(c) for o in n.output
                                                             for c in readers.get(o, []))
        return feeds_conv[n.name]

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(proto.graph.node) + 100))
    try:
        return [n.name for n in proto.graph.node if not reaches_conv(n)]
    finally:
        sys.setrecursionlimit(limit)


def unround(proto: onnx.ModelProto, nodes: Sequence[str]) -> None:
    """In place: consumers of each node's output read it directly instead of through Q -> DQ."""
    g = proto.graph
    readers = consumers(g)
    wanted = set(nodes)
    for n in (n for n in g.node if n.name in wanted):
        out = n.output[0]
        for q in [c for c in readers.get(out, []) if c.op_type == "QuantizeLinear"]:
            for dq in [c for c in readers.get(q.output[0], []) if c.op_type == "DequantizeLinear"]:
                for c in readers.get(dq.output[0], []):
                    c.input[:] = [out if x == dq.output[0] else x for x in c.input]
                for o in g.output:
                    if o.name == dq.output[0]:  # pragma: no cover - decode stays float, outputs are never DQ
                        raise ValueError("cannot bypass a node that feeds a graph output through Q/DQ")


def drop_dead(proto: onnx.ModelProto) -> onnx.ModelProto:
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
