"""The committed matrices (run_cpu, run_gpu): which cells each builds, and the GPU command's dry run
on a machine without CUDA (every cell a skipped row with its reason, nothing exported)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgeyolo.bench.matrix import Machine
from edgeyolo.bench.run_cpu import cpu_cells
from edgeyolo.bench.run_gpu import gpu_cells
from edgeyolo.bench.run_gpu import main as run_gpu_main
from edgeyolo.bench.runner import BenchOptions
from edgeyolo.models import SEED_MODELS

CPU = Machine(cuda=False, modules=frozenset({"torch", "onnx", "onnxruntime"}))
GPU = Machine(cuda=True, modules=frozenset({"torch", "onnx", "onnxruntime"}))  # no TensorRT, CPU onnxruntime


def _labels(cells) -> set[tuple[str, str, str, int]]:
    return {(c.source.name, c.format, c.precision, c.imgsz) for c in cells}


def test_cpu_matrix_is_fp32_everywhere_plus_two_int8_models() -> None:
    o = BenchOptions(formats=["pytorch", "torchscript", "onnx"], sizes=[320])
    cells = cpu_cells(o, None, CPU)
    assert len(cells) == (1 + len(SEED_MODELS)) * 3 + 2
    assert {c for c in _labels(cells) if c[2] == "int8"} == {("yolov4s-mbv3s", "onnx", "int8", 320),
                                                            ("yolov4-mbv3s", "onnx", "int8", 320)}
    assert all(not c.skip for c in cells)


def test_gpu_matrix_runs_the_torch_cells_and_says_why_not_the_rest(tmp_path: Path) -> None:
    o = BenchOptions(formats=["pytorch", "torchscript", "onnx", "engine"], sizes=[320, 640], device="cuda:0")
    trained = tmp_path / "best.pt"
    cells = gpu_cells(o, trained, GPU)
    runnable = [c for c in cells if not c.skip]
    n = 1 + len(SEED_MODELS)
    assert len(runnable) == n * 2 * 2 * 2  # pytorch, torchscript x fp32, fp16 x 2 sizes
    assert {c.format for c in runnable} == {"pytorch", "torchscript"}
    assert all("onnxruntime-gpu" in c.skip for c in cells if c.format == "onnx")
    assert all("tensorrt" in c.skip for c in cells if c.format == "engine")
    assert {c[:3] for c in _labels(cells) if c[2] == "int8"} == {("yolov4s-mbv3s", "engine", "int8")}
    assert cells[0].source.kind == "checkpoint" and cells[0].source.path == trained
    assert not any(c.precision == "int8" for c in gpu_cells(o, None, GPU))  # no mAP to protect: no INT8 row


@pytest.mark.skipif(torch.cuda.is_available(), reason="a dry run needs a machine without CUDA (here it would bench)")
def test_gpu_command_dry_run_without_cuda(tmp_path: Path) -> None:
    run_gpu_main(["--imgsz", "320", "--formats", "pytorch,torchscript", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "bench.json").read_text())
    assert res["settings"]["device"] == "cuda:0" and res["settings"]["cudnn_benchmark"] is True
    cells = res["cells"]
    assert len(cells) == (1 + len(SEED_MODELS)) * 2 * 2
    assert {c["status"] for c in cells} == {"skipped"}
    assert all("torch sees no CUDA GPU" in c["reason"] or "needs a CUDA GPU" in c["reason"] for c in cells)
