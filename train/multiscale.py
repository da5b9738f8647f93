"""Multi-scale training (``--multi-scale``): each batch resized to a random multiple of the stride."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def multi_scale_sizes(imgsz: int, stride: int) -> range:
    """The sizes multi-scale training draws from: the multiples of ``stride`` in [0.5, 1.5] x imgsz
    (at least one stride: YOLOv5's rounding can reach 0 at small sizes)."""
    lo = max(stride, math.ceil(imgsz * 0.5 / stride) * stride)
    return range(lo, max(lo, int(imgsz * 1.5) // stride * stride) + 1, stride)


def random_rescale(imgs: torch.Tensor, imgsz: int, stride: int) -> torch.Tensor:
    """Multi-scale training: a random size of :func:`multi_scale_sizes` per batch."""
    sizes = multi_scale_sizes(imgsz, stride)
    size = sizes[int(np.random.randint(len(sizes)))]
    return nn.functional.interpolate(imgs, size=(size, size), mode="bilinear", align_corners=False)
