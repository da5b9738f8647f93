"""Export latency benchmark, whether exporting pays on a CPU: PyTorch eager vs ONNX Runtime FP32
vs ONNX Runtime INT8 (Q/DQ) of the exported graph, batch 1, on this machine's CPU.

Model-only latency (no pre-processing, no NMS), timed as the bench times it (benchmarks/README.md,
"The latency protocol"): warm-up, then timed iterations (the backends in alternating blocks); p50/p90/p99/mean, throughput, and achieved GFLOP/s (FLOPs
of one forward counted by torch.utils.flop_counter.FlopCounterMode; a multiply-add counts as 2
FLOPs). The artifacts are
written by the export pipeline (``run_export``), as ``edgeyolo export`` writes them: the ONNX of
the default TensorRT 10 target and the ``--target ort`` ONNX (+ its INT8) that CPU users deploy.

    python benchmarks/studies/export_latency.py [--imgsz 320] [--models yolov4s-mbv3s,...] [--weights-dir DIR]
        [--data YAML] [--int8 on|auto] [--calib-images N] [--calib-method minmax|entropy|percentile]

``--weights-dir`` takes trained checkpoints named ``<model>.pt``; with ``--data`` their mAP
(FP32 and INT8) is measured too, and ``--int8 auto`` can keep sensitive layers in float. Without
them the models have seeded random weights and the mAP column says so.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from edgeyolo.atomic import atomic_write_text
from edgeyolo.export.deploy import DeployModel
from edgeyolo.export.pipeline import ExportOptions, run_export
from edgeyolo.export.report import Artifact
from edgeyolo.formats import FORMATS
from edgeyolo.models.checkpoint import load_model
from edgeyolo.runtime.backends import OrtBackend

from edgeyolo.bench.artifacts import random_checkpoint
from edgeyolo.bench.device import cpu_features
from edgeyolo.bench.studies import RESULTS

MODELS = ["yolov4s-mbv3s", "yolov4-mbv3l", "yolov4-l"]
SMALL_KERNEL_US = 20  # a kernel this short is mostly per-node cost (dispatch, threads), not arithmetic
ROWS = (("pytorch_eager", "PyTorch eager FP32"), ("ort_fp32_trt10", "ORT FP32, TensorRT 10 graph"),
        ("ort_fp32", "ORT FP32, --target ort"), ("ort_int8", "ORT INT8 Q/DQ, --target ort"))


def timeit_blocks(fns: dict, x, warmup: int, iters: int, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Time several backends in alternating blocks (a a a, b b b, ..., a a a, ...), each block after
    ``warmup`` untimed calls, so a slow spell of a shared machine lands on all of them and their
    ratios stay fair. Not call by call: ONNX Runtime's and PyTorch's worker threads spin for a
    while after a call and would steal the next backend's cores (an uncommitted variant timed
    so measured everything 1.5-2x slower on 2 cores)."""
    ts: dict[str, list[float]] = {k: [] for k in fns}
    per_round = -(-iters // rounds)
    for r in range(rounds):
        for k, fn in fns.items():
            for _ in range(warmup):
                fn(x)
            for _ in range(min(per_round, iters - r * per_round)):
                t0 = time.perf_counter()
                fn(x)  # CPU backends return when done: no device sync needed
                ts[k].append((time.perf_counter() - t0) * 1000)
    out = {}
    for k, t in ts.items():
        q = np.percentile(t, [50, 90, 99])
        out[k] = {"p50_ms": round(float(q[0]), 2), "p90_ms": round(float(q[1]), 2), "p99_ms": round(float(q[2]), 2),
                  "mean_ms": round(statistics.fmean(t), 2), "fps": round(1000 / statistics.fmean(t), 2), "iters": len(t)}
    return out


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return int(fc.get_total_flops())


def kernel_ms_by_op(path: Path, x: np.ndarray, threads: int, runs: int = 10) -> tuple[dict[str, float], dict]:
    """Per-run time ONNX Runtime's profiler puts in each op type's kernels, after its graph
    optimizations (so fused ops appear as QLinearConv, FusedConv...), largest first: where the
    time goes between the convs, whatever the wrapper does. Also the kernels run per inference and
    how many of them take under SMALL_KERNEL_US (and their total ms): on a small model the per-node
    cost, not the arithmetic, is much of the latency, and Q/DQ adds nodes."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.enable_profiling = threads, True
    so.profile_file_prefix = str(path.with_suffix(""))
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        sess.run(None, {"images": x})
    sess.end_profiling()  # drop the warm-up
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        sess.run(None, {"images": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    durs = []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + e["dur"]
            durs.append(e["dur"])
    n = runs + 1
    small = [d for d in durs if d < SMALL_KERNEL_US]
    nodes = {"per_run": round(len(durs) / n), "small_per_run": round(len(small) / n),
             "small_ms": round(sum(small) / n / 1000, 2)}
    return {op: round(us / n / 1000, 2) for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])}, nodes


def export(ckpt: Path, a: argparse.Namespace, target: str, int8: str | None, calib: tuple[Path, int, str],
           out: Path) -> dict[str, Artifact]:
    """precision -> artifact, written by the export pipeline. ``calib``: (data, images, method)."""
    o = ExportOptions(weights=ckpt, formats=[FORMATS["onnx"]], imgsz=a.imgsz, int8=int8, calib_data=calib[0],
                      calib_images=calib[1], calib_method=calib[2], target=target, out=out,
                      data=a.data if int8 == "auto" else None, verify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the <300 calibration images warning: latency does not depend on it
        rep = run_export(o, log=lambda m: None)
    return {x.precision: x for x in rep.artifacts}


def bench_model(name: str, a: argparse.Namespace, work: Path) -> dict:
    from edgeyolo.data import synthetic_data_yaml
    ckpt = a.weights_dir / f"{name}.pt" if a.weights_dir else None
    trained = ckpt is not None and ckpt.is_file()
    if not trained:
        ckpt = random_checkpoint(name, 4, work)
    model, _ = load_model(ckpt)
    # random weights: no mAP to protect, so the quick calibration (the latency does not depend on it)
    calib = (a.data or synthetic_data_yaml(), a.calib_images, a.calib_method) if trained else \
        (synthetic_data_yaml(), 32, "minmax")
    int8 = a.int8 if trained and a.data else "on"
    trt10 = export(ckpt, a, "10", None, calib, work / name / "trt10")
    cpu = export(ckpt, a, "ort", int8, calib, work / name / "ort")
    x = np.random.default_rng(0).random((1, 3, a.imgsz, a.imgsz), dtype=np.float32)
    eager = DeployModel(model).eval()
    flops = count_flops(eager, torch.from_numpy(x))

    def torch_fn(arr: np.ndarray) -> None:
        with torch.inference_mode():
            eager(torch.from_numpy(arr))

    res = {"model": name, "weights": str(ckpt) if trained else "random (no trained checkpoint)",
           "gflops": round(flops / 1e9, 3), "int8_mode": int8, "calibration": f"{calib[2]}, {calib[1]} images",
           "int8_notes": [n for n in cpu["int8"].notes if not n.startswith("calibrated on")]}
    cpu = {k: Path(v.path) for k, v in cpu.items()}
    runners = {"pytorch_eager": torch_fn, "ort_fp32_trt10": OrtBackend(trt10["fp32"].path, a.threads),
               "ort_fp32": OrtBackend(cpu["fp32"], a.threads), "ort_int8": OrtBackend(cpu["int8"], a.threads)}
    for k, stats in timeit_blocks(runners, x, a.warmup, a.iters).items():
        res[k] = stats
        res[k]["gflop_per_s"] = round(flops / 1e9 / (res[k]["p50_ms"] / 1000), 1)
    for k, precision in (("ort_fp32", "fp32"), ("ort_int8", "int8")):
        ops, res[k]["kernel_nodes"] = kernel_ms_by_op(cpu[precision], x, a.threads)
        ms = round(sum(v for op, v in ops.items() if "Conv" in op), 2)  # Conv, FusedConv, NchwcConv, QLinearConv
        res[k]["conv_kernel_ms"], res[k]["conv_gflop_per_s"] = ms, round(flops / 1e9 / (ms / 1000), 1)
        res[k]["kernel_ms_by_op"] = ops
    res["ratio_fp32_vs_eager"] = round(res["ort_fp32"]["p50_ms"] / res["pytorch_eager"]["p50_ms"], 3)
    res["ratio_trt10_vs_eager"] = round(res["ort_fp32_trt10"]["p50_ms"] / res["pytorch_eager"]["p50_ms"], 3)
    res["ratio_int8_vs_fp32"] = round(res["ort_int8"]["p50_ms"] / res["ort_fp32"]["p50_ms"], 3)
    if trained and a.data is not None:
        from edgeyolo.export.evaluate import evaluate_map
        m32 = evaluate_map(runners["ort_fp32"], a.data, a.imgsz, model.nc)
        m8 = evaluate_map(runners["ort_int8"], a.data, a.imgsz, model.nc)
        res["map"] = {"fp32": m32.as_dict(), "int8": m8.as_dict(), "drop": round((m32.map50_95 - m8.map50_95) * 100, 3)}
    else:
        res["map"] = "not measured: needs a trained checkpoint (--weights-dir) and --data"
    return res


def device_info(threads: int) -> dict:
    import onnxruntime
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
               platform.processor())
    isa = cpu_features(info)  # the int8 dot-product units decide whether ORT's INT8 convs can beat FP32
    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg()}


def to_markdown(report: dict) -> str:
    d, c = report["device"], report["config"]
    lines = [f"# Export latency, CPU ({d['cpu']}, {d['threads']} threads, {' '.join(d['isa'])})", "",
             f"Model-only latency, batch {c['batch']}, imgsz {c['imgsz']}, {c['iters']} timed iterations in 5 "
             f"alternating blocks, each after {c['warmup']} warm-up; torch {d['torch']}, "
             f"onnxruntime {d['onnxruntime']}; load average at start "
             f"{tuple(round(v, 2) for v in d['load_avg_at_start'])}. INT8 = `edgeyolo export --target ort --int8`: "
             f"Q/DQ for ONNX Runtime (per-channel symmetric int8 weights, per-tensor uint8 activations, conv outputs "
             f"quantized so ORT fuses QLinearConv); calibration per row.", "",
             "| model | GFLOPs | backend | p50 ms | p90 ms | p99 ms | mean ms | GFLOP/s | conv kernels ms (GFLOP/s) "
             "| ratio | mAP |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        if isinstance(r["map"], str):
            mp = r["map"]
        else:
            mp = (f"{r['map']['fp32']['mAP50-95']:.2f} -> {r['map']['int8']['mAP50-95']:.2f} "
                  f"(drop {r['map']['drop']:.2f} pts)")
        mp += f"; --int8 {r['int8_mode']}, {r['calibration']}" + "".join(f"; {n}" for n in r.get("int8_notes", []))
        ratios = {"ort_fp32_trt10": f"{r['ratio_trt10_vs_eager']}x eager", "ort_fp32": f"{r['ratio_fp32_vs_eager']}x eager",
                  "ort_int8": f"{r['ratio_int8_vs_fp32']}x ORT FP32"}
        for k, label in ROWS:
            t = r[k]
            conv = f"{t['conv_kernel_ms']} ({t['conv_gflop_per_s']})" if "conv_kernel_ms" in t else ""
            lines.append(f"| {r['model']} | {r['gflops']} | {label} | {t['p50_ms']} | {t['p90_ms']} | {t['p99_ms']} | "
                         f"{t['mean_ms']} | {t['gflop_per_s']} | {conv} | {ratios.get(k, '')} | "
                         f"{mp if k == 'ort_int8' else ''} |")
    lines += ["", "Where ONNX Runtime's kernel time goes (profiler, per run, ms; ops under 3% of the total folded into "
              "'other'; profiling adds a little per op, so totals exceed p50):", "",
              f"| model | graph | total | kernels per run (under {SMALL_KERNEL_US} us: count, ms) | by op type |",
              "|---|---|---|---|---|"]
    for r in report["results"]:
        for k, label in (("ort_fp32", "FP32"), ("ort_int8", "INT8")):
            ops = r[k].get("kernel_ms_by_op", {})
            total = sum(ops.values())
            big = [f"{op} {ms}" for op, ms in ops.items() if ms >= 0.03 * total]
            other = round(sum(ms for ms in ops.values() if ms < 0.03 * total), 2)
            nd = r[k].get("kernel_nodes")
            nodes = f"{nd['per_run']} ({nd['small_per_run']}, {nd['small_ms']})" if nd else ""
            lines.append(f"| {r['model']} | {label} | {total:.2f} | {nodes} | {', '.join(big + [f'other {other}'])} |")
    lines += ["", "Targets: ORT FP32 <= 0.6x PyTorch eager; ORT INT8 <= 0.6x ORT FP32 with an mAP drop <= 1.0.",
              "The TensorRT 10 graph row is the ONNX a Jetson gets (Mish as Softplus/Tanh/Mul): ONNX Runtime's scalar "
              "Softplus makes it slow on a CPU, which is why `--target ort` exists."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls before each block")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--calib-images", type=int, default=32)
    ap.add_argument("--calib-method", default="minmax", choices=["minmax", "entropy", "percentile"])
    ap.add_argument("--int8", default="on", choices=["on", "auto"], help="auto needs --weights-dir and --data")
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = device_info(a.threads)  # before the runs, so the load average is the machine's, not ours
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            r = bench_model(name, a, Path(tmp))
            print(json.dumps({k: r[k] for k in ("model", "gflops", "ratio_trt10_vs_eager", "ratio_fp32_vs_eager",
                                                "ratio_int8_vs_fp32")}), flush=True)
            results.append(r)
    report = {"device": device, "config": {"imgsz": a.imgsz, "batch": 1, "warmup": a.warmup,
              "iters": a.iters, "calib_images": a.calib_images, "calib_method": a.calib_method,
              "measure": "model-only"}, "results": results}
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out / "export_latency.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(a.out / "export_latency.md", to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
