"""Mish for training on CPUs: the same function as ``nn.Mish``, with a faster autograd on the CPU.

Why by hand: ATen's CPU Mish evaluates ``tanh(log1p(exp(x)))`` and its backward the same again;
its ``log1p`` and ``tanh`` are several times slower than its vectorised ``sigmoid``, so Mish's
forward and backward took about a seventh of a yolov4s-mbv3s training step at 320 on a 2-core CPU.
Written with ``s = sigmoid(x)``: ``tanh(softplus(x)) = n / (2 - n)`` with ``n = s (2 - s)``
(because ``1 + e^x = 1 / (1 - s)``). s stays in [0, 1] and 2 - n in [1, 2]: no overflow or
division by zero for any x. The forward also computes the derivative and saves it instead of ``x``
(one saved tensor, as ATen's, so training memory is unchanged): the backward is one multiply.
Forward + backward of a channels-last (16, 128, 40, 40) tensor, 2 threads, on the AVX2-only AMD EPYC
development host: ATen ~35 ms, this form recomputing t and s in the backward ~29 ms, this form ~12 ms;
a whole training step ~2 % faster than with the recomputing form (``benchmarks/studies/
train_step_compare.py`` measures the step against ATen's Mish).
(``torch.compile`` of the same form runs that tensor in 4 ms, yet a whole training step was no faster
with it, and it cost 2.4 s of compiling per process and a C++ compiler: not used.)

Everywhere else (CUDA, whose Mish kernel is fused already; no grad; tracing, scripting, ONNX
export, inside the user's own torch.compile) it is ``F.mish``, so exported graphs and checkpoints
are those of ``nn.Mish``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _tanh_softplus(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tanh(softplus(x)), sigmoid(x)), elementwise, same shape as ``x``."""
    s = torch.sigmoid(x)
    n = torch.rsub(s, 2).mul_(s)  # n = s (2 - s), in [0, 1]
    return n.div_(torch.rsub(n, 2)), s  # n / (2 - n)


class _MishCPU(torch.autograd.Function):
    """mish(x) = x * tanh(softplus(x)); d/dx = t + x * s * (1 - t^2) with t = tanh(softplus(x)).

    The derivative is computed in the forward, where t and s are at hand, and saved in place of x:
    the backward is then one multiply instead of recomputing t and s (11 passes over the tensor
    become 1, the forward grows by 3), and the saved tensor is the same size as x.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        t, s = _tanh_softplus(x)
        y = x * t
        one_minus_t2 = torch.addcmul(x.new_ones(()), t, t, value=-1)  # 1 - t^2
        ctx.save_for_backward(t.addcmul_(one_minus_t2.mul_(s), x))  # t + x s (1 - t^2)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (derivative,) = ctx.saved_tensors
        return grad * derivative


def _cpu_autograd(x: torch.Tensor) -> bool:
    """Whether ``x`` takes the CPU autograd path: eager CPU training only."""
    return (x.requires_grad and x.device.type == "cpu" and torch.is_grad_enabled()
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
            and not torch.compiler.is_compiling())


class Mish(nn.Mish):
    """``nn.Mish`` whose CPU training path is ``_MishCPU`` (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return F.mish(x)
        return self._eager(x)

    @torch.jit.unused
    def _eager(self, x):  # noqa: ANN001, ANN202 - TorchScript cannot resolve this stub's string annotations
        return _MishCPU.apply(x) if _cpu_autograd(x) else F.mish(x)
