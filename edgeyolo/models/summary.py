"""Model summaries: the seeds' per-row table, a backbone/neck/head breakdown, and FLOPs."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .yolo import YOLO


@dataclass(frozen=True)
class PartStats:
    name: str
    params: int
    tensors: int
    gflops: float


def count_params(module: nn.Module) -> tuple[int, int]:
    """(number of parameter tensors, number of parameters): the seeds' "layers" and "parameters"."""
    ps = list(module.parameters())
    return len(ps), sum(p.numel() for p in ps)


def part_stats(model: YOLO, imgsz: int = 640) -> list[PartStats]:
    """Params and GFLOPs (2 x multiply-accumulates of convs/matmuls, as thop-based YOLO tables) of
    the backbone, neck and head at a square ``imgsz`` input, batch 1. Counted on a meta-device
    copy: no memory for activations and no arithmetic, so even the L models at 640 are instant."""
    if imgsz <= 0 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32, got {imgsz}")
    meta = (model if model.head.stride.is_meta else copy.deepcopy(model).to("meta")).eval()
    x = torch.zeros(1, 3, imgsz, imgsz, device="meta")
    flops = []
    with torch.no_grad():
        for run in (lambda t: meta.backbone(t), lambda t: meta.neck(*t), lambda t: meta.head(t)):
            with FlopCounterMode(display=False) as counter:
                x = run(x)
            flops.append(counter.get_total_flops() / 1e9)
    stats = []
    for name, part, gf in zip(("backbone", "neck", "head"), (model.backbone, model.neck, model.head), flops):
        tensors, params = count_params(part)
        stats.append(PartStats(name, params, tensors, gf))
    return stats


def summary_line(model: YOLO, gflops: float | None = None) -> str:
    """``Model Summary: L layers, P parameters, P gradients, G GFLOPs (exact P)`` as the seeds print it."""
    tensors, params = count_params(model)
    grads = sum(p.numel() for p in model.parameters() if p.requires_grad)
    gf = "" if gflops is None else f", {gflops:.1f} GFLOPs"
    return f"Model Summary: {tensors} layers, {params:g} parameters, {grads:g} gradients{gf} ({params:,} parameters)"


def layer_table(model: YOLO) -> str:
    """The seeds' table: ``idx  from  n  params  module  arguments``, one line per YAML row."""
    lines = [f"{'':>3}{'from':>18}{'n':>3}{'params':>10}  {'module':<40}{'arguments':<30}"]
    for r in model.rows:
        _, params = count_params(r.module)
        lines.append(f"{r.index:>3}{r.source:>18}{r.n:>3}{params:>10}  {r.module_name:<40}{_fmt_args(r.args):<30}")
    return "\n".join(lines)


def _fmt_args(args: list) -> str:
    text = str(args)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(model: YOLO, imgsz: int = 640) -> str:
    """The full ``edgeyolo info`` text: table, per-part breakdown and the summary line."""
    stats = part_stats(model, imgsz)
    total_gf = sum(s.gflops for s in stats)
    _, total = count_params(model)
    out = [layer_table(model), "", f"{'part':<10}{'params':>14}{'share':>8}{'GFLOPs@' + str(imgsz):>14}{'share':>8}"]
    for s in stats:
        out.append(f"{s.name:<10}{s.params:>14,}{s.params / total:>8.1%}{s.gflops:>14.2f}{s.gflops / max(total_gf, 1e-9):>8.1%}")
    taps = ", ".join(f"{f.name}=row {f.row} ({f.channels} ch, /{f.stride})" for f in model.feature_info)
    out += [f"backbone taps: {taps}", "", summary_line(model, total_gf)]
    return "\n".join(out)
