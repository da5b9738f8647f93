"""Q/DQ INT8: TensorRT-compatible quantization, ORT runs it, calibration cache, per-layer
bypass, and its mAP measured on the synthetic validation set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgeyolo.export.deploy import prepare_model
from edgeyolo.export.evaluate import evaluate_map
from edgeyolo.export.onnx_export import export_onnx, op_counts
from edgeyolo.export.int8.bypass import bypass_quantization
from edgeyolo.export.int8.calibration import calibration_cache_path
from edgeyolo.export.int8.graph import decode_nodes
from edgeyolo.export.int8.layers import layer_groups
from edgeyolo.export.int8.qdq import check_trt_qdq, quantize_qdq
from edgeyolo.export.targets import get_target
from edgeyolo.models import build_model
from edgeyolo.runtime.backends import OrtBackend

IMGSZ = 64


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    deploy, _ = prepare_model(build_model("yolov4s-mbv3s", nc=4).eval(), get_target("10"))
    return export_onnx(deploy, tmp_path_factory.mktemp("q") / "m.onnx", IMGSZ, opset=17)


@pytest.fixture(scope="module")
def batches() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((1, 3, IMGSZ, IMGSZ), dtype=np.float32) for _ in range(4)]


@pytest.fixture(scope="module")
def qdq(fp32: Path, batches) -> tuple[Path, Path]:
    cache = calibration_cache_path(fp32, batches, "minmax", fp32.parent)
    return quantize_qdq(fp32, fp32.parent / "m_int8.onnx", batches, "minmax", cache=cache), cache


def test_qdq_is_tensorrt_compatible_and_runs(fp32: Path, qdq, batches) -> None:
    path, _ = qdq
    ops = op_counts(path)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0 and ops["Conv"] == op_counts(fp32)["Conv"]
    assert check_trt_qdq(path) == []  # int8, zero point 0 everywhere, no INT32 bias DQ
    proto = onnx.load(str(path))
    weight_dq = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("_quantized")]
    scales = {i.name: i for i in proto.graph.initializer}
    assert any(len(scales[n.input[1]].dims) == 1 and scales[n.input[1]].dims[0] > 1 for n in weight_dq)  # per channel
    decoded = set(decode_nodes(fp32))
    assert decoded and not any(n.name in decoded for n in proto.graph.node if n.op_type == "QuantizeLinear")
    ref, out = OrtBackend(fp32)(batches[0])[0], OrtBackend(path)(batches[0])[0]
    assert out.shape == ref.shape and np.isfinite(out).all()


def test_trt_placement_quantizes_conv_inputs_only(qdq) -> None:
    """TensorRT's placement guidance for weighted ops: Q/DQ feed convs only; the builder fuses the
    activation (no Q/DQ inside Mish or hswish forcing int8 pointwise math) and the next Q."""
    proto = onnx.load(str(qdq[0]))
    consumers: dict[str, list] = {}
    for n in proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    dqs = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    assert dqs and all("Conv" in {c.op_type for c in consumers[d.output[0]]} for d in dqs)  # each for a conv
    # a tensor a conv reads may also feed a residual Add or a CSP Concat (they share its DQ), never an activation
    assert {c.op_type for d in dqs for c in consumers[d.output[0]]} <= {"Conv", "Add", "Concat"}


@pytest.fixture(scope="module")
def ort_qdq(batches, tmp_path_factory) -> tuple[Path, Path]:
    torch.manual_seed(0)
    deploy, _ = prepare_model(build_model("yolov4s-mbv3s", nc=4).eval(), get_target("ort"))
    fp = export_onnx(deploy, tmp_path_factory.mktemp("ort") / "o.onnx", IMGSZ, opset=17)
    return fp, quantize_qdq(fp, fp.parent / "o_int8.onnx", batches, "minmax", runtime="onnxruntime")


def test_ort_placement_fuses_into_qlinearconv(ort_qdq, batches, tmp_path: Path) -> None:
    """ONNX Runtime flavour: uint8 activations and quantized conv outputs, so ORT's optimizer turns
    every conv except the three Detect heads (their outputs go unrounded to the float decode)
    into QLinearConv; TensorRT's checks reject it, as they must."""
    import onnxruntime as ort
    fp, q = ort_qdq
    proto = onnx.load(str(q))
    inits = {i.name: i for i in proto.graph.initializer}
    zps = [inits[n.input[2]] for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and {z.data_type for z in zps} == {onnx.TensorProto.UINT8}
    assert check_trt_qdq(q)  # uint8 zero points: not buildable by TensorRT
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(q), so, providers=["CPUExecutionProvider"])
    fused = op_counts(tmp_path / "opt.onnx")
    assert fused.get("QLinearConv", 0) == op_counts(fp)["Conv"] - 3, fused
    # the float ops between convs read each quantized tensor once: ORT copies a DequantizeLinear per
    # consumer, so a Mish that read x three times would dequantize it three times
    dq_inputs = [n.input[0] for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node if n.op_type == "DequantizeLinear"]
    assert len(dq_inputs) == len(set(dq_inputs))
    # every ReLU here follows a conv: folded into that conv's uint8 range, none left to run in float
    assert op_counts(fp).get("Relu", 0) > 0 and op_counts(q).get("Relu", 0) == 0
    ref, out = OrtBackend(fp)(batches[0])[0], OrtBackend(q)(batches[0])[0]
    assert out.shape == ref.shape and np.isfinite(out).all()


