"""Activation rewrites for TensorRT targets, each a module swap on a deep copy returning
(new_model, count). The replacements compute the same function; they only change which ONNX
ops the exporter writes:

- hswish -> ``x * HardSigmoid(x)`` (HardSigmoid is a native TensorRT activation since 7.0), or
  ``x * clip(x + 3, 0, 6) / 6`` for TensorRT 8.2, whose parser has no HardSwish importer and
  whose opset ceiling (13) predates the op anyway;
- hsigmoid -> ``HardSigmoid(alpha=1/6, beta=0.5)``, one op whatever the opset;
- Mish -> ``x * tanh(softplus(x))`` (Softplus, Tanh, Mul) for targets below TensorRT 10, which
  have no Mish importer, or the sigmoid form for ONNX Runtime (``MishSigmoid``).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class HardSwishMul(nn.Module):
    """hswish(x) = x * hardsigmoid(x); exports as HardSigmoid + Mul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardsigmoid(x)


class HardSwishClip(nn.Module):
    """hswish(x) = x * clip(x + 3, 0, 6) / 6; exports as Add, Clip, Mul, Div (TensorRT 8.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class HardSigmoidOp(nn.Module):
    """hsigmoid(x) = HardSigmoid(alpha=1/6, beta=0.5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardsigmoid(x)


class MishExplicit(nn.Module):
    """mish(x) = x * tanh(softplus(x)); exports as Softplus, Tanh, Mul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class _HalfAffine(torch.autograd.Function):
    """y = 0.5 * x + 0.5 for x in [0, 1], exported as one HardSigmoid(alpha=0.5, beta=0.5) (its
    clip to [0, 1] never bites there) instead of a Mul and an Add: one pass over the tensor less."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return 0.5 * x + 0.5

    @staticmethod
    def symbolic(g, x):  # noqa: ANN001, ANN205 - the TorchScript-based ONNX exporter's hook
        return g.op("HardSigmoid", x, alpha_f=0.5, beta_f=0.5)


class MishSigmoid(nn.Module):
    """mish(x) with only ops ONNX Runtime vectorises: with u = -x and t = sigmoid(u),
    tanh(softplus(x)) = ((1 + e^x)^2 - 1) / ((1 + e^x)^2 + 1) = (1 - t^2) / (1 + t^2), so
    mish(x) = u - u / h with h = (1 + t^2) / 2. t stays in (0, 1): no overflow for any x; exports
    as Neg, Sigmoid, Mul, HardSigmoid (the affine h), Div, Sub. Why: ORT's Softplus kernel is a
    scalar loop (43% of yolov4s-mbv3s's latency; so is its Log, which rules out u * tanh(log t)),
    its Sigmoid is MLAS-vectorised. x is read once, by the Neg: in a Q/DQ graph ORT gives every
    consumer of a DequantizeLinear its own copy (EnsureUniqueDQForNodeUnit), so reading x three
    times would dequantize it three times (tests/test_export_int8.py holds one per tensor)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = -x
        t = torch.sigmoid(u)
        t2 = t * t
        # the custom ONNX symbolic only while exporting ONNX: TorchScript cannot save a Python Function
        h = _HalfAffine.apply(t2) if torch.onnx.is_in_onnx_export() else 0.5 * t2 + 0.5
        return u - u / h


MISH_STYLES = {"explicit": MishExplicit, "sigmoid": MishSigmoid}


def swap_modules(model: nn.Module, match: Callable[[nn.Module], bool],
                 make: Callable[[nn.Module], nn.Module]) -> tuple[nn.Module, int]:
    """A deep copy of ``model`` with every submodule for which ``match`` holds replaced by
    ``make(old)``; returns (copy, number replaced)."""
    model = copy.deepcopy(model)
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if match(child):
                parent._modules[name] = make(child)
                count += 1
    return model, count


def rewrite_hardswish(model: nn.Module, style: str = "hardsigmoid") -> tuple[nn.Module, int]:
    """nn.Hardswish -> HardSwishMul (``style="hardsigmoid"``) or HardSwishClip (``"clip"``)."""
    if style not in ("hardsigmoid", "clip"):
        raise ValueError(f"hardswish rewrite style must be 'hardsigmoid' or 'clip', got {style!r}")
    cls = HardSwishMul if style == "hardsigmoid" else HardSwishClip
    return swap_modules(model, lambda m: type(m) is nn.Hardswish, lambda m: cls())


def rewrite_hardsigmoid(model: nn.Module) -> tuple[nn.Module, int]:
    """nn.Hardsigmoid -> HardSigmoidOp."""
    return swap_modules(model, lambda m: type(m) is nn.Hardsigmoid, lambda m: HardSigmoidOp())


def rewrite_mish(model: nn.Module, style: str = "explicit") -> tuple[nn.Module, int]:
    """nn.Mish -> MishExplicit (``style="explicit"``) or MishSigmoid (``"sigmoid"``)."""
    if style not in MISH_STYLES:
        raise ValueError(f"mish rewrite style must be one of {', '.join(MISH_STYLES)}, got {style!r}")
    cls = MISH_STYLES[style]
    return swap_modules(model, lambda m: isinstance(m, nn.Mish), lambda m: cls())
