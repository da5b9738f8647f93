"""Exponential moving average of the weights (YOLOv5's ModelEMA), used for validation and saving."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP/DataParallel wrapper."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


DECAY, TAU = 0.9999, 2000.0  # YOLOv5's: an average over ~10,000 updates, ramped in over ~2,000


class ModelEMA:
    """``ema = decay * ema + (1 - decay) * model`` on floating-point state, with the decay ramped up
    as ``decay * (1 - exp(-updates / tau))`` so the early, fast-changing weights are not averaged in."""

    def __init__(self, model: nn.Module, decay: float = DECAY, tau: float = TAU, updates: int = 0):
        self.ema = copy.deepcopy(unwrap(model)).eval()
        self.updates = updates
        self.decay_max, self.tau = decay, tau
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def decay(self) -> float:
        return self.decay_max * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay()
        msd = unwrap(model).state_dict()
        floats, targets = [], []
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                floats.append(v)
                targets.append(msd[k].detach())
            else:
                v.copy_(msd[k])
        # ema += (1 - d) * (model - ema), over all tensors at once: a Python loop of two in-place
        # ops per tensor took a second per step on a loaded 2-core CPU.
        torch._foreach_lerp_(floats, targets, 1 - d)
