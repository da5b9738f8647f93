"""YOLO: backbone -> neck -> Detect, each a separate part so that they can be summarised,
loaded (pretrained backbones) and exported on their own."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .detect import Detect
from .graph import RowGraph


@dataclass(frozen=True)
class FeatureInfo:
    """A backbone tap, declared by name and row in the YAML; channels and stride are measured."""

    name: str
    row: int
    channels: int
    stride: int


@dataclass(frozen=True)
class RowInfo:
    """One row of the model table, as the seeds print it."""

    index: int
    part: str  # backbone | neck | head
    source: str
    n: int
    module_name: str
    args: list[Any]
    module: nn.Module


class YOLO(nn.Module):
    """A YOLOv4 detector built from a YAML config (see ``edgeyolo.models.builder``).

    In training mode ``forward`` returns the raw level outputs [(B, na, ny, nx, 5 + nc)]; in eval
    mode the decoded (B, N, 5 + nc) tensor (cx, cy, w, h in input pixels, objectness, class
    probabilities). ``cfg`` is the resolved config: ``build_model(model.cfg)`` rebuilds it.
    """

    def __init__(self, backbone: RowGraph, neck: RowGraph, head: Detect, cfg: dict[str, Any],
                 feature_info: list[FeatureInfo], rows: list[RowInfo]):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.cfg = cfg
        self.feature_info = feature_info
        self.rows = rows

    @property
    def nc(self) -> int:
        return self.head.nc

    @property
    def stride(self) -> torch.Tensor:
        return self.head.stride

    def set_anchors(self, anchors: torch.Tensor) -> None:
        """Replace the head's anchors, (nl, na, 2) in input pixels, in the weights and in ``cfg``
        (rounded to 0.01 px in both, so that ``build_model(model.cfg)`` rebuilds the same model)."""
        old = self.head.anchors
        new = torch.as_tensor(anchors, dtype=torch.float32)
        if new.numel() != old.numel():
            raise ValueError(f"the head has {tuple(old.shape)} anchors (levels, per level, w/h), "
                             f"got {tuple(new.shape)}")
        new = new.reshape(old.shape).mul(100).round().div(100)
        if not bool((new > 0).all()):
            raise ValueError(f"anchors must be positive, got {new.flatten().tolist()}")
        old.copy_(new.to(old.device))
        self.cfg = {**self.cfg, "anchors": [[round(v, 2) for v in level.flatten().tolist()] for level in new]}

    def forward_raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone(x)  # (B, 3, H, W) -> [P3 (B, c3, H/8, W/8), P4 (../16), P5 (../32)]
        return self.head(self.neck(*feats))  # -> [(B, na, H/s, W/s, 5 + nc) per level]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        raw = self.forward_raw(x)
        return raw if self.training else self.head.decode(raw)  # eval: (B, N, 5 + nc)
