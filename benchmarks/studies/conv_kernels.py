"""Are the convolutions of a CPU training step as fast as their arithmetic allows?

For every convolution shape of the default model in a training step (batch 16, channels-last, as
edgeyolo trains on a CPU): the time of oneDNN's forward, its input gradient and its weight gradient,
each alone; and, for the dense stride-1 3x3 and 1x1 shapes, the weight gradient computed as GEMMs
instead (the alternative a hand-written CPU path would take), with its error against oneDNN's. A
kernel that runs well takes about its forward's time for each gradient, since each costs the
forward's arithmetic. Writes ``<out>/conv_kernels.{json,md}``.

    python benchmarks/studies/conv_kernels.py [--model yolov4s-mbv3s] [--imgsz 320] [--batch 16]
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import torch
import torch.nn.functional as F

from edgeyolo.bench.device import cpu_description
from edgeyolo.bench.studies import RESULTS, write_answer
from edgeyolo.bench.studies.train_step_compare import conv_kind
from edgeyolo.models import build_model

ConvShape = tuple[int, int, int, int, int, int, int]  # c_in, c_out, k, stride, groups, h, w


def conv_shapes(model: torch.nn.Module, imgsz: int) -> Counter[ConvShape]:
    """Each Conv2d's shape in one forward at ``imgsz``, and how many convolutions have it."""
    shapes: Counter[ConvShape] = Counter()

    def hook(mod, inp, out):  # noqa: ANN001, ANN202
        shapes[(mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.stride[0], mod.groups,
                inp[0].shape[2], inp[0].shape[3])] += 1
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, imgsz, imgsz))
    for h in handles:
        h.remove()
    return shapes


