"""ResNet stages: torchvision's Bottleneck (ResNet50, ResNeXt50-32x4d) and Cadene's SE-ResNet
bottleneck (stride on the first 1x1 conv, SE reduction 16 with biases), named as in Cadene's and
timm's ``legacy_seresnet50`` so their checkpoints load with a prefix mapping only."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck as TVBottleneck


def _downsample(c1: int, c2: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c1, c2, 1, stride, bias=False), nn.BatchNorm2d(c2))


class ResLayer(nn.Module):
    """One ResNet stage of ``n`` torchvision Bottlenecks (out channels = planes * 4)."""

    def __init__(self, c1: int, planes: int, n: int, s: int = 1, g: int = 1, w: int = 64, downsample: bool = True):
        super().__init__()
        c2 = planes * TVBottleneck.expansion
        ds = _downsample(c1, c2, s) if downsample else None
        blocks = [TVBottleneck(c1, planes, s, ds, groups=g, base_width=w)]
        blocks += [TVBottleneck(c2, planes, groups=g, base_width=w) for _ in range(n - 1)]
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, c1, H, W) -> (B, 4 planes, H/s, W/s)


class SEModule(nn.Module):
    """Cadene's SE: avg-pool, biased 1x1 conv to C/r, ReLU, biased 1x1 conv to C, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, padding=0)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))  # (B, C, 1, 1)
        return x * s


class SEResNetBottleneck(nn.Module):
    """Cadene's SEResNetBottleneck: stride on conv1 (1x1), SE before the residual add."""

    expansion = 4

    def __init__(self, c1: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, reduction: int = 16):
        super().__init__()
        c2 = planes * self.expansion
        self.conv1 = nn.Conv2d(c1, planes, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c2)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = SEModule(c2, reduction)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (B, c1, H, W) -> (B, planes, H/s, W/s)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, planes, H/s, W/s)
        out = self.se_module(self.bn3(self.conv3(out)))  # (B, 4 planes, H/s, W/s)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class SEResLayer(nn.Module):
    """One SE-ResNet stage of ``n`` Cadene SE bottlenecks (out channels = planes * 4)."""

    def __init__(self, c1: int, planes: int, n: int, s: int = 1, g: int = 1, w: int = 64, downsample: bool = True):
        super().__init__()
        if g != 1 or w != 64:
            raise ValueError(f"SEResLayer supports groups=1, width=64 (SE-ResNet50), got groups={g}, width={w}")
        c2 = planes * SEResNetBottleneck.expansion
        ds = _downsample(c1, c2, s) if downsample else None
        blocks = [SEResNetBottleneck(c1, planes, s, ds)]
        blocks += [SEResNetBottleneck(c2, planes) for _ in range(n - 1)]
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, c1, H, W) -> (B, 4 planes, H/s, W/s)
