"""Layers as the INT8 code keeps them in float: a conv with its activation nodes, and the
--keep-fp16 names (module paths or ONNX node names) that select them."""
from __future__ import annotations

from pathlib import Path

import onnx

from .graph import consumers, load

_ACT_OPS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Softplus", "Tanh", "Mul", "Div", "Add", "Mish",
            "LeakyRelu"}


def layer_groups(path_or_proto: str | Path | onnx.ModelProto) -> dict[str, list[str]]:
    """Conv name -> the conv and its activation nodes (Mish = Softplus, Tanh, Mul; hswish =
    HardSigmoid, Mul; ...). A "layer" kept in higher precision must include its activation: the
    activation's input is the conv's output tensor, which would otherwise be rounded to int8 there
    with the same scale, undoing the exclusion."""
    g = load(path_or_proto).graph
    consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    readers = consumers(g)
    groups: dict[str, list[str]] = {}
    for conv in (n for n in g.node if n.op_type == "Conv"):
        members, tensors, frontier = [conv.name], {conv.output[0]}, [conv.output[0]]
        while frontier:
            t = frontier.pop()
            for c in readers.get(t, []):
                if c.name in members or c.op_type not in _ACT_OPS:
                    continue
                if all(i in tensors or i in consts or not i for i in c.input):
                    members.append(c.name)
                    tensors.update(c.output)
                    frontier.extend(c.output)
        groups[conv.name] = members
    return groups


def match_layers(key: str, groups: dict[str, list[str]]) -> list[str]:
    """A --keep-fp16 entry -> the node names it keeps in float: a conv node name or a module path
    (``neck.layers.10``, ``backbone.layers.3``), each with its activation (``layer_groups``)."""
    slash = "/" + key.strip().strip("/").replace(".", "/").replace("/layers/", "/layers.").replace("/m/", "/m.") + "/"
    hits = [n for conv, members in groups.items() if conv == key or slash in conv + "/" for n in members]
    if not hits:
        raise ValueError(f"--keep-fp16 {key!r} matches no conv layer (e.g. 'neck.layers.10' or an ONNX Conv node name)")
    return hits