def weight_grad_shifted_gemm(x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    """Weight gradient (C_out, C_in, k, k) of a stride-1, zero-padded 'same' k x k convolution
    (no groups) of ``x`` (N, C_in, H, W) whose output gradient is ``grad`` (N, C_out, H, W), as k*k
    GEMMs with no im2col copy: on the padded grid flattened to rows (channels-last), the input under
    tap (i, j) of every output position is the same row range shifted by i * (W + 2p) + j, and the
    output gradient, padded with zeros to that grid, cancels the rows that wrap into the padding."""
    n, c, h, w = x.shape
    c_out, p = grad.shape[1], k // 2
    hp, wp = h + 2 * p, w + 2 * p
    rows = n * hp * wp
    xs = F.pad(x, (p, p, p, p)).permute(0, 2, 3, 1).reshape(rows, c)  # (rows, C_in)
    xs = F.pad(xs, (0, 0, 0, 2 * p * wp + 2 * p))  # room for the largest shift
    gs = F.pad(grad, (0, 2 * p, 0, 2 * p)).permute(0, 2, 3, 1).reshape(rows, c_out).t()  # (C_out, rows)
    out = x.new_empty(c_out, k, k, c)
    for i in range(k):
        for j in range(k):
            torch.mm(gs, xs[i * wp + j:i * wp + j + rows], out=out[:, i, j])
    return out.permute(0, 3, 1, 2)


def weight_grad_im2col(x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    """The same gradient as one GEMM over an im2col copy of ``x`` (N*H*W, k*k*C_in)."""
    n, c, h, w = x.shape
    c_out, p = grad.shape[1], k // 2
    xp = F.pad(x, (p, p, p, p)).permute(0, 2, 3, 1).contiguous()  # (N, H+2p, W+2p, C_in)
    s = xp.stride()
    cols = xp.as_strided((n, h, w, k, k, c), (s[0], s[1], s[2], s[1], s[2], s[3])).reshape(n * h * w, k * k * c)
    g = grad.permute(0, 2, 3, 1).reshape(n * h * w, c_out)
    return (g.t() @ cols).view(c_out, k, k, c).permute(0, 3, 1, 2)


def _ms(fn, reps: int = 7) -> float:  # noqa: ANN001
    fn()
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[reps // 2] * 1e3


def time_shape(shape: ConvShape, batch: int) -> dict:
    """oneDNN's forward, input-gradient and weight-gradient times (ms) for one shape, channels-last;
    for dense stride-1 3x3 / 1x1 shapes the GEMM weight gradients' times and largest relative error."""
    ci, co, k, s, g, h, w = shape
    cl = torch.channels_last
    x = torch.randn(batch, ci, h, w).contiguous(memory_format=cl)
    wt = (torch.randn(co, ci // g, k, k) * 0.05).contiguous(memory_format=cl)
    y = F.conv2d(x, wt, None, s, k // 2, 1, g)
    gy = torch.randn_like(y)
    args = (gy, x, wt, None, [s, s], [k // 2, k // 2], [1, 1], False, [0, 0], g)
    backward = torch.ops.aten.convolution_backward
    row = {"forward_ms": _ms(lambda: F.conv2d(x, wt, None, s, k // 2, 1, g)),
           "input_grad_ms": _ms(lambda: backward(*args, [True, False, False])),
           "weight_grad_ms": _ms(lambda: backward(*args, [False, True, False]))}
    if g == 1 and s == 1 and k in (1, 3):
        ref = backward(*args, [False, True, False])[1]
        for name, fn in (("shifted_gemm", weight_grad_shifted_gemm), ("im2col_gemm", weight_grad_im2col)):
            if k == 1 and name == "im2col_gemm":
                continue  # for 1x1 both are the same single GEMM
            row[f"{name}_ms"] = _ms(lambda fn=fn: fn(x, gy, k))
            row[f"{name}_rel_err"] = ((fn(x, gy, k) - ref).abs().max() / ref.abs().max()).item()
    return row


def _macs(shape: ConvShape) -> float:
    """Multiply-adds of one image through a convolution of this shape."""
    ci, co, k, s, g, h, w = shape
    return ci / g * co * k * k * h * w / s / s


def totals(rows: list[dict]) -> dict[str, dict]:
    """Each kind's (dense, depthwise) kernel times summed over the model's convolutions, and where a
    GEMM weight gradient applies, the faster GEMM's total against oneDNN's on those shapes."""
    out: dict[str, dict] = {}
    for kind in ("dense", "depthwise"):
        mine = [r for r in rows if conv_kind(r["c_in"], r["c_in"] // r["groups"]) == kind]
        if not mine:
            continue
        out[kind] = {key: sum(r[key] * r["count"] for r in mine) for key in ("forward_ms", "input_grad_ms", "weight_grad_ms")}
        gemm = [(min(r[k] for k in ("shifted_gemm_ms", "im2col_gemm_ms") if k in r), r) for r in mine if "shifted_gemm_ms" in r]
        if gemm:
            out[kind]["gemm_vs_onednn"] = (f"{sum(t * r['count'] for t, r in gemm):.0f} ms against oneDNN's "
                                           f"{sum(r['weight_grad_ms'] * r['count'] for _, r in gemm):.0f}")
    return out


def _markdown(result: dict) -> str:
    s = result["settings"]
    lines = [f"# Convolution kernels of a CPU training step: {s['model']} at {s['imgsz']} px, batch {s['batch']}", "",
             f"{result['cpu']}, {result['date']}, {s['threads']} threads, torch {result['torch']}, load average "
             f"{result['load_avg']:.2f} at the end; channels-last; "
             "median of 7 calls of each kernel alone, in ms. `x count` = how many convolutions of the model have "
             "the shape; totals weigh each shape by it. Produced by `python benchmarks/studies/conv_kernels.py`.", "",
             "| c_in -> c_out | k / stride / groups | input | x count | forward | input grad | weight grad | "
             "weight grad as shifted GEMMs | as im2col + GEMM | GEMM error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["shapes"]:
        alt = [f"{r[k]:.2f}" if k in r else "-" for k in ("shifted_gemm_ms", "im2col_gemm_ms")]
        err = max((v for key, v in r.items() if key.endswith("rel_err")), default=None)
        lines.append(f"| {r['c_in']} -> {r['c_out']} | {r['k']} / {r['stride']} / {r['groups']} | {r['h']}x{r['w']} | "
                     f"{r['count']} | {r['forward_ms']:.2f} | {r['input_grad_ms']:.2f} | {r['weight_grad_ms']:.2f} | "
                     f"{alt[0]} | {alt[1]} | {'-' if err is None else f'{err:.0e}'} |")
    lines += ["", "| kind | forward | input grad | weight grad | weight grad by the faster GEMM, where one applies |",
              "|---|---|---|---|---|"]
    for kind, t in result["totals"].items():
        lines.append(f"| {kind} | {t['forward_ms']:.0f} | {t['input_grad_ms']:.0f} | {t['weight_grad_ms']:.0f} | "
                     f"{t.get('gemm_vs_onednn', '-')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="yolov4s-mbv3s")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(RESULTS / "cpu-amd-epyc-avx512"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shapes = conv_shapes(build_model(args.model, nc=1), args.imgsz)
    rows = []
    for shape, count in sorted(shapes.items(), key=lambda kv: -kv[1] * _macs(kv[0])):
        rows.append(dict(zip(("c_in", "c_out", "k", "stride", "groups", "h", "w"), shape), count=count,
                         **time_shape(shape, args.batch)))
        print(f"{shape} x{count}: {rows[-1]['forward_ms']:.2f} / {rows[-1]['input_grad_ms']:.2f} / "
              f"{rows[-1]['weight_grad_ms']:.2f} ms", flush=True)
    result = {"cpu": cpu_description(), "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "settings": vars(args), "load_avg": os.getloadavg()[0], "shapes": rows, "totals": totals(rows)}
    write_answer(args.out, "conv_kernels", result, _markdown(result))


if __name__ == "__main__":
    main()
