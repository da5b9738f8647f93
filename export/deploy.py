"""DeployModel: what gets exported, and ``prepare_model``: the graph preparation pipeline.

The wrapper holds the choices (decode or raw heads) instead of setting flags on the model's
modules, so the trained model object is never changed by an export.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .fuse import fuse_batchnorm
from .rewrite import rewrite_hardsigmoid, rewrite_hardswish, rewrite_mish
from .targets import Target


class DeployModel(nn.Module):
    """images (B, 3, H, W) float 0..1 RGB -> ``output`` (B, N, 5 + nc) decoded boxes (cx, cy, w,
    h in input pixels, objectness, class probabilities), or with ``decode=False`` the raw level
    logits as a tuple [(B, na, H/s, W/s, 5 + nc)] (``--raw``).

    With ``uint8_input`` the input is the letterboxed image as OpenCV holds it, (B, H, W, 3) uint8
    BGR, and the layout change, BGR->RGB and /255 run in the graph: on a Jetson they are CPU passes
    over every pixel that the GPU does for almost nothing, leaving the host only the letterbox."""

    def __init__(self, model: nn.Module, decode: bool = True, uint8_input: bool = False):
        super().__init__()
        self.model = model
        self.decode = decode
        self.uint8_input = uint8_input

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.uint8_input:
            # transpose while still uint8 (a quarter of the bytes), then the channel flip, cast and
            # divide (not * 1/255: the same rounding as the runtime's float pre-processing)
            images = images.permute(0, 3, 1, 2).flip(1).float() / 255.0
        raw = self.model.forward_raw(images)
        return self.model.head.decode(raw) if self.decode else tuple(raw)


@dataclass
class PrepReport:
    fused_bn: int = 0
    affine_bn: int = 0
    rewrites: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"fused {self.fused_bn + self.affine_bn} BN"]
        if self.affine_bn:
            parts[0] += f" ({self.affine_bn} kept as a per-channel scale after a CSP concat)"
        parts += [f"rewrote {n} {op}" for op, n in self.rewrites.items() if n]
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return {"fused_bn": self.fused_bn, "affine_bn": self.affine_bn, "rewrites": dict(self.rewrites)}


def prepare_model(model: nn.Module, target: Target, decode: bool = True,
                  uint8_input: bool = False) -> tuple[DeployModel, PrepReport]:
    """Fuse BN and apply the target's activation rewrites; returns an eval-mode DeployModel over a
    copy (``model`` itself is untouched) and the counts."""
    rep = PrepReport()
    m, fuse_rep = fuse_batchnorm(model)
    rep.fused_bn, rep.affine_bn = fuse_rep.fused, fuse_rep.affine
    if target.hardswish is not None:
        m, rep.rewrites["hswish"] = rewrite_hardswish(m, target.hardswish)
    m, rep.rewrites["hsigmoid"] = rewrite_hardsigmoid(m)
    if target.mish != "keep":
        m, rep.rewrites["mish"] = rewrite_mish(m, target.mish)
    return DeployModel(m, decode=decode, uint8_input=uint8_input).eval(), rep
