"""The seeds' own MobileNetV3 blocks (CBH, mb3SE, mb3Block), kept exactly as the seeds trained them.

They differ from torchvision's MobileNetV3 (SE after the last 1x1 conv on the output channels, SE
without biases, the expand conv always present, a conv shortcut when channels change) and so load
no public weights; ``mobilenet_tv`` has the torchvision layout for that.
"""
from __future__ import annotations

import torch
from torch import nn

from .conv import BN_KW, autopad


def _act(code: str) -> nn.Module:
    """The seeds' activation codes: 'H' = hswish, 'R' = ReLU."""
    if code not in ("H", "R"):
        raise ValueError(f"mb3Block activation must be 'H' (hswish) or 'R' (ReLU), got {code!r}")
    return nn.Hardswish() if code == "H" else nn.ReLU(inplace=True)


class CBH(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> hswish."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k), bias=False)
        self.bn = nn.BatchNorm2d(c2, **BN_KW)
        self.act = nn.Hardswish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))  # (B, c1, H, W) -> (B, c2, H/s, W/s)


class mb3SE(nn.Module):  # noqa: N801 - the seeds' name
    """Squeeze-excitation with reduction 4, bias-free 1x1 convs, ReLU and an hsigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, 1, 1, 0, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1, 1, 0, bias=False),
            nn.Hardsigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.se(x)  # (B, C, H, W) * (B, C, 1, 1)


class mb3Block(nn.Module):  # noqa: N801 - the seeds' name
    """Seed MobileNetV3 block: 1x1 expand, kxk depthwise (stride s), 1x1 project + BN, optional SE
    on the output, and a residual (identity, or 1x1 conv+BN when channels change) at stride 1."""

    def __init__(self, c1: int, cexp: int, c2: int, k: int = 3, s: int = 1, se: str | None = None, act: str = "H"):
        super().__init__()
        self.use_se = se == "S"
        if self.use_se:
            self.sem = mb3SE(c2)
        self.stride = s
        self.conv1 = nn.Conv2d(c1, cexp, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(cexp, **BN_KW)
        self.act1 = _act(act)
        self.conv2 = nn.Conv2d(cexp, cexp, k, s, k // 2, groups=cexp, bias=False)
        self.bn2 = nn.BatchNorm2d(cexp, **BN_KW)
        self.act2 = _act(act)
        self.conv3 = nn.Conv2d(cexp, c2, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(c2, **BN_KW)
        self.shortcut = nn.Sequential()
        if s == 1 and c1 != c2:
            self.shortcut = nn.Sequential(nn.Conv2d(c1, c2, 1, 1, 0, bias=False), nn.BatchNorm2d(c2, **BN_KW))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))  # (B, c1, H, W) -> (B, cexp, H, W)
        out = self.act2(self.bn2(self.conv2(out)))  # -> (B, cexp, H/s, W/s)
        out = self.bn3(self.conv3(out))  # -> (B, c2, H/s, W/s)
        if self.use_se:
            out = self.sem(out)
        return out + self.shortcut(x) if self.stride == 1 else out
