"""The committed CPU matrix (the numbers in README.md and benchmarks/results/cpu/): the seven
seed models at 320 in FP32 (PyTorch eager, TorchScript, ONNX Runtime) with random weights, plus
INT8 (ONNX Q/DQ) for yolov4s-mbv3s and yolov4-mbv3s. With ``--trained PT`` (a yolov4s-mbv3s checkpoint) that model is benched from the
checkpoint, with mAP on the synthetic val set, so the Pareto picture has real accuracy points, and
its INT8 is ``export --int8 auto`` (entropy calibration on 512 images): the INT8 a user would ship.

    python -m edgeyolo.bench.run_cpu [--trained runs/train/exp/weights/best.pt] [--iters 20] \\
        [--out benchmarks/results/cpu]

Writes bench.csv / bench.json / bench.md / pareto.png to ``--out`` (``edgeyolo bench`` writes the
same files for any matrix given on its command line). ``run_gpu`` is the GPU counterpart.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from edgeyolo.models import SEED_MODELS

from .matrix import BENCH_FORMATS, Cell, Machine, Source, build_matrix, parse_list, parse_sizes
from .runner import BenchOptions, run_bench

INT8_MODELS = ("yolov4s-mbv3s", "yolov4-mbv3s")
CellsFor = Callable[[BenchOptions, "Path | None", Machine], "list[Cell]"]


def matrix_sources(o: BenchOptions, trained: Path | None) -> list[Source]:
    """yolov4s-mbv3s (from ``trained`` when given, so it has an mAP) and the seven seed models."""
    small = (Source("yolov4s-mbv3s", "checkpoint", trained, o.nc) if trained
             else Source("yolov4s-mbv3s", "random", None, o.nc))
    return [small, *(Source(m, "random", None, o.nc) for m in SEED_MODELS)]


def cpu_cells(o: BenchOptions, trained: Path | None, machine: Machine) -> list[Cell]:
    sources = matrix_sources(o, trained)
    cells = build_matrix(sources, o.formats, ["fp32"], o.sizes, o.batch, machine, o.device)
    int8 = [s for s in sources if s.name in INT8_MODELS]
    cells += build_matrix(int8, ["onnx"], ["int8"], o.sizes, o.batch, machine, o.device)
    return cells


def committed_main(argv: list[str] | None, doc: str, cells_for: CellsFor, module: str, **defaults: object) -> None:
    """The command line shared by the committed matrices: ``defaults`` sets formats, imgsz, device,
    warmup, iters and out."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--trained", type=Path, default=None, help="a trained yolov4s-mbv3s checkpoint (mAP)")
    ap.add_argument("--formats", default=defaults["formats"])
    ap.add_argument("--imgsz", default=defaults["imgsz"], help="comma-separated sizes")
    ap.add_argument("--device", default=defaults["device"])
    ap.add_argument("--warmup", type=int, default=defaults["warmup"])
    ap.add_argument("--iters", type=int, default=defaults["iters"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--calib-images", type=int, default=512)
    ap.add_argument("--calib-method", default="entropy", choices=["minmax", "entropy", "percentile"])
    ap.add_argument("--int8", default="auto", choices=["on", "auto"],
                    help="INT8 of the --trained model: export --int8 auto (the INT8 a user ships) or plain Q/DQ")
    ap.add_argument("--end2end", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(str(defaults["out"])))
    a = ap.parse_args(argv)
    if a.trained is not None and not a.trained.is_file():
        raise SystemExit(f"--trained {a.trained}: file not found")
    try:  # the bench CLI's own parsing and its one-line errors
        formats, sizes = parse_list(a.formats, "--formats", BENCH_FORMATS), parse_sizes(a.imgsz)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    o = BenchOptions(formats=formats, sizes=sizes, device=a.device,
                     warmup=a.warmup, iters=a.iters, threads=a.threads, calib_images=a.calib_images,
                     calib_method=a.calib_method, int8_mode=a.int8, end2end=a.end2end, out=a.out,
                     command=f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv))
    res = run_bench(o, cells=cells_for(o, a.trained, Machine.here()))
    print(res["markdown"])
    print(f"matrix wall time {res['settings']['wall_minutes']} min; results in {res['dir']}")


def main(argv: list[str] | None = None) -> None:
    committed_main(argv, __doc__, cpu_cells, "edgeyolo.bench.run_cpu", formats="pytorch,torchscript,onnx",
                   imgsz="320", device="cpu", warmup=3, iters=20, out="benchmarks/results/cpu")


if __name__ == "__main__":  # pragma: no cover
    main()
