"""The FORMATS table: parsing, option refusal with a one-line reason, requirements."""
from __future__ import annotations

import pytest

from edgeyolo.formats import FORMATS, check_options, check_requirements, format_of, parse_formats


def test_parse_formats() -> None:
    assert [f.name for f in parse_formats("onnx, torchscript,onnx")] == ["onnx", "torchscript"]
    with pytest.raises(ValueError, match="unknown format 'tflite'"):
        parse_formats("onnx,tflite")
    with pytest.raises(ValueError, match="empty"):
        parse_formats(" , ")


def test_option_that_does_not_apply_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^--dla does not apply to --format onnx \(it applies to engine\)$"):
        check_options(parse_formats("onnx"), {"dla": 0})
    with pytest.raises(ValueError, match="--workspace does not apply to --format torchscript"):
        check_options(parse_formats("torchscript"), {"workspace": 2.0})
    check_options(parse_formats("torchscript,onnx"), {"dynamic": True, "int8": "on", "opset": 13})  # onnx takes them


def test_requirements_and_suffixes() -> None:
    assert FORMATS["onnx"].runnable_here() and FORMATS["torchscript"].runnable_here()
    assert format_of("x/m_int8.onnx").name == "onnx" and format_of("m.trt.ts").name == "torch-tensorrt"
    assert format_of("m.engine").backend == "tensorrt"
    with pytest.raises(ValueError, match="unknown artifact type"):
        format_of("m.tflite")
    if not FORMATS["engine"].runnable_here():
        with pytest.raises(ValueError, match=r"--format engine needs .*pip install 'edgeyolo\[trt\]'"):
            check_requirements(parse_formats("engine"))


def test_every_row_names_a_runtime_loader_and_an_export_writer() -> None:
    """The table is data: the runtime and export resolve its names, so a typo would only show when
    that format is loaded or written. The core itself imports no stage."""
    from edgeyolo.export.writers import writer_of
    from edgeyolo.formats import ARTIFACT_SUFFIXES, CHECKPOINT
    from edgeyolo.runtime.backends import LOADERS
    for f in FORMATS.values():
        assert f.backend in LOADERS, f.name
        assert callable(writer_of(f)) and f.writer.startswith("edgeyolo.export."), f.name
        assert set(f.precisions) == {"fp32", "fp16", "int8"} and f.suffixes[0] == f.suffix
        assert all(s in ARTIFACT_SUFFIXES and format_of(f"m{s}") is f for s in f.suffixes)
    assert CHECKPOINT.name not in FORMATS and CHECKPOINT.why_not("int8") and not CHECKPOINT.writer
