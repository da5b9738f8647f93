"""Helpers shared by several test files (tests/ is on sys.path: plain `pytest` from the repo root)."""
from __future__ import annotations

import torch
from torch import nn


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that fusion or a wrong weight mapping
    cannot hide behind identity BNs. Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model.eval()


def run_cli(args: list[str]) -> int:
    """``edgeyolo ARGS`` in-process -> its exit code (0 when it returns)."""
    from edgeyolo.cli import main
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0
