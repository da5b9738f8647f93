"""Rows of torchvision's MobileNetV2/V3 ``features``, built from torchvision's own classes so the
state_dict layout (and therefore ImageNet checkpoint loading) is torchvision's by construction."""
from __future__ import annotations

from functools import partial

from torch import nn
from torchvision.models import mobilenetv2, mobilenetv3
from torchvision.ops.misc import Conv2dNormActivation

# torchvision's MobileNetV3 uses BN eps 1e-3 / momentum 0.01; MobileNetV2 uses BatchNorm2d defaults.
_V3_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
_ACT = {"relu6": nn.ReLU6, "hswish": nn.Hardswish, "relu": nn.ReLU}


class TVConvBNAct(Conv2dNormActivation):
    """torchvision's Conv2dNormActivation (stem and last conv of MobileNetV2/V3)."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1, act: str = "relu6", v3_norm: bool = False):
        if act not in _ACT:
            raise ValueError(f"TVConvBNAct act must be one of {sorted(_ACT)}, got {act!r}")
        super().__init__(c1, c2, kernel_size=k, stride=s, norm_layer=_V3_NORM if v3_norm else nn.BatchNorm2d,
                         activation_layer=_ACT[act])


class MBv2Block(mobilenetv2.InvertedResidual):
    """torchvision MobileNetV2 InvertedResidual(c1, c2, stride, expand_ratio)."""

    def __init__(self, c1: int, c2: int, s: int = 1, t: int = 6):
        super().__init__(c1, c2, s, t)


class MBv3Block(mobilenetv3.InvertedResidual):
    """torchvision MobileNetV3 InvertedResidual: SE after the depthwise conv on the expanded
    channels (squeeze = make_divisible(exp/4, 8), biased, Hardsigmoid gate), no expand conv when
    exp == c1, BN eps 1e-3."""

    def __init__(self, c1: int, k: int, exp: int, c2: int, se: bool, act: str, s: int):
        if act not in ("RE", "HS"):
            raise ValueError(f"MBv3Block act must be 'RE' or 'HS' (torchvision's codes), got {act!r}")
        cnf = mobilenetv3.InvertedResidualConfig(c1, k, exp, c2, bool(se), act, s, 1, 1.0)
        super().__init__(cnf, _V3_NORM)
