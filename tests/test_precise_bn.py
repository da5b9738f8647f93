"""Precise BatchNorm: statistics re-estimated exactly on the given batches; a skipped (frozen)
part and an empty batch source keep theirs."""
from __future__ import annotations

import torch
from torch import nn

from edgeyolo.train.precise_bn import recalibrate_bn


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.03), nn.ReLU(),
                         nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, momentum=0.03)))


def test_statistics_are_the_exact_average_over_the_batches() -> None:
    net = _net()
    batches = [torch.rand(2, 3, 8, 8) + i for i in range(3)]
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 8, 8) * 10)  # stale statistics from other inputs
    assert recalibrate_bn(net, batches) == 6 and not net.training
    with torch.no_grad():
        feats = [net[0](b) for b in batches]  # the first BN's inputs
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var((0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(net[1].running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net[1].running_var, var, rtol=1e-5, atol=1e-6)
    assert net[1].momentum == 0.03  # restored for training


def test_skip_and_empty_keep_statistics() -> None:
    net = _net()
    frozen_mean = net[3][1].running_mean.clone() + 5
    net[3][1].running_mean.copy_(frozen_mean)
    recalibrate_bn(net, [torch.rand(2, 3, 8, 8)], skip=net[3])
    torch.testing.assert_close(net[3][1].running_mean, frozen_mean)
    assert not torch.equal(net[1].running_mean, torch.zeros(4))
    before = net[1].running_mean.clone()
    assert recalibrate_bn(net, iter([])) == 0
    torch.testing.assert_close(net[1].running_mean, before)
