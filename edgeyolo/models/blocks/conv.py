"""Conv-BN-activation, the activation table, and Concat."""
from __future__ import annotations

import torch
from torch import nn

from .mish import Mish

# Activations a YAML may name. Mish is the seeds' (PyTorch_YOLOv4 u5) default (an nn.Mish with a
# faster CPU autograd, see mish.py); hswish/hsigmoid are torch's native ops, numerically identical to
# the seeds' x * relu6(x + 3) / 6 forms.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "mish": Mish,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky": nn.LeakyReLU,
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "identity": nn.Identity,
}


# PyTorch_YOLOv4 initialises every BatchNorm of its own blocks (and the seeds' CBH/mb3Block, built
# in that code base) with these; torchvision/Cadene blocks keep their own so pretrained weights
# behave as trained.
BN_KW = {"eps": 1e-3, "momentum": 0.03}


def make_activation(name: str) -> nn.Module:
    """Return a new activation module for ``name`` (one of ``ACTIVATIONS``)."""
    try:
        cls = ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None
    return cls(0.1) if cls is nn.LeakyReLU else cls()


def autopad(k: int, p: int | None = None) -> int:
    """'Same' padding for an odd kernel ``k`` unless ``p`` is given."""
    return k // 2 if p is None else p


class Conv(nn.Module):
    """Conv2d(k, stride s, padding k//2, no bias) -> BatchNorm2d -> activation (Mish by default)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: str = "mish"):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, **BN_KW)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))  # (B, c1, H, W) -> (B, c2, H/s, W/s)


class Concat(nn.Module):
    """Concatenate a list of tensors along ``dim`` (channels by default)."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.dim)  # [(B, c_i, H, W)] -> (B, sum c_i, H, W)
