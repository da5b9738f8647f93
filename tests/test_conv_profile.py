"""The studies behind the CPU training-speed and repeatability figures: the GEMM weight gradients
they set against oneDNN's compute the same gradient, the step profile splits the convolutions into
dense and depthwise with their exact forward arithmetic, and the repeatability study compares two
runs' weights and results rows as it says."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeyolo.bench.studies.conv_kernels import conv_shapes, weight_grad_im2col, weight_grad_shifted_gemm
from edgeyolo.bench.studies.step_report import write_step_report
from edgeyolo.bench.studies.train_step_compare import _profile


@pytest.mark.parametrize("k", [1, 3, 5])
def test_gemm_weight_gradients_match_aten(k):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 9).contiguous(memory_format=torch.channels_last)  # H != W: rows are not square
    w = torch.randn(4, 5, k, k)
    g = torch.randn(3, 4, 7, 9)
    ref = torch.ops.aten.convolution_backward(g, x, w, None, [1, 1], [k // 2] * 2, [1, 1], False, [0, 0], 1,
                                              [False, True, False])[1]
    torch.testing.assert_close(weight_grad_shifted_gemm(x, g, k), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(weight_grad_im2col(x, g, k), ref, rtol=1e-4, atol=1e-4)


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 5, 2, 2, groups=8, bias=False), nn.Conv2d(8, 4, 1, bias=False))


def test_conv_shapes_counts_each_convolution():
    shapes = conv_shapes(_tiny(), 16)
    assert shapes == {(3, 8, 3, 1, 1, 16, 16): 1, (8, 8, 5, 2, 8, 16, 16): 1, (8, 4, 1, 1, 1, 8, 8): 1}


def test_step_profile_splits_dense_and_depthwise_convolutions(tmp_path):
    model = _tiny().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 16, 16)

    def step(x, t):  # noqa: ARG001
        model(x.contiguous(memory_format=torch.channels_last)).square().mean().backward()
    families, convs = _profile(step, x, None, model)
    dense = 2 * 2 * (8 * 16 * 16 * 3 * 9 + 4 * 8 * 8 * 8)  # 2 FLOPs per MAC, batch 2, the 3x3 and the 1x1
    depthwise = 2 * 2 * 8 * 8 * 8 * 25
    assert convs["dense"]["forward_gflop"] == pytest.approx(dense * 1e-9)
    assert convs["depthwise"]["forward_gflop"] == pytest.approx(depthwise * 1e-9)
    assert all(c["forward_s"] > 0 and c["backward_s"] > 0 for c in convs.values()), convs
    assert families["conv forward"] > 0 and families["conv backward"] > 0
    record = {"settings": {"imgsz": 16, "batch": 2, "threads": 1, "rounds": 1, "steps": 1, "warmup": 1,
                           "model": "tiny"}, "date": "d", "load_avg": [0.0, 0.0], "runs": {}, "peer": "skipped: test",
              "profile": families, "convolutions": convs}
    text = write_step_report(record, tmp_path)
    for kind, c in convs.items():  # each kind's row: its backward over its forward time
        row = next(line for line in text.splitlines() if line.startswith(f"| {kind} |"))
        assert row.rstrip(" |").split(" | ")[-1] == f"{c['backward_s'] / c['forward_s']:.1f}"


def test_repeatability_compares_weights_and_results_rows(tmp_path):
    from edgeyolo.bench.studies.repeatability import first_differing_epoch, weight_differences
    w = {"a": torch.zeros(3), "b": torch.ones(2)}
    torch.save({"train_state": {"raw_model": w}}, tmp_path / "1.pt")
    torch.save({"train_state": {"raw_model": {**w, "b": torch.tensor([1.0, 1.25])}}}, tmp_path / "2.pt")
    assert weight_differences(tmp_path / "1.pt", tmp_path / "1.pt") == {"tensors": 2, "differ": 0, "max_abs_diff": 0.0}
    assert weight_differences(tmp_path / "1.pt", tmp_path / "2.pt") == {"tensors": 2, "differ": 1, "max_abs_diff": 0.25}
    head = "epoch, time, train/box_loss, metrics/mAP50\n"
    (tmp_path / "a.csv").write_text(head + "0, 1.0, 0.5, 0.1\n1, 2.0, 0.4, 0.2\n")
    (tmp_path / "b.csv").write_text(head + "0, 1.7, 0.5, 0.1\n1, 2.2, 0.4, 0.3\n")  # times differ: not a difference
    assert first_differing_epoch(tmp_path / "a.csv", tmp_path / "b.csv") == 1
    assert first_differing_epoch(tmp_path / "a.csv", tmp_path / "a.csv") is None
