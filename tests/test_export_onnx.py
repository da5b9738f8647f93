"""ONNX and TorchScript artifacts: names, metadata, dynamic batch, in-graph NMS, the TensorRT lint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from edgeyolo.export.deploy import DeployModel, prepare_model
from edgeyolo.export.onnx_export import export_onnx, op_counts, read_metadata
from edgeyolo.export.onnx_nms import add_efficient_nms, add_onnx_nms
from edgeyolo.runtime.backends import OrtBackend, load_backend
from edgeyolo.export.targets import get_target
from edgeyolo.export.torchscript_export import export_torchscript, load_torchscript
from edgeyolo.export.trt_ops import check_trt
from edgeyolo.models import build_model

IMGSZ = 96
META = {"names": ["a", "b", "c", "d"], "stride": [8, 16, 32], "imgsz": IMGSZ}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model("yolov4s-mbv3s", nc=4).eval()
    with torch.no_grad():  # objectness high enough that NMS has boxes to keep
        for conv in m.head.m:
            conv.bias.view(3, 9)[:, 4] += 6.0
            conv.bias.view(3, 9)[:, 5:] += 2.0
    return m


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory) -> Path:
    deploy, _ = prepare_model(model, get_target("10"))
    return export_onnx(deploy, tmp_path_factory.mktemp("onnx") / "m.onnx", IMGSZ, opset=17, dynamic=True, metadata=META)


def test_names_metadata_and_dynamic_batch(model, onnx_path: Path) -> None:
    proto = onnx.load(str(onnx_path))
    assert [i.name for i in proto.graph.input] == ["images"] and [o.name for o in proto.graph.output] == ["output"]
    assert read_metadata(onnx_path) == META
    x = np.random.default_rng(1).random((3, 3, IMGSZ, IMGSZ), dtype=np.float32)
    out = OrtBackend(onnx_path)(x)[0]
    with torch.no_grad():
        ref = DeployModel(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)
    assert {"BatchNormalization", "ScatterND"}.isdisjoint(op_counts(onnx_path))


def test_raw_heads(model, tmp_path: Path) -> None:
    deploy, _ = prepare_model(model, get_target("8.5"), decode=False)
    p = export_onnx(deploy, tmp_path / "raw.onnx", IMGSZ, opset=17)
    outs = OrtBackend(p)(np.zeros((1, 3, IMGSZ, IMGSZ), np.float32))
    assert [o.shape for o in outs] == [(1, 3, 12, 12, 9), (1, 3, 6, 6, 9), (1, 3, 3, 3, 9)]
    assert [o.name for o in onnx.load(str(p)).graph.output] == ["output0", "output1", "output2"]


def test_onnx_nms_matches_torchvision(onnx_path: Path, tmp_path: Path) -> None:
    import torchvision
    conf, iou = 0.3, 0.45
    proto = add_onnx_nms(onnx.load(str(onnx_path)), nc=4, conf_thres=conf, iou_thres=iou, max_det_per_class=1000)
    onnx.save(proto, tmp_path / "nms.onnx")
    x = np.random.default_rng(2).random((2, 3, IMGSZ, IMGSZ), dtype=np.float32)
    dets = OrtBackend(tmp_path / "nms.onnx")(x)[0]  # (K, 7)
    dec = torch.from_numpy(OrtBackend(onnx_path)(x)[0])
    assert dets.shape[1] == 7 and len(dets) > 0
    for b in range(2):
        p = dec[b]
        scores = p[:, 5:] * p[:, 4:5]
        i, c = (scores > conf).nonzero(as_tuple=True)
        boxes = torch.cat([p[i, :2] - p[i, 2:4] / 2, p[i, :2] + p[i, 2:4] / 2], 1)
        keep = torchvision.ops.batched_nms(boxes, scores[i, c], c, iou)
        want = sorted(zip(c[keep].tolist(), [round(v, 4) for v in scores[i, c][keep].tolist()]))
        got = dets[dets[:, 0] == b]
        have = sorted(zip(got[:, 6].astype(int).tolist(), [round(float(v), 4) for v in got[:, 5]]))
        assert have == want


@pytest.mark.parametrize("rows", [8, 600])
def test_fixed_rows_nms_keeps_the_best_rows_of_the_plain_graph(onnx_path: Path, tmp_path: Path, rows: int) -> None:
    """The engine's NMS tail: a static (rows, 7) output holding the plain graph's rows best first
    (all of them when they fit), padded with rows whose batch index -1 no image has."""
    from edgeyolo.runtime.info import model_info
    from edgeyolo.runtime.processing import postprocess, preprocess
    x = np.random.default_rng(2).random((2, 3, IMGSZ, IMGSZ), dtype=np.float32)
    plain = OrtBackend(add_onnx_nms(onnx.load(str(onnx_path)), nc=4).SerializeToString())(x)[0]
    proto = add_onnx_nms(onnx.load(str(onnx_path)), nc=4, rows=rows)
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [rows, 7]
    fixed = OrtBackend(proto.SerializeToString())(x)[0]
    assert fixed.shape == (rows, 7) and len(plain) > 8
    real = fixed[fixed[:, 0] >= 0]
    assert len(real) == min(rows, len(plain)) and np.all(np.diff(fixed[:, 5]) <= 0)
    best = plain[np.argsort(-plain[:, 5], kind="stable")][: len(real)]
    np.testing.assert_allclose(real[:, 5], best[:, 5])
    if rows >= len(plain):  # everything fits: the runtime reads the same detections from both
        assert np.all(fixed[len(plain):, [0, 5, 6]] == -1)
        info = model_info("m.onnx", "onnx", {"names": list("abcd"), "imgsz": IMGSZ}, ["output"], [2])
        _, lbs = preprocess([np.zeros((IMGSZ, IMGSZ, 3), np.uint8)] * 2, IMGSZ)
        for a, b in zip(postprocess([plain], info, lbs, conf=0.0), postprocess([fixed], info, lbs, conf=0.0)):
            np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="rows must be 1..3840"):
        add_onnx_nms(onnx.load(str(onnx_path)), nc=4, rows=4000)


def test_efficient_nms_node(onnx_path: Path) -> None:
    proto = add_efficient_nms(onnx.load(str(onnx_path)), nc=4, max_det=50)
    node = proto.graph.node[-1]
    assert node.op_type == "EfficientNMS_TRT" and node.domain == "TRT"
    assert [o.name for o in proto.graph.output] == ["num_dets", "det_boxes", "det_scores", "det_classes"]
    assert check_trt(proto, "8.5") == []  # a plugin the parser resolves through the registry


def test_nms_needs_decoded_output(model, tmp_path: Path) -> None:
    deploy, _ = prepare_model(model, get_target("10"), decode=False)
    p = export_onnx(deploy, tmp_path / "raw.onnx", IMGSZ, opset=17)
    with pytest.raises(ValueError, match="decoded 'output'"):
        add_onnx_nms(onnx.load(str(p)), nc=4)


def test_torchscript_traced_frozen_with_metadata(model, tmp_path: Path) -> None:
    deploy, _ = prepare_model(model, get_target("10"))
    p = export_torchscript(deploy, tmp_path / "m.torchscript", IMGSZ, metadata=META)
    module, meta = load_torchscript(p)
    assert meta == META
    x = np.random.default_rng(3).random((1, 3, IMGSZ, IMGSZ), dtype=np.float32)
    with torch.no_grad():
        ref = DeployModel(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(load_backend(p)(x)[0], ref, rtol=1e-4, atol=1e-3)


def _device_constants(module: torch.jit.ScriptModule) -> list[str]:
    return [str(n) for n in module.graph.nodes() if n.kind() == "prim::Constant" and str(n.output().type()) == "Device"]


def test_torchscript_exported_on_cpu_bakes_in_no_device(model, tmp_path: Path) -> None:
    """A trace records device arguments as constants; one left in the graph (the decode's grid, as
    torch.arange(device=...)) makes a CPU export build tensors on the CPU when run on a GPU."""
    deploy, _ = prepare_model(model, get_target("10"))
    module, _ = load_torchscript(export_torchscript(deploy, tmp_path / "m.torchscript", IMGSZ))
    assert _device_constants(module) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_torchscript_exported_on_cpu_runs_on_cuda(model, tmp_path: Path) -> None:
    deploy, _ = prepare_model(model, get_target("10"))
    p = export_torchscript(deploy, tmp_path / "m.torchscript", IMGSZ)
    x = np.random.default_rng(4).random((1, 3, IMGSZ, IMGSZ), dtype=np.float32)
    np.testing.assert_allclose(load_backend(p, device="cuda:0")(x)[0], load_backend(p)(x)[0], rtol=1e-3, atol=1e-2)


def test_check_trt_lists_unsupported_nodes(model, tmp_path: Path) -> None:
    # an 8.5-style export keeps nn.Hardswish at opset 14+ -> HardSwish nodes TensorRT 8.2 cannot import
    p = tmp_path / "hs.onnx"
    torch.onnx.export(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Hardswish()), (torch.zeros(1, 3, 8, 8),),
                      str(p), dynamo=False, opset_version=14)
    problems = check_trt(p, "8.2")
    assert any(line.startswith("HardSwish: not supported by the TensorRT 8.2") for line in problems)
    assert any(line.startswith("opset 14") for line in problems)
    assert check_trt(p, "8.5") == []
    mish = helper.make_model(helper.make_graph([helper.make_node("Mish", ["x"], ["y"], name="m0")], "g",
                             [helper.make_tensor_value_info("x", 1, [1])], [helper.make_tensor_value_info("y", 1, [1])]),
                             opset_imports=[helper.make_opsetid("", 18)])
    assert any("Mish" in line and "m0" in line for line in check_trt(mish, "8.6"))
    assert all(not any("Mish" in line for line in check_trt(mish, t)) for t in ("10", "10.3", "10.16", "11"))


@pytest.mark.parametrize("target", ["10.3", "10.16", "11"])
def test_our_exports_pass_each_targets_lint(onnx_path: Path, tmp_path: Path, target: str) -> None:
    """Every TensorRT target has a --check-trt table, and our graph (with either NMS tail) passes it."""
    from edgeyolo.export.fp16 import to_fp16
    assert check_trt(onnx_path, target) == []
    assert check_trt(add_onnx_nms(onnx.load(str(onnx_path)), nc=4, rows=300), target) == []
    if target == "11":  # what an 11 engine is built from
        assert check_trt(to_fp16(onnx_path, tmp_path / "m_fp16.onnx"), target) == []


def test_our_8_2_export_passes_the_lint(model, tmp_path: Path) -> None:
    deploy, _ = prepare_model(model, get_target("8.2"))
    p = export_onnx(deploy, tmp_path / "m82.onnx", IMGSZ, opset=13)
    assert check_trt(p, "8.2") == []


@pytest.mark.parametrize("opset", [11, 13])
def test_onnx_nms_defaults_keep_crowded_classes_at_old_opsets(model, opset: int, tmp_path: Path) -> None:
    """The default in-graph NMS keeps every box per-class NMS keeps up to the runtime's max_det
    (300): a class with more than 100 boxes is not cut (it was, at 100). Opset 11/12 graphs (TensorRT
    8.2 targets) take Unsqueeze axes as an attribute."""
    import torchvision

    deploy, _ = prepare_model(model, get_target("8.2" if opset < 13 else "10"))
    p = export_onnx(deploy, tmp_path / "m.onnx", 160, opset=opset, metadata=META)
    proto = add_onnx_nms(onnx.load(str(p)), nc=4)
    assert read_metadata(proto)["nms"] == {"conf": 0.25, "iou": 0.45, "max_det_per_class": 300}
    onnx.save(proto, tmp_path / "nms.onnx")
    x = np.random.default_rng(3).random((1, 3, 160, 160), dtype=np.float32)
    dets = OrtBackend(tmp_path / "nms.onnx")(x)[0]
    dec = torch.from_numpy(OrtBackend(p)(x)[0][0])
    scores = dec[:, 5:] * dec[:, 4:5]
    i, c = (scores > 0.25).nonzero(as_tuple=True)
    boxes = torch.cat([dec[i, :2] - dec[i, 2:4] / 2, dec[i, :2] + dec[i, 2:4] / 2], 1)
    keep = torchvision.ops.batched_nms(boxes, scores[i, c], c, 0.45)
    per_class = np.bincount(c[keep].numpy(), minlength=4)
    assert per_class.max() > 100, per_class  # the case this test is about
    assert per_class.max() <= 300
    np.testing.assert_array_equal(np.bincount(dets[:, 6].astype(int), minlength=4), per_class)
