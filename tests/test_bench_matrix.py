"""The bench matrix: skip reasons for what a machine cannot run, option parsing, cell counts."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeyolo.bench.matrix import Machine, Source, build_matrix, parse_list, parse_sizes, skip_reason
from edgeyolo.runtime.info import precision_of

CPU_ONLY = Machine(cuda=False, modules=frozenset({"torch", "onnx", "onnxruntime"}))
GPU_TRT = Machine(cuda=True, modules=frozenset({"torch", "onnx", "onnxruntime", "tensorrt", "torch_tensorrt"}))
GPU_NO_TRT = Machine(cuda=True, modules=frozenset({"torch", "onnx", "onnxruntime"}))
GPU_ORT_GPU = Machine(cuda=True, modules=frozenset({"torch", "onnx", "onnxruntime"}), ort_cuda=True)


@pytest.mark.parametrize("fmt, prec, machine, device, expect", [
    ("pytorch", "fp32", CPU_ONLY, "cpu", ""),
    ("onnx", "fp32", CPU_ONLY, "cpu", ""),
    ("onnx", "int8", CPU_ONLY, "cpu", ""),
    ("torchscript", "fp32", CPU_ONLY, "cpu", ""),
    ("engine", "fp32", CPU_ONLY, "cpu", "needs tensorrt, a CUDA GPU"),
    ("torch-tensorrt", "fp16", CPU_ONLY, "cpu", "needs torch_tensorrt, a CUDA GPU"),
    ("pytorch", "fp16", CPU_ONLY, "cpu", "needs a CUDA GPU"),
    ("torchscript", "fp16", CPU_ONLY, "cpu", "needs a CUDA GPU"),
    ("pytorch", "int8", GPU_TRT, "cuda:0", "no INT8 path"),
    ("torchscript", "int8", CPU_ONLY, "cpu", "no INT8 export"),
    ("onnx", "fp16", CPU_ONLY, "cpu", "no FP16 ONNX"),
    ("torch-tensorrt", "int8", GPU_TRT, "cuda:0", "not exported"),
    ("engine", "int8", GPU_NO_TRT, "cuda:0", "needs tensorrt ("),
    ("engine", "fp16", GPU_TRT, "cuda:0", ""),
    ("engine", "int8", GPU_TRT, "cuda:0", ""),
    ("engine", "fp16", GPU_TRT, "cpu", "runs on the GPU only; pass --device cuda:0"),
    ("pytorch", "fp16", GPU_TRT, "cpu", "needs --device cuda:0"),
    ("pytorch", "fp16", GPU_TRT, "cuda:0", ""),
    ("pytorch", "fp32", CPU_ONLY, "cuda:0", "torch sees no CUDA GPU"),
    ("onnx", "fp32", GPU_NO_TRT, "cuda:0", "needs onnxruntime-gpu"),  # not silently on the CPU provider
    ("onnx", "int8", GPU_NO_TRT, "cpu", ""),
    ("onnx", "fp32", GPU_ORT_GPU, "cuda:0", ""),
])
def test_skip_reasons(fmt, prec, machine, device, expect):
    why = skip_reason(fmt, prec, machine, device)
    assert (why == "") if expect == "" else (expect in why), why


def test_matrix_counts_and_order():
    srcs = [Source("a", "random"), Source("b", "checkpoint", Path("b.pt"))]
    cells = build_matrix(srcs, ["pytorch", "onnx", "engine"], ["fp32", "int8"], [320, 416], 1, CPU_ONLY, "cpu")
    assert len(cells) == 2 * 2 * 3 * 2
    assert [c.label for c in cells[:3]] == ["a pytorch fp32 320", "a pytorch int8 320", "a onnx fp32 320"]
    run = [c.label for c in cells if not c.skip]
    assert run == ["a pytorch fp32 320", "a onnx fp32 320", "a onnx int8 320", "a pytorch fp32 416", "a onnx fp32 416",
                   "a onnx int8 416", "b pytorch fp32 320", "b onnx fp32 320", "b onnx int8 320", "b pytorch fp32 416",
                   "b onnx fp32 416", "b onnx int8 416"]
    with pytest.raises(ValueError, match="--batch"):
        build_matrix(srcs, ["onnx"], ["fp32"], [320], 0, CPU_ONLY, "cpu")


def test_option_parsing():
    assert parse_list("onnx, pytorch,onnx", "--formats", ("onnx", "pytorch")) == ["onnx", "pytorch"]
    with pytest.raises(ValueError, match="--formats: unknown tflite"):
        parse_list("onnx,tflite", "--formats", ("onnx",))
    with pytest.raises(ValueError, match="--precisions is empty"):
        parse_list(" , ", "--precisions")
    assert parse_sizes("320,416, 640") == [320, 416, 640]
    for bad in ("300", "abc", "0"):
        with pytest.raises(ValueError, match="--imgsz"):
            parse_sizes(bad)


def test_artifact_precision():
    assert precision_of(Path("m_int8.onnx"), {}) == "int8"
    assert precision_of(Path("m.torchscript"), {"half": True}) == "fp16"
    assert precision_of(Path("m.engine"), {"precision": "fp16"}) == "fp16"
    assert precision_of(Path("m.onnx"), {}) == "fp32"
