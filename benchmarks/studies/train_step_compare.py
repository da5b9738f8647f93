"""One training step (forward, loss, backward, AdamW, EMA) of edgeyolo's default model beside
Ultralytics yolov8n's, on the same random batch shape, threads and machine, with the same FLOP
counter (``torch.utils.flop_counter``), interleaved round by round so that a noisy shared host
weighs on both alike; plus where edgeyolo's step time goes (``torch.profiler``, by operator kind).

edgeyolo's step is run as its trainer runs it on a CPU (channels-last, freed memory kept by
``train.allocator``, the CPU Mish autograd of ``models/blocks/mish.py``), and with each of those
turned off in turn, so that each one's share shows; yolov8n as Ultralytics runs it, and with the
same allocator settings (glibc's environment tunables), so that the allocator's gain is not
mistaken for the model's.

Each cell runs in its own process: the peer in ``--peer-python`` (skipped with the reason where
Ultralytics is not importable). Writes ``<out>/train_throughput.{md,json}``.

    python benchmarks/studies/train_step_compare.py --peer-python /path/to/venv/bin/python [--rounds 6]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

# Operator families for the breakdown; an op counts in the first family whose word its name holds.
# An event's time goes to the outermost enclosing event that names a family (so the elementwise ops
# inside edgeyolo's Mish autograd count as Mish, not as whatever their own names say), families
# tried in this order; autograd's "evaluate_function: XBackward0" events name the backward ones.
FAMILIES = (("conv backward", ("convolution_backward", "convolutionbackward", "conv_depthwise2d_backward",
                               "mkldnn_convolution_backward")),
            ("conv forward", ("convolution", "conv2d", "conv_depthwise", "mkldnn_convolution")),
            ("batch norm", ("batch_norm", "batchnorm")), ("mish", ("mish",)),
            ("hardswish / hardsigmoid", ("hardswish", "hardsigmoid")), ("max-pool (SPP)", ("max_pool", "maxpool")),
            ("optimizer + EMA", ("optimizer.step", "_foreach", "adamw", "lerp", "addcdiv")),
            ("loss", ("binary_cross_entropy", "atan", "sigmoid")),
            ("copies / cat / layout", ("copy_", "cat", "contiguous", "clone", "to_dense")))


def _targets(batch: int, imgsz: int, per_image: int = 14):
    """Random (N, 6) targets ``image, class, cx, cy, w, h`` (normalised) of 12-48 px boxes."""
    import torch
    g = torch.Generator().manual_seed(0)
    n = batch * per_image
    wh = (12 + 36 * torch.rand(n, 2, generator=g)) / imgsz
    xy = wh / 2 + (1 - wh) * torch.rand(n, 2, generator=g)
    return torch.cat([torch.arange(batch).repeat_interleave(per_image)[:, None].float(), torch.zeros(n, 1), xy, wh], 1)


def _flops(model, x) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.eval()(x[:1])
    model.train()
    return fc.get_total_flops() / 1e9


def _edgeyolo_step(model_name: str, imgsz: int, channels_last: bool, allocator: bool = True, aten_mish: bool = False):
    import torch
    from torch import nn

    from edgeyolo.export.rewrite import swap_modules
    from edgeyolo.models import build_model
    from edgeyolo.train.allocator import keep_freed_memory
    from edgeyolo.train.ema import ModelEMA
    from edgeyolo.train.hyp import load_hyp
    from edgeyolo.train.loss import YOLOLoss
    from edgeyolo.train.optim import build_optimizer
    if allocator:
        keep_freed_memory()
    model = build_model(model_name, nc=1)
    if aten_mish:  # plain nn.Mish in place of edgeyolo's Mish (same function, ATen's autograd)
        model, _ = swap_modules(model, lambda m: isinstance(m, nn.Mish), lambda m: nn.Mish())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    hyp = load_hyp()
    loss_fn, ema = YOLOLoss(model, hyp, imgsz=imgsz), ModelEMA(model)
    opt = build_optimizer(model, "AdamW", 0.002, 0.937, 0.0005)

    def step(x, t):
        loss, _ = loss_fn(model(x.contiguous(memory_format=fmt)), t)
        loss.backward()
        opt.step()
        opt.zero_grad()
        ema.update(model)
    return model, step


def _yolov8n_step(imgsz: int, channels_last: bool):
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import ModelEMA
    model = DetectionModel("yolov8n.yaml", nc=1, verbose=False).train()
    model.args = get_cfg()
    ema = ModelEMA(model)
    opt = torch.optim.AdamW(model.parameters(), lr=0.002, betas=(0.9, 0.999))

    def step(x, t):
        batch = {"img": x, "batch_idx": t[:, 0], "cls": t[:, 1:2], "bboxes": t[:, 2:6]}
        loss, _ = model.loss(batch)
        loss.sum().backward()
        opt.step()
        opt.zero_grad()
        ema.update(model)
    return model, step


def worker(args: argparse.Namespace) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    make = (lambda: _yolov8n_step(args.imgsz, args.channels_last)) if args.worker == "yolov8n" else \
        (lambda: _edgeyolo_step(args.worker, args.imgsz, args.channels_last, not args.plain_malloc, args.aten_mish))
    model, step = make()
    x, t = torch.rand(args.batch, 3, args.imgsz, args.imgsz), _targets(args.batch, args.imgsz)
    gflops = _flops(model, x)
    t0 = time.perf_counter()
    step(x, t)
    first = time.perf_counter() - t0  # one-off costs: oneDNN's kernel choice, the heap's growth
    for _ in range(args.warmup - 1):
        step(x, t)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step(x, t)
        times.append(time.perf_counter() - t0)
    out = {"gflops": gflops, "step_s": sorted(times)[len(times) // 2], "steps": times, "first_step_s": first}
    if args.profile:
        out["families"], out["convolutions"] = _profile(step, x, t, model)
    return out


def conv_kind(c_in: int, c_in_per_group: int) -> str:
    """A depthwise convolution has one input channel per group, over more than one channel."""
    return "depthwise" if c_in_per_group == 1 and c_in > 1 else "dense"


def _profile(step, x, t, model) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """One profiled step: the share of each operator family, and the convolutions' seconds and
    forward GFLOPs by kind (dense, depthwise), to set their time against their arithmetic."""
    from torch import nn
    from torch.profiler import ProfilerActivity, profile
    gflop: dict[str, float] = {}

    def count(mod, inp, out):  # noqa: ANN001, ANN202
        kind = conv_kind(mod.in_channels, mod.in_channels // mod.groups)
        macs = out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        gflop[kind] = gflop.get(kind, 0.0) + 2e-9 * macs
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step(x, t)
    for h in hooks:
        h.remove()
    total, fam = 0.0, {}
    for ev in prof.events():
        if ev.self_cpu_time_total <= 0:
            continue
        family, node = "other", ev
        while node is not None:
            name = node.name.lower()
            family = next((f for f, words in FAMILIES if any(w in name for w in words)), family)
            node = node.cpu_parent
        fam[family] = fam.get(family, 0.0) + ev.self_cpu_time_total
        total += ev.self_cpu_time_total
    convs: dict[str, dict[str, float]] = defaultdict(lambda: {"forward_gflop": 0.0, "forward_s": 0.0, "backward_s": 0.0})
    for kind, g in gflop.items():
        convs[kind]["forward_gflop"] = g
    for ev in prof.key_averages(group_by_input_shape=True):
        # oneDNN's forward takes (input, weight, ...), the backward (grad, input, weight, ...)
        shapes = ev.input_shapes
        if ev.key == "aten::mkldnn_convolution":
            phase, (inp, w) = "forward_s", shapes[:2]
        elif ev.key == "aten::convolution_backward":
            phase, (inp, w) = "backward_s", shapes[1:3]
        else:
            continue
        kind = conv_kind(inp[1], w[1])
        convs[kind][phase] += ev.self_cpu_time_total / 1e6
    return {k: v / total for k, v in sorted(fam.items(), key=lambda kv: -kv[1])}, dict(convs)


PEER = "yolov8n (Ultralytics) as Ultralytics trains it"
# What train.allocator.keep_freed_memory sets, as glibc's environment tunables for the peer's process.
SAME_ALLOCATOR = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}


def _cell(python: str, name: str, args: argparse.Namespace, flags: tuple[str, ...] = (), env: dict | None = None):
    cmd = [python, __file__, "--worker", name, "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--steps",
           str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        return {"failed": " | ".join(done.stderr.strip().splitlines()[-2:])}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plain-malloc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--aten-mish", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="yolov4s-mbv3s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--peer-python", default=sys.executable)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "cpu-amd-epyc"))
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    from edgeyolo.bench.studies.step_report import write_step_report
    peer_ok = subprocess.run([args.peer_python, "-c", "import ultralytics"], capture_output=True).returncode == 0
    trained = ("--channels-last",)  # with the allocator and the CPU Mish: as the trainer runs it
    cells = {f"{args.model} as edgeyolo trains it": (sys.executable, args.model, trained, None),
             f"{args.model}, no channels-last": (sys.executable, args.model, (), None),
             f"{args.model}, glibc's default allocator": (sys.executable, args.model, trained + ("--plain-malloc",), None),
             f"{args.model}, ATen's Mish autograd": (sys.executable, args.model, trained + ("--aten-mish",), None)}
    if peer_ok:
        cells[PEER] = (args.peer_python, "yolov8n", (), None)
        cells["yolov8n, edgeyolo's allocator settings"] = (args.peer_python, "yolov8n", (), SAME_ALLOCATOR)
    runs: dict[str, list[dict]] = {k: [] for k in cells}
    load0 = os.getloadavg()[0]
    for r in range(args.rounds):
        for label, (python, name, flags, env) in cells.items():
            runs[label].append(_cell(python, name, args, flags, env))
            print(f"round {r + 1}: {label}: {runs[label][-1].get('step_s', runs[label][-1].get('failed'))}", flush=True)
    profile = _cell(sys.executable, args.model, args, trained + ("--profile",))
    from edgeyolo.bench.device import cpu_description
    record = {"cpu": cpu_description(), "settings": {k: v for k, v in vars(args).items()
                               if k not in ("worker", "channels_last", "profile", "plain_malloc", "aten_mish")},
              "load_avg": [load0, os.getloadavg()[0]], "date": time.strftime("%Y-%m-%d %H:%M"), "runs": runs,
              "profile": profile.get("families", {}), "convolutions": profile.get("convolutions", {}),
              "reference": PEER, "peer": "ok" if peer_ok else
              f"skipped: Ultralytics is not importable in {args.peer_python}"}
    print(write_step_report(record, Path(args.out)))


if __name__ == "__main__":
    main()
