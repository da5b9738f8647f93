"""Precise BatchNorm: the running statistics re-estimated for the weights being validated.

BatchNorm's running mean and variance follow the batches with momentum 0.03 (YOLOv5's), a window
of about 33 optimizer steps. A short run on a small set moves its weights a long way in 33 steps
(Adam moves every weight by about the learning rate at each one), so the statistics describe weights
from epochs ago: a model that had fitted four real tiles (training loss 0.003) scored mAP@0.5 0.008
on those same tiles, and 0.47 once its statistics were re-estimated. The EMA weights, which are
validated and saved, never had statistics of their own at all. Re-estimating them before each
validation costs a few forward passes; the trainer does it on training images letterboxed as
validation does (the same images each time), because an estimate from a few random mosaic batches
swings with the draw (train/recipe.py says what it gains and costs).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], skip: nn.Module | None = None) -> int:
    """Reset the running statistics of every BatchNorm in ``model`` (but those inside ``skip``, e.g.
    a frozen backbone) and set them to the exact average over ``batches`` (float (B, 3, H, W) in
    [0, 1]); returns the number of images seen. The model is left in eval mode."""
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return 0  # nothing to estimate from: keep the statistics there are
    frozen = {id(m) for m in skip.modules()} if skip is not None else set()
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats and id(m) not in frozen]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch counts alike
    seen = 0
    try:
        model.train()
        if skip is not None:
            skip.eval()
        with torch.no_grad():
            for x in (first, *batches):
                model(x)
                seen += x.shape[0]
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    return seen
