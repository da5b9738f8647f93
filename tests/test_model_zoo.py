"""The seed models reproduced to the parameter, the zoo names, forward shapes, trace and ONNX."""
from __future__ import annotations

import io

import onnx
import pytest
import torch
from click.testing import CliRunner

from edgeyolo.cli import cli
from edgeyolo.models import build_model, model_names
from edgeyolo.models.summary import count_params, part_stats, runnable

# The seed repositories' model sizes: (parameter tensors, parameters) with nc = 4, as the seeds print them.
SEED_FIGURES = {
    "yolov4-l": (334, 52_515_505, "5.25155e+07"),
    "yolov4-mbv2": (294, 28_270_161, "2.82702e+07"),
    "yolov4-mbv3s": (264, 25_798_409, "2.57984e+07"),
    "yolov4-mbv3l": (301, 27_176_233, "2.71762e+07"),
    "yolov4-r50": (297, 50_639_761, "5.06398e+07"),
    "yolov4-rx50": (297, 50_111_633, "5.01116e+07"),
    "yolov4-ser50": (361, 53_170_753, "5.31708e+07"),
    "yolov4-mbv3s-tv": (276, 26_239_089, "2.62391e+07"),
    "yolov4-mbv3l-tv": (308, 28_695_681, "2.86957e+07"),
}
SPPCSP_IN = {"yolov4-l": 1024, "yolov4-mbv2": 1280, "yolov4-mbv3s": 576, "yolov4-mbv3l": 960, "yolov4-r50": 2048,
             "yolov4-rx50": 2048, "yolov4-ser50": 2048, "yolov4-mbv3s-tv": 576, "yolov4-mbv3l-tv": 960}


@pytest.mark.parametrize("name", list(SEED_FIGURES))
def test_seed_model_counts_exact(name):
    model = build_model(name, nc=4)
    tensors, params = count_params(model)
    assert (tensors, params) == SEED_FIGURES[name][:2]
    sppcsp = next(r for r in model.rows if r.module_name == "SPPCSP")
    assert sppcsp.args[0] == SPPCSP_IN[name]
    assert [f.stride for f in model.feature_info] == [8, 16, 32]
    assert model.stride.tolist() == [8.0, 16.0, 32.0]


@pytest.mark.parametrize("name", ["yolov4-l", "yolov4-mbv3s", "yolov4-ser50"])
def test_info_cli_prints_seed_summary(name):
    result = CliRunner().invoke(cli, ["info", "--model", name, "--nc", "4", "--imgsz", "320"])
    assert result.exit_code == 0, result.output
    tensors, params, short = SEED_FIGURES[name]
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Model Summary: {tensors} layers, {short} parameters, {short} gradients, ")
    assert last.endswith(f"({params:,} parameters)")
    for part in ("backbone", "neck", "head"):
        assert any(line.startswith(part) for line in result.output.splitlines())


def test_info_list_names_every_model():
    result = CliRunner().invoke(cli, ["info", "--list", "--nc", "4", "--imgsz", "64"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()[1:]]
    assert listed == model_names() and len(listed) == 36


@pytest.mark.parametrize("name", ["yolov4s-mbv3s", "yolov4s-r50"])
def test_part_gflops_match_torch_flop_counter(name):
    # part_stats extrapolates two small forwards (a + b * area) and counts convs with hooks; it must
    # give exactly what torch's FlopCounterMode counts in one meta-device forward at the size asked
    # (squeeze-excitation's constant term in mbv3s, a max-pool stem in r50), and leave the model as it was.
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name, nc=4, device="meta")
    got = [s.gflops for s in part_stats(model, 96)]
    assert next(model.parameters()).is_meta and model.training
    x, want = torch.zeros(1, 3, 96, 96, device="meta"), []
    with torch.no_grad():
        model.eval()
        for run in (lambda t: model.backbone(t), lambda t: model.neck(*t), lambda t: model.head(t)):
            with FlopCounterMode(display=False) as counter:
                x = run(x)
            want.append(counter.get_total_flops() / 1e9)
    assert got == pytest.approx(want, rel=1e-12, abs=0) and min(want) > 0
    with pytest.raises(ValueError, match="multiple of the model's largest stride 32"):
        part_stats(model, 100)


def test_scales_shrink_head_and_keep_backbone():
    def build(name):
        return build_model(name, nc=4, device="meta")

    big, small = build("yolov4-mbv3s"), build("yolov4s-mbv3s")
    assert count_params(big.backbone) == count_params(small.backbone)
    assert small.cfg["depth_multiple"] == 0.33 and small.cfg["width_multiple"] == 0.5
    assert count_params(small.neck)[1] < count_params(big.neck)[1] / 3
    # CSPDarknet is made of u5 blocks, so the whole model scales, as PyTorch_YOLOv4's yolov4s.
    assert count_params(build("yolov4s-cspdarknet").backbone)[1] < count_params(build("yolov4-l").backbone)[1] / 3
    assert count_params(build("yolov4l-cspdarknet")) == count_params(build("yolov4-l"))


def _check_forward(model, device, size, modes=("train", "eval")):
    """Raw per-level maps in train mode, decoded rows in eval mode -> the last output."""
    na, no = 3, 8
    x = torch.rand(2, 3, size, size, device=device)
    out = None
    with torch.no_grad():
        if "train" in modes:
            model.train()
            out = model(x)
            assert [tuple(r.shape) for r in out] == [(2, na, size // s, size // s, no) for s in (8, 16, 32)]
        if "eval" in modes:
            model.eval()
            out = model(x)
            assert tuple(out.shape) == (2, na * sum((size // s) ** 2 for s in (8, 16, 32)), no)
    return out


@pytest.mark.parametrize("name", model_names())
def test_forward_shapes_every_model(name):
    # Shapes through the real forward code, every model, train and eval: built on the meta device
    # and run on uninitialised CPU memory (the values are never read; a meta forward takes ~10x as long).
    # Two sizes, one mode each: both paths, and maps that follow the input's size.
    model = build_model(name, nc=3, device="meta")
    with runnable(model):
        _check_forward(model, "cpu", 64, modes=("train",))
        _check_forward(model, "cpu", 96, modes=("eval",))


@pytest.mark.parametrize("name", [n for n in model_names() if n.startswith("yolov4s-")])
def test_forward_numbers_small_scale(name):
    model = build_model(name, nc=3)
    for size in (64, 320):
        out = _check_forward(model, "cpu", size)
        assert torch.isfinite(out).all()
        assert ((out[..., 4:] >= 0) & (out[..., 4:] <= 1)).all()  # probabilities
        assert (out[..., 2:4] > 0).all()


# One model per block family (the decode is shared); the export tests cover ONNX for every model.
@pytest.mark.parametrize("name", ["yolov4s-cspdarknet", "yolov4s-mbv2", "yolov4s-mbv3l", "yolov4s-mbv3s-tv",
                                  "yolov4s-ser50"])
def test_trace_and_onnx_without_scatternd(name):
    model = build_model(name, nc=4).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        traced = torch.jit.trace(model, x)
        assert torch.allclose(traced(x), ref, atol=1e-5)
    f = io.BytesIO()
    torch.onnx.export(model, (x,), f, dynamo=False, opset_version=13, input_names=["images"], output_names=["output"])
    ops = {node.op_type for node in onnx.load_from_string(f.getvalue()).graph.node}
    assert "ScatterND" not in ops and "Conv" in ops
