"""The seeds' experiment as one command: train every seed backbone the same way, compare their
training curves (the seeds' figure), and bench accuracy against latency of the trained models, so
the Pareto picture has a real mAP for every backbone instead of random-weight latency rows.

    python -m edgeyolo.bench.studies.backbone_study [--models yolov4s-mbv2,...] [--epochs 10] [--imgsz 160] \\
        [--data data.yaml] [--runs runs/backbones] [--out benchmarks/results/<device>/backbones]

Each model trains through ``edgeyolo train`` in its own process (``RUNS/<model>``); a finished run
is reused and an interrupted one resumed, so the study can be stopped and restarted at any point.
Then ``edgeyolo compare`` draws every run's curves (``compare.png``/``compare.md``), the trained
checkpoints are benched at the training size (PyTorch eager, ONNX Runtime FP32 and INT8 by
default: ``bench.*``, ``pareto.png``), and ``study.md`` joins the two into one table per backbone.
The default models are the seven seed backbones at the s head scale (depth/width 0.33/0.50), the
scale a 2-core CPU can train in minutes; ``--models yolov4-mbv2,...`` runs the seeds' full heads.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from edgeyolo.atomic import atomic_write_text
from edgeyolo.models import model_names
from edgeyolo.models.checkpoint import read_checkpoint
from edgeyolo.runs import read_results_columns

from edgeyolo.bench.matrix import BENCH_FORMATS, Machine, Source, build_matrix, parse_list, parse_sizes
from edgeyolo.bench.results import median_of_passes, timed_by_cell, write_outputs
from edgeyolo.bench.runner import BenchOptions, run_bench

STUDY_MODELS = ("yolov4s-cspdarknet", "yolov4s-mbv2", "yolov4s-mbv3s", "yolov4s-mbv3l",
                "yolov4s-r50", "yolov4s-rx50", "yolov4s-ser50")


def run_state(run_dir: Path, epochs: int, imgsz: int) -> str:
    """"new" (no last.pt), "partial" (resumable) or "done" (all epochs, or stopped early) for a study
    run folder. A run trained with other settings is refused: reusing it would compare backbones
    under different protocols."""
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        return "new"
    state = read_checkpoint(last).get("train_state") or {}
    args = state.get("args", {})
    if (args.get("epochs"), args.get("imgsz")) != (epochs, imgsz):
        raise ValueError(f"{run_dir}: trained with --epochs {args.get('epochs')} --imgsz {args.get('imgsz')}, "
                         f"the study asks for {epochs} / {imgsz}; remove it or pass another --runs")
    finished = int(state.get("epoch", -1)) + 1 >= epochs or state.get("stopped_early", False)
    return "done" if finished else "partial"


def train_command(model: str, run_dir: Path, state: str, epochs: int, imgsz: int, data: str | None,
                  extra: Sequence[str] = ()) -> list[str]:
    """The ``edgeyolo train`` command line for one study run (``--resume`` for a partial one)."""
    cli = [sys.executable, "-m", "edgeyolo.cli", "train"]
    if state == "partial":
        return [*cli, "--resume", str(run_dir)]
    cmd = [*cli, "--model", model, "--project", str(run_dir.parent), "--name", run_dir.name,
           "--epochs", str(epochs), "--imgsz", str(imgsz), *(["--data", data] if data else []), *extra]
    return [*cmd, "--exist-ok"]  # the run folder is the model's name: never run_dir2


def train_seconds(times: Sequence[float]) -> float:
    """Total training time from results.csv's ``time`` column, which counts from the start of each
    ``fit`` and so restarts after a resume: a drop starts a new segment."""
    total, prev = 0.0, 0.0
    for t in times:
        total += t - prev if t >= prev else t
        prev = t
    return total


def study_table(runs: dict[str, Path], cells: Sequence[dict[str, Any]],
                ranges: dict[tuple, tuple[float, float]] | None = None) -> str:
    """One row per backbone: training time (results.csv) and best.pt's validation mAP, GFLOPs at the
    smallest bench size, then each benched (format, precision, size)'s p50 latency and mAP@0.5:0.95;
    rows fastest ONNX Runtime FP32 first. ``ranges`` (model, format, precision, size) -> the p50
    range over the bench passes, shown after the median."""
    ok = [c for c in cells if c.get("status") == "ok"]
    order = lambda k: (BENCH_FORMATS.index(k[0]) if k[0] in BENCH_FORMATS else 99, k[1], k[2])  # noqa: E731
    keys = sorted({(c["format"], c["precision"], c["imgsz"]) for c in ok}, key=order)
    one_size, first = len({k[2] for k in keys}) == 1, min((k[2] for k in keys), default=0)
    head = ["model", "train min", "best val mAP50 / 50-95", f"GFLOPs@{first}"]
    head += [f"{f} {p}{'' if one_size else f' {sz}'} ms / mAP50-95" for f, p, sz in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {(c["model"], c["format"], c["precision"], c["imgsz"]): c for c in ok}
    rows = []
    for model, run in runs.items():
        seconds = train_seconds(read_results_columns(run / "results.csv")["time"].tolist())
        meta = read_checkpoint(run / "weights" / "best.pt")["meta"]  # the benched checkpoint's own validation
        mine = [by.get((model, *k)) for k in keys]
        gflops = next((c["gflops"] for c in mine if c and c["imgsz"] == first and c.get("gflops")), None)
        row = [model, f"{seconds / 60:.1f}", f"{meta['mAP50']:.3f} / {meta['mAP50-95']:.3f}",
               f"{gflops:.2f}" if gflops else "-"]
        spread = [(ranges or {}).get((model, *k)) for k in keys]
        row += [f"{c['p50_ms']:.1f}{f' ({r[0]:.1f}-{r[1]:.1f})' if r else ''} / {c['map50_95']:.2f}"
                if c and c.get("map50_95") is not None else "-" for c, r in zip(mine, spread)]
        onnx = [c["p50_ms"] for c in mine if c and c["format"] == "onnx" and c["precision"] == "fp32"]
        rows.append((min(onnx, default=float("inf")), row))
    lines += ["| " + " | ".join(r) + " |" for _, r in sorted(rows, key=lambda x: x[0])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(STUDY_MODELS), help="comma-separated zoo names")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--imgsz", type=int, default=160, help="training size, and the bench size unless --bench-imgsz")
    ap.add_argument("--data", default=None, help="data YAML (default: the built-in synthetic set)")
    ap.add_argument("--runs", type=Path, default=Path("runs/backbones"), help="the training runs' folder")
    ap.add_argument("--bench-imgsz", default=None, help="comma-separated bench sizes (default: --imgsz)")
    ap.add_argument("--formats", default="pytorch,onnx")
    ap.add_argument("--int8", default="on", choices=["off", "on", "auto"],
                    help="ONNX INT8 cells: plain Q/DQ (on: each backbone's raw sensitivity), export's --int8 auto, or none")
    ap.add_argument("--device", default="cpu")
    # small models at 160 px run in milliseconds: 100 iterations steady the p50 of a shared CPU for ~2 s a cell
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--passes", type=int, default=3,
                    help="timing passes over the whole matrix (mAP from the first); the tables give the median p50")
    ap.add_argument("--out", type=Path, default=Path("runs/backbone_study"))
    ap.add_argument("--cache-dir", type=Path, default=None, help="export cache (default ~/.cache/edgeyolo/bench)")
    a, extra = ap.parse_known_args(argv)  # anything else goes to edgeyolo train (--batch, --hyp, ...)
    models = list(dict.fromkeys(m.strip() for m in a.models.split(",") if m.strip()))
    bad = [m for m in models if m not in model_names() and not Path(m).is_file()]
    if bad or not models:
        raise SystemExit(f"--models: unknown {', '.join(bad) or '(empty)'}; zoo names (edgeyolo info --list) or model YAMLs")
    if a.passes < 1:
        raise SystemExit(f"--passes must be >= 1, got {a.passes}")
    try:
        formats = parse_list(a.formats, "--formats", BENCH_FORMATS)
        sizes = parse_sizes(a.bench_imgsz or str(a.imgsz))
    except ValueError as e:
        raise SystemExit(str(e)) from None

    runs: dict[str, Path] = {}
    for i, model in enumerate(models, 1):
        run_dir = a.runs / Path(model).stem  # a zoo name, or a model YAML's stem
        try:
            state = run_state(run_dir, a.epochs, a.imgsz)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        if state != "done":
            print(f"[{i}/{len(models)}] {model}: {'resuming' if state == 'partial' else 'training'} in {run_dir}",
                  file=sys.stderr, flush=True)
            rc = subprocess.call(train_command(model, run_dir, state, a.epochs, a.imgsz, a.data, extra))
            if rc != 0:
                raise SystemExit(f"{model}: edgeyolo train exited with {rc}; rerun the study to resume it")
        runs[run_dir.name] = run_dir

    a.out.mkdir(parents=True, exist_ok=True)
    subprocess.check_call([sys.executable, "-m", "edgeyolo.cli", "compare", *map(str, runs.values()),
                           "--out", str(a.out), "--imgsz", str(a.imgsz)])
    o = BenchOptions(formats=formats, sizes=sizes, device=a.device, warmup=a.warmup, iters=a.iters,
                     threads=a.threads, data=Path(a.data) if a.data else None, calib_images=512,
                     calib_method="entropy", int8_mode="auto" if a.int8 == "auto" else "on", out=a.out, cache_dir=a.cache_dir,
                     command="python -m edgeyolo.bench.studies.backbone_study " + " ".join(sys.argv[1:] if argv is None else argv))
    sources = [Source(m, "checkpoint", run / "weights" / "best.pt") for m, run in runs.items()]
    machine = Machine.here()
    cells = build_matrix(sources, formats, ["fp32"], sizes, 1, machine, a.device)
    if a.int8 != "off":
        cells += build_matrix(sources, ["onnx"], ["int8"], sizes, 1, machine, a.device)
    res = run_bench(o, cells=cells)
    passes = [res["rows"]]
    with tempfile.TemporaryDirectory() as tmp:  # later passes: timing only, exports cached by the first
        for k in range(1, a.passes):
            passes.append(run_bench(dataclasses.replace(o, measure_map=False, out=Path(tmp) / str(k)), cells=cells)["rows"])
    rows = median_of_passes(passes)
    sett = {**res["settings"], "passes": a.passes,
            "mode_text": f"{res['settings']['mode_text']}, median of {a.passes} passes over the matrix"}
    write_outputs(rows, res["device"], sett, a.out)
    ranges = {k[:4]: (min(r["p50_ms"] for r in rs), max(r["p50_ms"] for r in rs))
              for k, rs in timed_by_cell(passes).items() if len(rs) > 1}
    table = study_table(runs, rows, ranges)
    intro = (f"# Backbone study: {a.epochs} epochs at {a.imgsz} px, benched at {','.join(map(str, sizes))} px\n\n"
             f"`{o.command}`; training curves in compare.png, every cell in bench.md, the front in pareto.png.\n"
             "train min: this machine's training time. best val mAP: best.pt's own validation in training (aspect-ratio "
             "batches, YOLOv5's protocol). The bench columns: p50 model-only latency and mAP@0.5:0.95 (percent) of the "
             "benched artifact, every image letterboxed to the square input a deployed model sees (so it differs "
             "from the training figure by a few tenths), conf 0.001, NMS IoU 0.65, the whole val split.\n\n")
    atomic_write_text(a.out / "study.md", intro + table + "\n")
    print(table)
    print(f"results in {a.out}")


if __name__ == "__main__":  # pragma: no cover
    main()