def test_ort_bypass_restores_folded_relus(ort_qdq, batches) -> None:
    """Per-layer sensitivity on the ORT flavour: a conv whose ReLU was folded into its range gets the
    ReLU back when it runs in float, so bypassing every layer gives the FP32 model again."""
    fp, q = ort_qdq
    groups = layer_groups(fp)
    full = bypass_quantization(onnx.load(str(q)), [n for m in groups.values() for n in m], onnx.load(str(fp)))
    assert op_counts(full).get("Relu", 0) == op_counts(fp)["Relu"]
    ref, back = OrtBackend(fp)(batches[2])[0], OrtBackend(full.SerializeToString())(batches[2])[0]
    np.testing.assert_allclose(back, ref, rtol=1e-4, atol=1e-3)


def _conv_clip_graph(lo: float) -> onnx.ModelProto:
    """x -> Conv -> Clip(lo, 6) -> Conv -> y, seeded weights."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(2, 4, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.array(lo, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")]
    nodes = [helper.make_node("Conv", ["images", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["b"], name="clip"),
             helper.make_node("Conv", ["b", "w2"], ["y"], name="conv2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("lo,folded", [(0.0, True), (0.5, False)])
def test_ort_folds_relu6_but_not_a_clip_above_zero(lo: float, folded: bool, tmp_path: Path) -> None:
    """ReLU6 (Clip 0..6) disappears into the uint8 range; a Clip with a positive floor cannot (a
    uint8 range always holds 0) and stays a float node. Either way the output tracks FP32."""
    fp = tmp_path / "c.onnx"
    onnx.save(_conv_clip_graph(lo), str(fp))
    rng = np.random.default_rng(1)
    batches = [rng.random((1, 3, 8, 8), dtype=np.float32) for _ in range(4)]
    q = quantize_qdq(fp, tmp_path / "c_int8.onnx", batches, "minmax", runtime="onnxruntime")
    assert ("Clip" not in op_counts(q)) == folded
    ref, out = OrtBackend(fp)(batches[0])[0], OrtBackend(q)(batches[0])[0]
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()


def test_ort_weights_cannot_saturate_avx2_kernels(tmp_path: Path) -> None:
    """ORT's U8S8 kernels on x86 without VNNI add pairs of uint8 x int8 products in int16: weights
    in [-64, 64] keep every pair within it (255 x 64 x 2 < 32,767); TensorRT's Q/DQ keeps all 8 bits."""
    from onnx import numpy_helper
    fp = tmp_path / "c.onnx"
    onnx.save(_conv_clip_graph(0.0), str(fp))
    batches = [np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32)]
    spans = {}
    for runtime in ("onnxruntime", "tensorrt"):
        q = onnx.load(str(quantize_qdq(fp, tmp_path / f"{runtime}.onnx", batches, "minmax", runtime=runtime)))
        weights = [numpy_helper.to_array(i) for i in q.graph.initializer if i.name.endswith("_quantized")]
        spans[runtime] = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    full = onnx.load(str(quantize_qdq(fp, tmp_path / "full.onnx", batches, "minmax", runtime="onnxruntime",
                                      full_range_weights=True)))
    spans["onnxruntime, full range"] = max(int(np.abs(numpy_helper.to_array(i).astype(np.int32)).max())
                                           for i in full.graph.initializer if i.name.endswith("_quantized"))
    assert spans == {"onnxruntime": 64, "tensorrt": 127, "onnxruntime, full range": 127}


