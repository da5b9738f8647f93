"""The CSP blocks of PyTorch_YOLOv4 (branch u5): Bottleneck, BottleneckCSP, BottleneckCSP2, SPPCSP.

Parameter layouts follow u5 exactly so that the seeds' parameter counts are reproduced.
"""
from __future__ import annotations

import torch
from torch import nn

from .conv import BN_KW, Conv, make_activation


class Bottleneck(nn.Module):
    """1x1 Conv to c2*e, 3x3 Conv to c2; residual add when ``shortcut`` and c1 == c2."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 0.5, act: str = "mish"):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_, c2, 3, 1, act=act)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))  # (B, c1, H, W) -> (B, c2, H, W)
        return x + y if self.add else y


class BottleneckCSP(nn.Module):
    """CSP block: branch A = Conv -> n residual Bottlenecks -> plain 1x1; branch B = plain 1x1;
    concat -> BN -> act -> 1x1 Conv."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, act: str = "mish"):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, 1, act=act)
        self.bn = nn.BatchNorm2d(2 * c_, **BN_KW)
        self.act = make_activation(act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.cv3(self.m(self.cv1(x)))  # (B, c1, H, W) -> (B, c_, H, W)
        y2 = self.cv2(x)  # (B, c1, H, W) -> (B, c_, H, W)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))  # -> (B, c2, H, W)


class BottleneckCSP2(nn.Module):
    """CSP2 block of the PAN head: Conv first, branch A = n plain Bottlenecks, branch B = plain 1x1;
    concat -> BN -> act -> 1x1 Conv."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, act: str = "mish"):
        super().__init__()
        c_ = c2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv3 = Conv(2 * c_, c2, 1, 1, act=act)
        self.bn = nn.BatchNorm2d(2 * c_, **BN_KW)
        self.act = make_activation(act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.cv1(x)  # (B, c1, H, W) -> (B, c_, H, W)
        y1 = self.m(x1)  # (B, c_, H, W)
        y2 = self.cv2(x1)  # (B, c_, H, W)
        return self.cv3(self.act(self.bn(torch.cat((y1, y2), 1))))  # -> (B, c2, H, W)


class SPPCSP(nn.Module):
    """CSP spatial pyramid pooling: branch A = 1x1, 3x3, 1x1 Conv, concat with max-pools 5/9/13,
    1x1 Conv, 3x3 Conv; branch B = plain 1x1; concat -> BN -> act -> 1x1 Conv."""

    def __init__(self, c1: int, c2: int, n: int = 1, k: tuple[int, ...] = (5, 9, 13), act: str = "mish"):
        super().__init__()
        c_ = c2  # u5: int(2 * c2 * 0.5); n is accepted for row compatibility and unused, as in u5
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = Conv(c_, c_, 3, 1, act=act)
        self.cv4 = Conv(c_, c_, 1, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)
        self.cv5 = Conv(4 * c_, c_, 1, 1, act=act)
        self.cv6 = Conv(c_, c_, 3, 1, act=act)
        self.bn = nn.BatchNorm2d(2 * c_, **BN_KW)
        self.act = make_activation(act)
        self.cv7 = Conv(2 * c_, c2, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.cv4(self.cv3(self.cv1(x)))  # (B, c1, H, W) -> (B, c_, H, W)
        pooled = torch.cat([x1] + [m(x1) for m in self.m], 1)  # (B, 4c_, H, W)
        y1 = self.cv6(self.cv5(pooled))  # (B, c_, H, W)
        y2 = self.cv2(x)  # (B, c_, H, W)
        return self.cv7(self.act(self.bn(torch.cat((y1, y2), 1))))  # -> (B, c2, H, W)
