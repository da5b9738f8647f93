"""The module registry: how a YAML row ``[from, n, module, args]`` becomes a module.

Each entry is a row builder ``RowSpec -> BuiltRow``. The YAML names a module by its registry name
(``Conv``, ``mb3Block``, ``nn.Conv2d``); nothing is looked up with ``globals()`` or ``eval``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .blocks.conv import Concat, Conv
from .blocks.csp import SPPCSP, Bottleneck, BottleneckCSP, BottleneckCSP2
from .blocks.mobilenet_seed import CBH, mb3Block
from .blocks.mobilenet_tv import MBv2Block, MBv3Block, TVConvBNAct
from .blocks.resnet import ResLayer, SEResLayer


@dataclass(frozen=True)
class RowSpec:
    """What a row builder gets: input channels (one per source), the YAML args and repeat count,
    the depth and width multiples and the model's default activation."""

    c_in: list[int]
    args: list[Any]
    n: int
    depth_multiple: float
    width_multiple: float
    activation: str

    def depth(self) -> int:
        """Repeats scaled by the depth multiple (as u5); only the u5 blocks are depth-scaled."""
        return max(round(self.n * self.depth_multiple), 1) if self.n > 1 else self.n

    def width(self, c: int) -> int:
        """Scale channels by the width multiple, rounded up to a multiple of 8 (as u5)."""
        return int(math.ceil(c * self.width_multiple / 8) * 8) if self.width_multiple != 1 else int(c)


@dataclass(frozen=True)
class BuiltRow:
    module: nn.Module
    c_out: int
    shown_args: list[Any]  # the constructor's positional args, as the seeds' tables print them
    n: int  # the repeat count actually built


RowBuilder = Callable[[RowSpec], BuiltRow]
MODULES: dict[str, RowBuilder] = {}


def register_module(name: str) -> Callable[[RowBuilder], RowBuilder]:
    def deco(fn: RowBuilder) -> RowBuilder:
        if name in MODULES:
            raise ValueError(f"module {name!r} registered twice")
        MODULES[name] = fn
        return fn
    return deco


def get_row_builder(name: str) -> RowBuilder:
    try:
        return MODULES[name]
    except KeyError:
        raise ValueError(f"unknown module {name!r}; registered: {', '.join(sorted(MODULES))}") from None


def _repeat(make: Callable[[], nn.Module], n: int) -> nn.Module:
    return nn.Sequential(*(make() for _ in range(n))) if n > 1 else make()


def _scaled(cls: type[nn.Module]) -> RowBuilder:
    """u5's rule for Conv/Bottleneck: args[0] is c2 (width-scaled), n repeats the module."""
    def build(r: RowSpec) -> BuiltRow:
        c1, c2, n = r.c_in[0], r.width(r.args[0]), r.depth()
        args = [c1, c2, *r.args[1:]]
        return BuiltRow(_repeat(lambda: cls(*args, act=r.activation), n), c2, args, n)
    return build


def _scaled_csp(cls: type[nn.Module]) -> RowBuilder:
    """u5's rule for the CSP blocks: args[0] is c2 (width-scaled), n goes inside the block."""
    def build(r: RowSpec) -> BuiltRow:
        c1, c2, n = r.c_in[0], r.width(r.args[0]), r.depth()
        args = [c1, c2, n, *r.args[1:]]
        return BuiltRow(cls(*args, act=r.activation), c2, args, n)
    return build


def _fixed(cls: type[nn.Module], out_index: int) -> RowBuilder:
    """Backbone blocks, never scaled (their layout must match pretrained checkpoints): c1 is
    prepended to the YAML args and c2 is ``args[out_index]``."""
    def build(r: RowSpec) -> BuiltRow:
        args = [r.c_in[0], *r.args]
        return BuiltRow(_repeat(lambda: cls(*args), r.n), int(r.args[out_index]), args, r.n)
    return build


def _res_stage(cls: type[nn.Module]) -> RowBuilder:
    """ResNet stages: args = [planes, stride, groups, width_per_group, downsample]; n blocks inside."""
    def build(r: RowSpec) -> BuiltRow:
        args = [r.c_in[0], r.args[0], r.n, *r.args[1:]]
        return BuiltRow(cls(*args), int(r.args[0]) * 4, args, r.n)
    return build


def _same_channels(cls: type[nn.Module]) -> RowBuilder:
    """Shape-preserving torch.nn modules (ReLU, MaxPool2d, Upsample): YAML args go straight in."""
    def build(r: RowSpec) -> BuiltRow:
        return BuiltRow(cls(*r.args), r.c_in[0], list(r.args), 1)
    return build


for _name, _cls in (("Conv", Conv), ("Bottleneck", Bottleneck)):
    register_module(_name)(_scaled(_cls))
for _name, _cls in (("BottleneckCSP", BottleneckCSP), ("BottleneckCSP2", BottleneckCSP2), ("SPPCSP", SPPCSP)):
    register_module(_name)(_scaled_csp(_cls))
register_module("CBH")(_fixed(CBH, 0))
register_module("mb3Block")(_fixed(mb3Block, 1))
register_module("TVConvBNAct")(_fixed(TVConvBNAct, 0))
register_module("MBv2Block")(_fixed(MBv2Block, 0))
register_module("MBv3Block")(_fixed(MBv3Block, 2))
register_module("nn.Conv2d")(_fixed(nn.Conv2d, 0))
register_module("resLayer")(_res_stage(ResLayer))
register_module("seresLayer")(_res_stage(SEResLayer))
for _name, _cls in (("nn.ReLU", nn.ReLU), ("nn.MaxPool2d", nn.MaxPool2d), ("nn.Upsample", nn.Upsample)):
    register_module(_name)(_same_channels(_cls))


@register_module("nn.BatchNorm2d")
def _batchnorm(r: RowSpec) -> BuiltRow:
    return BuiltRow(nn.BatchNorm2d(r.c_in[0]), r.c_in[0], [r.c_in[0]], 1)


@register_module("Concat")
def _concat(r: RowSpec) -> BuiltRow:
    dim = r.args[0] if r.args else 1
    return BuiltRow(Concat(dim), sum(r.c_in), [dim], 1)


# Modules whose forward takes the list of all their sources rather than one tensor.
MULTI_INPUT = frozenset({"Concat"})
