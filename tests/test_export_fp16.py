"""The FP16 ONNX a strongly typed TensorRT (11.x) builds ``--fp16`` from: its graph, its accuracy in
ONNX Runtime against PyTorch (the export's mAP gate), and the engine build that uses it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from helpers import run_cli as run
from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import save_checkpoint




@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("w") / "s.pt", build_model("yolov4s-mbv3s", nc=4),
                           ["motorcycle", "car", "bus", "truck"])


def _elem_type(proto: onnx.ModelProto, name: str) -> int:
    vi = {v.name: v for v in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]}
    return vi[name].type.tensor_type.elem_type


def test_fp16_graph_keeps_io_and_decode_in_fp32(weights: Path, tmp_path: Path) -> None:
    from edgeyolo.export.fp16 import fp32_nodes, to_fp16
    from edgeyolo.export.onnx_export import read_metadata
    from edgeyolo.runtime.backends import OrtBackend
    from edgeyolo.export.tensorrt_build import onnx_is_fp16
    assert run(["export", "--weights", str(weights), "--imgsz", "64", "--format", "onnx", "--no-verify",
                "--out", str(tmp_path)]) == 0
    src = tmp_path / "s.onnx"
    dst = to_fp16(src, tmp_path / "s_fp16.onnx")
    half, full = onnx.load(str(dst)), onnx.load(str(src))
    onnx.checker.check_model(half)  # topologically sorted: the converter appends its input casts last
    assert onnx_is_fp16(dst) and not onnx_is_fp16(src)
    conv_w = [i for i in half.graph.initializer if i.dims and len(i.dims) == 4]
    assert conv_w and all(i.data_type == TensorProto.FLOAT16 for i in conv_w)
    assert _elem_type(half, "images") == _elem_type(half, "output") == TensorProto.FLOAT
    decode = set(fp32_nodes(full))
    inferred = onnx.shape_inference.infer_shapes(half)
    for n in inferred.graph.node:  # the decode computes in FP32: none of its float inputs is FP16
        if n.name in decode:
            assert all(_elem_type(inferred, i) != TensorProto.FLOAT16 for i in n.input if i and
                       i not in {t.name for t in half.graph.initializer}), n.name
    assert read_metadata(dst) == read_metadata(src)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    a, b = OrtBackend(src)(x)[0], OrtBackend(dst)(x)[0]
    assert b.dtype == np.float32
    np.testing.assert_allclose(b[..., :4], a[..., :4], atol=0.02 * 64)  # box pixels within 2% of the image
    np.testing.assert_allclose(b[..., 4:], a[..., 4:], atol=0.02)


def test_fp16_onnx_export_for_tensorrt_11_passes_the_map_gate(overfit_run, overfit_data, tmp_path: Path) -> None:
    """`edgeyolo export --format onnx --fp16 --target 11 --data`: best_fp16.onnx is an artifact of
    its own, measured in ONNX Runtime against PyTorch's mAP and held to the FP16 gate."""
    w = overfit_run / "weights" / "best.pt"
    assert run(["export", "--weights", str(w), "--imgsz", "96", "--format", "onnx", "--fp16", "--target", "11",
                "--data", str(overfit_data), "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "export.json").read_text())
    art = {Path(a["path"]).name: a for a in rep["artifacts"]}
    assert set(art) == {"best.onnx", "best_fp16.onnx"} and art["best_fp16.onnx"]["precision"] == "fp16"
    m = art["best_fp16.onnx"]["map"]
    assert rep["pytorch_map"]["mAP50"] > 30  # a model that detects: the gate measures something
    assert m["drop"] <= 0.5 and not rep["errors"]


@pytest.mark.parametrize("version,src", [("11.4.0.106", "s_fp16.onnx"), ("10.16.1.11", "s.onnx")])
def test_fp16_engine_source_per_typing(weights: Path, tmp_path: Path, monkeypatch, version: str, src: str) -> None:
    """--format engine --fp16: TensorRT 11 builds from the FP16 ONNX (written and kept), 10.x from
    the FP32 ONNX with the FP16 builder flag (no FP16 ONNX needed)."""
    from trt_standin import standin_module

    import edgeyolo.export.tensorrt_build as tb
    from edgeyolo.formats import FORMATS, parse_formats
    from edgeyolo.export.pipeline import ExportOptions, run_export
    built = {}

    def fake_build(path, dst, opts, calibration=None, cache_dir=None):
        built.update(src=Path(path).name, fp16=opts.fp16, target=opts.target)
        Path(dst).write_bytes(b"engine")
        return Path(dst)
    monkeypatch.setattr(tb, "build_engine", fake_build)
    monkeypatch.setitem(sys.modules, "tensorrt", standin_module(version, {}))
    monkeypatch.setattr(type(FORMATS["engine"]), "missing", lambda self: ["tensorrt"] if self.name == "engine" else [])
    rep = run_export(ExportOptions(weights=weights, formats=parse_formats("engine"), imgsz=64, fp16=True,
                                   out=tmp_path, verify=False), log=lambda s: None)
    assert built == {"src": src, "fp16": True, "target": "11" if version.startswith("11") else "10.16"}
    assert (tmp_path / "s_fp16.onnx").is_file() == version.startswith("11")
    assert {Path(a.path).name for a in rep.artifacts} >= {"s.onnx", src, "s.engine"}
