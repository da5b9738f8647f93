"""The committed GPU matrix (what benchmarks/results/<gpu>/ holds): yolov4s-mbv3s (trained with
``--trained``, so it has an mAP) and the seven seed models at 320 and 640 on cuda:0: PyTorch eager
and TorchScript in FP32 and FP16, ONNX in FP32 (onnxruntime-gpu), TensorRT engines in FP32/FP16
and, for the trained model, INT8. What the machine lacks (onnxruntime-gpu, TensorRT) stays in the
table as a skipped row with the reason. Timing is CUDA events for the torch backends (the bench's
latency protocol, benchmarks/README.md).

On a GPU machine whose python3 has torch with CUDA, with no internet (the dependencies the torch
backends need are the image's; nothing is downloaded):

    python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . && \\
    python3 -m edgeyolo.bench.run_gpu --trained runs/train/exp/weights/best.pt --out benchmarks/results/<gpu>

Writes bench.csv / bench.json / bench.md / pareto.png to ``--out``, as ``run_cpu`` does.
"""
from __future__ import annotations

from pathlib import Path

from .matrix import Cell, Machine, build_matrix
from .run_cpu import committed_main, matrix_sources
from .runner import BenchOptions

PRECISIONS_OF = {"pytorch": ["fp32", "fp16"], "torchscript": ["fp32", "fp16"], "onnx": ["fp32"],
                 "engine": ["fp32", "fp16"], "torch-tensorrt": ["fp32", "fp16"]}


def gpu_cells(o: BenchOptions, trained: Path | None, machine: Machine) -> list[Cell]:
    sources = matrix_sources(o, trained)
    cells = [c for f in o.formats
             for c in build_matrix(sources, [f], PRECISIONS_OF.get(f, ["fp32"]), o.sizes, o.batch, machine, o.device)]
    if trained is not None and "engine" in o.formats:  # INT8 is worth a row where there is an mAP to lose
        cells += build_matrix(sources[:1], ["engine"], ["int8"], o.sizes, o.batch, machine, o.device)
    return cells


def main(argv: list[str] | None = None) -> None:
    committed_main(argv, __doc__, gpu_cells, "edgeyolo.bench.run_gpu", formats="pytorch,torchscript,onnx,engine",
                   imgsz="320,640", device="cuda:0", warmup=10, iters=100, out="benchmarks/results/gpu")


if __name__ == "__main__":  # pragma: no cover
    main()
