"""Model summaries: the seeds' per-row table, a backbone/neck/head breakdown, and FLOPs."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

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


@contextmanager
def runnable(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for a shape-only forward, then as it was. A meta-device model is moved
    onto uninitialised CPU memory meanwhile and back to meta after: on meta every op runs through
    Python reference decompositions (~1 ms each), while real kernels on small inputs give the same
    shapes in a few ms; the values are never read. Moved in place, because copying a module tree
    (``copy.deepcopy``) costs more than the forwards."""
    meta = next(model.parameters()).is_meta
    training, threads = model.training, torch.get_num_threads()
    if meta:
        model.to_empty(device="cpu")
    # One thread: these forwards are tiny, and on a CPU another job keeps busy, a thread team waits
    # on every op (36 models' probes took 138 s on 2 threads against 18 s on one, beside a training run).
    torch.set_num_threads(1)
    try:
        yield model.eval()
    finally:
        torch.set_num_threads(threads)
        model.train(training)
        if meta:
            model.to("meta")


def part_stats(model: YOLO, imgsz: int = 640) -> list[PartStats]:
    """Params and GFLOPs (2 x multiply-accumulates of convs and linear layers, as thop-based YOLO
    tables and ``torch.utils.flop_counter`` count them) of the backbone, neck and head at a square
    ``imgsz`` input, batch 1.

    Counted exactly from one forward at twice the largest stride instead of one at ``imgsz``: when
    the side is a multiple of the largest stride every conv's output area is the input's over its
    stride squared, so its FLOPs scale with ``imgsz**2``, except the squeeze-excitation convs (and
    any linear layer), which run on pooled 1x1 maps: at twice the largest stride every other map is
    at least 2x2, so an output of one position is one that does not scale. A meta-device model runs
    the forward on uninitialised CPU memory (see ``runnable``). Module hooks count the convs:
    ``FlopCounterMode`` sends every op through Python dispatch (half a second a model, which
    ``info --list`` paid 36 times) for the same numbers (tests/test_model_zoo.py holds them equal)."""
    s1 = max(f.stride for f in model.feature_info)  # the largest stride, as data: a meta model has no values
    if imgsz <= 0 or imgsz % s1:
        raise ValueError(f"imgsz must be a positive multiple of the model's largest stride {s1}, got {imgsz}")
    with runnable(model):
        fixed, scaled = _part_flops(model, 2 * s1)
    stats = []
    for k, (name, part) in enumerate((("backbone", model.backbone), ("neck", model.neck), ("head", model.head))):
        flops = fixed[k] + scaled[k] * imgsz * imgsz / (4 * s1 * s1)
        tensors, params = count_params(part)
        stats.append(PartStats(name, params, tensors, flops / 1e9))
    return stats


@torch.no_grad()
def _part_flops(model: YOLO, size: int) -> tuple[list[int], list[int]]:
    """FLOPs of the backbone, neck and head of one ``size`` x ``size`` forward of ``model`` (eval
    mode), 2 x output elements x weights per output element per conv / linear, split in two: those
    whose output is one position (pooled: they do not grow with the input) and the rest."""
    fixed, scaled = [0, 0, 0], [0, 0, 0]
    part = [0]

    def count(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        flops = 2 * out.numel() * m.weight[0].numel()  # weight[0]: (c_in / groups) x kh x kw, or in_features
        pooled = out.dim() < 4 or out.shape[-1] * out.shape[-2] == 1
        (fixed if pooled else scaled)[part[0]] += flops

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        p = next(model.parameters())
        x = torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype)
        for k, run in enumerate((lambda t: model.backbone(t), lambda t: model.neck(*t), lambda t: model.head(t))):
            part[0] = k
            x = run(x)
    finally:
        for h in hooks:
            h.remove()
    return fixed, scaled


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