def test_calibration_cache_reused(fp32: Path, qdq, batches, tmp_path: Path) -> None:
    path, cache = qdq
    assert cache.is_file() and cache.suffix == ".json"
    again = quantize_qdq(fp32, tmp_path / "again.onnx", None, "minmax", cache=cache)  # no images: ranges from cache
    np.testing.assert_array_equal(OrtBackend(again)(batches[1])[0], OrtBackend(path)(batches[1])[0])
    assert calibration_cache_path(fp32, batches[:2], "minmax", fp32.parent) != cache  # other images, other key


def test_bypass_all_layers_restores_fp32(fp32: Path, qdq, batches) -> None:
    path, _ = qdq
    groups = layer_groups(fp32)
    assert any(len(m) == 4 for m in groups.values())  # conv + Softplus, Tanh, Mul (Mish)
    full = bypass_quantization(onnx.load(str(path)), [n for m in groups.values() for n in m], onnx.load(str(fp32)))
    ref = OrtBackend(fp32)(batches[2])[0]
    q = OrtBackend(path)(batches[2])[0]
    back = OrtBackend(full.SerializeToString())(batches[2])[0]
    assert np.abs(back - ref).max() < 0.1 * np.abs(q - ref).max()


def test_keep_layers_in_float(fp32: Path, batches, qdq, tmp_path: Path) -> None:
    _, cache = qdq
    groups = layer_groups(fp32)
    keep = [n for m in list(groups.values())[-3:] for n in m]  # the Detect convs
    p = quantize_qdq(fp32, tmp_path / "keep.onnx", None, "minmax", cache=cache, exclude=keep)
    proto = onnx.load(str(p))
    inits = {i.name for i in proto.graph.initializer}
    consumers = {i: n for n in proto.graph.node for i in n.input}
    kept = [n for n in proto.graph.node if n.name in keep and n.op_type == "Conv"]
    assert len(kept) == 3
    for conv in kept:  # float weights, float output (its input may still come through the previous layer's Q/DQ)
        assert conv.input[1] in inits and not conv.input[1].endswith("_quantized")
        assert consumers[conv.output[0]].op_type != "QuantizeLinear"


def test_qdq_map_measured_on_synthetic_val(fp32: Path, qdq, tmp_path_factory) -> None:
    from edgeyolo.data import synthetic_data_yaml
    data = synthetic_data_yaml(tmp_path_factory.mktemp("synth"), n_train=8, n_val=12, imgsz=96)
    path, _ = qdq
    m32 = evaluate_map(OrtBackend(fp32), data, IMGSZ, nc=4)
    m8 = evaluate_map(OrtBackend(path), data, IMGSZ, nc=4)
    assert m32.images == m8.images == 12
    assert 0.0 <= m8.map50_95 <= 1.0 and 0.0 <= m32.map50_95 <= 1.0  # untrained weights: ~0, but measured


