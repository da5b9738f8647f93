"""Detect: the YOLOv4 head, one biased 1x1 conv per level, and its box decode."""
from __future__ import annotations

import math

import torch
from torch import nn


class Detect(nn.Module):
    """Per level a 1x1 conv to ``na * (5 + nc)`` channels.

    ``forward`` returns the raw per-level logits (what the loss reads); ``decode`` turns them into
    boxes. ``anchors`` are in pixels, shape (nl, na, 2); ``stride`` (nl,) is filled in by the
    builder from a probe forward.
    """

    def __init__(self, nc: int, anchors: list[list[float]], ch: list[int]):
        super().__init__()
        if nc < 1:
            raise ValueError(f"nc must be >= 1, got {nc}")
        if len(anchors) != len(ch):
            raise ValueError(f"Detect has {len(ch)} inputs but {len(anchors)} anchor levels")
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, self.na, 2))
        self.register_buffer("stride", torch.zeros(self.nl))
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in ch)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for conv, x in zip(self.m, xs):
            b, _, ny, nx = x.shape
            p = conv(x)  # (B, C_i, ny, nx) -> (B, na*no, ny, nx)
            out.append(p.view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())  # (B, na, ny, nx, no)
        return out

    def decode(self, raw: list[torch.Tensor]) -> torch.Tensor:
        """Raw level outputs [(B, na, ny, nx, 5 + nc)] -> (B, N, 5 + nc): cx, cy, w, h in input
        pixels, objectness and class probabilities.

        xy = (2 sigmoid(t) - 0.5 + grid) * stride, wh = (2 sigmoid(t))^2 * anchor. Built with
        torch.cat rather than slice assignment: in-place writes export as ScatterND, which older
        TensorRT parsers reject.
        """
        out = []
        for i, p in enumerate(raw):
            b, na, ny, nx, no = p.shape
            y = p.sigmoid()
            # The grid is built from p (new_ones + cumsum = 0..n-1 in p's dtype, on p's device), not
            # torch.arange(device=p.device): a trace records arange's device as a constant, so a
            # TorchScript exported on the CPU would build its grid on the CPU when run on a GPU and
            # fail there. ONNX folds either form to a constant (the spatial size is static).
            gy, gx = torch.meshgrid(p.new_ones(ny).cumsum(0) - 1, p.new_ones(nx).cumsum(0) - 1, indexing="ij")
            grid = torch.stack((gx, gy), -1).view(1, 1, ny, nx, 2)  # (1, 1, ny, nx, 2)
            anchor = self.anchors[i].to(p.dtype).view(1, na, 1, 1, 2)  # (1, na, 1, 1, 2)
            xy = (y[..., 0:2] * 2 - 0.5 + grid) * self.stride[i].to(p.dtype)  # (B, na, ny, nx, 2)
            wh = (y[..., 2:4] * 2) ** 2 * anchor  # (B, na, ny, nx, 2)
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).reshape(b, -1, no))  # (B, na*ny*nx, no)
        return torch.cat(out, 1)

    @torch.no_grad()
    def init_biases(self, strides: list[float], image_size: int = 640) -> None:
        """Prior biases of PyTorch_YOLOv4: objectness for ~8 objects per 640 image, classes at 0.6/nc."""
        for conv, s in zip(self.m, strides):
            b = conv.bias.view(self.na, self.no)
            b[:, 4] += math.log(8 / (image_size / s) ** 2)
            b[:, 5:] += math.log(0.6 / (self.nc - 0.99))
