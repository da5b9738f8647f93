"""BatchNorm fusion: every BN of a model folded into the conv before it, on a deep copy.

Two shapes occur in the zoo:
- conv -> BN pairs (``Conv``, ``CBH``, ``mb3Block``, torchvision/Cadene blocks, any ``nn.Sequential``):
  the BN becomes the conv's weight scale and bias and is replaced by ``nn.Identity``.
- the BN after a CSP concat (``BottleneckCSP``, ``BottleneckCSP2``, ``SPPCSP``): it normalises
  ``cat(branch_a, branch_b)`` and is followed by Mish, so it cannot move forward into ``cv4``/
  ``cv3``/``cv7``. Each concat channel comes from one branch, so it folds backward per channel
  slice into the plain 1x1 conv that produced that slice (``cv3``/``cv2``). Where a branch ends in
  an activation (CSP2's Bottleneck, SPPCSP's ``cv6``: Mish) nothing can absorb it; those channels
  keep a per-channel ``ChannelAffine`` (exported as one Mul + Add, which TensorRT fuses into a
  scale layer) and the BN node disappears either way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from edgeyolo.models.blocks.csp import BottleneckCSP, BottleneckCSP2, SPPCSP
from edgeyolo.models.graph import RowGraph


@dataclass
class FuseReport:
    fused: int = 0  # BNs folded completely into a conv
    affine: int = 0  # concat BNs whose activation-fed half is kept as a ChannelAffine

    @property
    def total(self) -> int:
        return self.fused + self.affine


class ChannelAffine(nn.Module):
    """y = x * scale + shift per channel: what is left of a BN that no conv can absorb."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale.detach().clone().view(1, -1, 1, 1))
        self.register_buffer("shift", shift.detach().clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift  # (B, C, H, W)


def bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A BN in eval mode as y = x * scale + shift."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fuse a BatchNorm2d without running statistics (track_running_stats=False)")
    w = bn.weight if bn.weight is not None else torch.ones_like(bn.running_mean)
    b = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    scale = w / torch.sqrt(bn.running_var + bn.eps)
    return scale.detach(), (b - bn.running_mean * scale).detach()


@torch.no_grad()
def fold_affine_into_conv(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """A new conv computing ``conv(x) * scale + shift`` (per output channel), with a bias."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused = fused.to(conv.weight.device, conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    b0 = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    fused.bias.copy_(b0 * scale + shift)
    return fused


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv -> BN as one biased conv (eval-mode statistics)."""
    if bn.num_features != conv.out_channels:
        raise ValueError(f"BN of {bn.num_features} channels after a conv of {conv.out_channels}")
    return fold_affine_into_conv(conv, *bn_affine(bn))


def _fuse_named_pairs(module: nn.Module, rep: FuseReport) -> None:
    """``conv``/``bn`` and ``convN``/``bnN`` attribute pairs of one module."""
    children = dict(module.named_children())
    for name, child in children.items():
        if not isinstance(child, nn.Conv2d) or not name.startswith("conv"):
            continue
        bn = children.get("bn" + name[len("conv"):])
        if isinstance(bn, nn.BatchNorm2d) and bn.num_features == child.out_channels:
            setattr(module, name, fuse_conv_bn(child, bn))
            setattr(module, "bn" + name[len("conv"):], nn.Identity())
            rep.fused += 1


def _fuse_sequential(seq: nn.Sequential, rep: FuseReport) -> None:
    """Consecutive Conv2d -> BatchNorm2d entries of a Sequential (torchvision blocks, shortcuts)."""
    keys = list(seq._modules)
    for a, b in zip(keys, keys[1:]):
        conv, bn = seq._modules[a], seq._modules[b]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            seq._modules[a] = fuse_conv_bn(conv, bn)
            seq._modules[b] = nn.Identity()
            rep.fused += 1


def _fuse_rowgraph(graph: RowGraph, rep: FuseReport) -> None:
    """A YAML row ``nn.BatchNorm2d`` that reads only a ``nn.Conv2d`` row (the ResNet stem) when
    nothing else reads that conv row."""
    for j, (layer, src) in enumerate(zip(graph.layers, graph.sources)):
        if not isinstance(layer, nn.BatchNorm2d) or len(src) != 1 or src[0] < 0:
            continue
        i = src[0]
        conv = graph.layers[i]
        readers = [k for k, s in enumerate(graph.sources) if i in s]
        if isinstance(conv, nn.Conv2d) and readers == [j] and i not in graph.outputs:
            graph.layers[i] = fuse_conv_bn(conv, layer)
            graph.layers[j] = nn.Identity()
            rep.fused += 1


def _fuse_csp_concat_bn(block: nn.Module, rep: FuseReport) -> None:
    """Fold the post-concat BN of a CSP block into the plain convs that produce its channels."""
    scale, shift = bn_affine(block.bn)
    c = scale.numel() // 2
    # (branch-A producer or None when branch A ends in an activation, branch-B producer)
    if isinstance(block, BottleneckCSP):
        producers = ("cv3", "cv2")
    elif isinstance(block, (BottleneckCSP2, SPPCSP)):
        producers = (None, "cv2")
    else:  # pragma: no cover - callers pass only these three
        raise TypeError(type(block).__name__)
    keep_scale, keep_shift = torch.ones_like(scale), torch.zeros_like(shift)
    for half, name in enumerate(producers):
        sl = slice(half * c, (half + 1) * c)
        if name is not None:
            setattr(block, name, fold_affine_into_conv(getattr(block, name), scale[sl], shift[sl]))
        else:
            keep_scale[sl], keep_shift[sl] = scale[sl], shift[sl]
    if all(p is not None for p in producers):
        block.bn = nn.Identity()
        rep.fused += 1
    else:
        block.bn = ChannelAffine(keep_scale, keep_shift)
        rep.affine += 1


@torch.no_grad()
def fuse_batchnorm(model: nn.Module) -> tuple[nn.Module, FuseReport]:
    """A deep copy of ``model`` (put in eval mode) with every BatchNorm2d fused away.

    Raises ValueError if a BN is left that follows no conv: better to refuse than to export a
    graph with BatchNormalization nodes the caller was promised would not be there.
    """
    model = copy.deepcopy(model).eval()
    rep = FuseReport()
    for module in list(model.modules()):
        if isinstance(module, (BottleneckCSP, BottleneckCSP2, SPPCSP)) and isinstance(module.bn, nn.BatchNorm2d):
            _fuse_csp_concat_bn(module, rep)
        if isinstance(module, RowGraph):
            _fuse_rowgraph(module, rep)
        elif isinstance(module, nn.Sequential):
            _fuse_sequential(module, rep)
        else:
            _fuse_named_pairs(module, rep)
    left = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"{len(left)} BatchNorm layers follow no conv and cannot be fused (first: {left[0]})")
    return model, rep
