"""Optimizer with three parameter groups, the LR schedule and the warm-up of PyTorch_YOLOv4/YOLOv5."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn


def build_optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    """Groups: pg0 = norm weights (no decay), pg1 = conv/linear weights (decay), pg2 = biases (no decay)."""
    norm, weights, biases = [], [], []
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if pname == "bias":
                biases.append(p)
            elif isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm)):
                norm.append(p)
            else:
                weights.append(p)
    # fused: the whole update of each tensor in one kernel. torch picks a per-tensor loop on the CPU,
    # whose Python overhead over the ~600 tensors of a detector costs more than the arithmetic; fused
    # AdamW took 7.5 ms a step against foreach's 23 (yolov4s-mbv3s, 2-core CPU).
    kind = {"fused": True} if all(p.device.type in ("cpu", "cuda") for p in norm + weights + biases) else {"foreach": True}
    if name == "SGD":
        opt = torch.optim.SGD(norm, lr=lr, momentum=momentum, nesterov=True, **kind)
    elif name in ("Adam", "AdamW"):
        opt = getattr(torch.optim, name)(norm, lr=lr, betas=(momentum, 0.999), weight_decay=0.0, **kind)
    else:
        raise ValueError(f"optimizer must be SGD, Adam or AdamW, got {name!r}")
    opt.add_param_group({"params": weights, "weight_decay": weight_decay})
    opt.add_param_group({"params": biases, "weight_decay": 0.0})
    return opt


def lr_lambda(schedule: str, epochs: int, lrf: float) -> Callable[[int], float]:
    """Epoch -> LR factor, from 1 to ``lrf`` over ``epochs``: cosine (one-cycle) or linear."""
    if schedule == "cosine":
        return lambda e: ((1 - math.cos(e * math.pi / epochs)) / 2) * (lrf - 1) + 1
    if schedule == "linear":
        return lambda e: (1 - e / epochs) * (1.0 - lrf) + lrf
    raise ValueError(f"schedule must be 'cosine' or 'linear', got {schedule!r}")


def warmup(optimizer: torch.optim.Optimizer, step: int, warmup_steps: int, epoch_factor: float, lr0: float,
           warmup_bias_lr: float, warmup_momentum: float, momentum: float) -> None:
    """Linear warm-up: biases fall from ``warmup_bias_lr``, other groups rise from 0, momentum rises."""
    xi = [0, warmup_steps]
    for j, group in enumerate(optimizer.param_groups):
        start = warmup_bias_lr if j == 2 else 0.0
        group["lr"] = float(np.interp(step, xi, [start, lr0 * epoch_factor]))
        if "momentum" in group:
            group["momentum"] = float(np.interp(step, xi, [warmup_momentum, momentum]))
