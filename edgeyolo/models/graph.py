"""RowGraph: runs a list of YAML rows in order, each reading earlier rows or named inputs."""
from __future__ import annotations

import torch
from torch import nn


class RowGraph(nn.Module):
    """A section of a YOLO model (the backbone or the neck) as a sequence of rows.

    ``sources[i]`` lists where row ``i`` reads from: ``j >= 0`` is row ``j`` of this graph, ``-1 - k``
    is positional input ``k``. ``multi[i]`` says whether row ``i`` takes a list (Concat) or one
    tensor. ``outputs`` are the rows returned, in order. The wiring is plain data held here, not
    attributes set on the child modules.
    """

    def __init__(self, layers: list[nn.Module], sources: list[list[int]], multi: list[bool], outputs: list[int]):
        super().__init__()
        if not (len(layers) == len(sources) == len(multi)):
            raise ValueError("layers, sources and multi must have the same length")
        self.layers = nn.ModuleList(layers)
        self.sources = [list(s) for s in sources]
        self.multi = list(multi)
        self.outputs = list(outputs)

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        ys: list[torch.Tensor] = []  # every row's output; each is read by the next row anyway
        for layer, src, multi in zip(self.layers, self.sources, self.multi):
            xs = [ys[j] if j >= 0 else inputs[-1 - j] for j in src]
            ys.append(layer(xs if multi else xs[0]))
        return [ys[j] for j in self.outputs]
