"""Run chosen nodes of a Q/DQ model in float again, by editing the graph (no re-calibration), so
per-layer sensitivity can try every conv cheaply."""
from __future__ import annotations

import copy
from typing import Sequence

import onnx

from .graph import drop_dead, unround
from .qdq import FOLDED_ACTIVATIONS


def bypass_quantization(proto: onnx.ModelProto, nodes: Sequence[str], fp32: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a Q/DQ model in which ``nodes`` run in float, as if excluded from quantization:
    activation inputs read ``x`` instead of DQ(Q(x)), weights are the FP32 model's, and consumers of
    the node's output read it unrounded instead of through its Q -> DQ."""
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
    unround(proto, nodes)
    return drop_dead(proto)


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