def test_int8_auto_keeps_sensitive_layers_until_the_gate(overfit_run, overfit_data, tmp_path) -> None:
    """`--int8 auto` on a trained model: per-layer sensitivity, then the most sensitive convs kept
    in float until the measured mAP drop is within the gate. The gate is set below the plain INT8
    model's drop, so auto has to keep layers; its reported drop is re-measured independently."""
    from edgeyolo.formats import parse_formats
    from edgeyolo.export.pipeline import ExportOptions, run_export
    weights = overfit_run / "weights" / "best.pt"

    def export(int8: str, gate: float | None = None, out: Path = tmp_path):
        o = ExportOptions(weights=weights, formats=parse_formats("onnx"), imgsz=96, int8=int8, calib_data=overfit_data,
                          calib_images=48, calib_method="minmax", data=overfit_data, max_int8_drop=gate, out=out,
                          verify=False)
        with pytest.warns(UserWarning, match="calibrating INT8 on 48 images"):
            rep = run_export(o, log=lambda s: None)
        return next(a for a in rep.artifacts if a.precision == "int8")

    plain = export("on", out=tmp_path / "plain")
    base = evaluate_map(OrtBackend(tmp_path / "plain" / "best.onnx"), overfit_data, 96, nc=4).map50_95 * 100
    assert base > 30  # a trained model
    plain_drop = base - evaluate_map(OrtBackend(plain.path), overfit_data, 96, nc=4).map50_95 * 100
    gate = plain_drop - 0.25
    art = export("auto", gate)
    note = next(n for n in art.notes if n.startswith("auto:"))
    n_kept, final = int(note.split()[1]), float(note.rsplit(" ", 1)[1])
    got = evaluate_map(OrtBackend(art.path), overfit_data, 96, nc=4).map50_95 * 100
    assert final == pytest.approx(base - got, abs=1e-3)  # the note has 3 decimals
    assert n_kept > 0  # the plain model missed the gate: layers were kept in float
    assert final <= gate or n_kept == len(layer_groups(tmp_path / "best.onnx"))
    if plain_drop > 0:
        assert final < plain_drop


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_calibration_in_chunks(fp32: Path, tmp_path: Path, monkeypatch, method: str) -> None:
    """Calibration is fed to ORT in chunks (its calibrators hold every intermediate tensor of what
    they are given: 512 images at 320 px were OOM-killed at 24 GB). MinMax ranges are identical to
    one pass; entropy (merged histograms) gives the same Q/DQ graph with close scales."""
    import json

    from edgeyolo.export.int8 import calibration
    assert [calibration.calib_chunk(n) for n in (512, 12, 7, 5)] == [8, 6, 7, 5]
    rng = np.random.default_rng(1)
    batches = [rng.random((1, 3, IMGSZ, IMGSZ), dtype=np.float32) for _ in range(12)]
    seen: list[int] = []
    orig = calibration.BatchReader.set_range
    monkeypatch.setattr(calibration.BatchReader, "set_range", lambda self, start_index, end_index: (seen.append(end_index - start_index), orig(self, start_index, end_index)))
    chunked = quantize_qdq(fp32, tmp_path / "c.onnx", batches, method, cache=tmp_path / "c.json")
    assert seen and set(seen) == {6}  # 12 images -> two chunks of 6 (CALIB_CHUNK 8)
    monkeypatch.setattr(calibration, "CALIB_CHUNK", 100)
    whole = quantize_qdq(fp32, tmp_path / "w.onnx", batches, method, cache=tmp_path / "w.json")
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("c.json", "w.json"))
    if method == "minmax":
        assert a == b
    x = batches[0]
    ref = OrtBackend(fp32)(x)[0]
    err_c, err_w = (np.abs(OrtBackend(p)(x)[0] - ref).mean() for p in (chunked, whole))
    assert err_c <= 1.5 * err_w + 1e-3
    assert op_counts(chunked)["QuantizeLinear"] == op_counts(whole)["QuantizeLinear"]


def test_entropy_calibration_is_quiet(fp32: Path, batches, tmp_path: Path, capfd) -> None:
    """ORT's calibrators print a line per chunk and per tensor; an export's log is ours alone."""
    quantize_qdq(fp32, tmp_path / "e.onnx", batches[:2], "entropy")
    assert "histogram" not in capfd.readouterr().out


@pytest.mark.parametrize("slope,want,evals", [(0.5, 4, [0, 1, 2, 4, 3]), (0.35, 6, [0, 1, 2, 4, 8, 6, 5]),
                                              (3.0, 1, [0, 1]), (0.0, 10, [0, 1, 2, 4, 8, 10])])
def test_auto_search_finds_the_fewest_layers(slope: float, want: int, evals: list[int]) -> None:
    """--int8 auto's search: doubling to the first count under the gate, then bisection back, so
    yolov4-l's 100+ convs cost ~2 log2(k) quantize-and-measure rounds, not k. A gate nothing meets
    keeps every layer."""
    from edgeyolo.export.int8.search import fewest_layers
    calls: list[int] = []

    def drop_of(k: int) -> float:
        calls.append(k)
        return 3.0 - slope * k  # the drop falls as layers go back to float

    k, final = fewest_layers(10, drop_of, 1.0)
    assert (k, calls) == (want, evals)
    assert final == pytest.approx(3.0 - slope * want)
    assert final <= 1.0 or k == 10
