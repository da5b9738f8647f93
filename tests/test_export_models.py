"""Every backbone of the zoo through the export graph: fused == unfused, ONNX Runtime == PyTorch,
and none of the nodes the TensorRT targets forbid. Each model is built once (module fixture), at
the small head scale: the blocks, and so the fusion and export paths, are the same at every scale."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeyolo.export.deploy import DeployModel, prepare_model
from edgeyolo.export.fuse import fuse_batchnorm
from edgeyolo.export.onnx_export import export_onnx, op_counts
from edgeyolo.runtime.backends import OrtBackend
from edgeyolo.export.targets import get_target
from edgeyolo.export.trt_ops import forbidden_nodes
from edgeyolo.models import build_model
from edgeyolo.models.zoo import BACKBONES
from helpers import randomize_bn

MODELS = [f"yolov4s-{b}" for b in BACKBONES]
IMGSZ = 64


@pytest.fixture(scope="module", params=MODELS)
def model(request) -> nn.Module:
    torch.manual_seed(0)
    return randomize_bn(build_model(request.param, nc=4))


def test_fused_equals_unfused(model: nn.Module) -> None:
    fused, rep = fuse_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original must be untouched"
    assert rep.affine == 5  # SPPCSP + 4 BottleneckCSP2 of the PAN head: activation-fed halves
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        a, b = model.forward_raw(x), fused.forward_raw(x)
    for ya, yb in zip(a, b):
        torch.testing.assert_close(yb, ya, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("target", ["8.2", "ort"])
def test_onnxruntime_matches_pytorch(model: nn.Module, tmp_path: Path, target: str) -> None:
    """TensorRT 8.2 is the strictest TensorRT target (every rewrite applies, opset 13); ``ort`` has
    the sigmoid form of Mish. The default target's export is checked in test_export_onnx.py.
    Unsimplified here to keep the 9-model run short."""
    t = get_target(target)
    deploy, _ = prepare_model(model, t)
    path = export_onnx(deploy, tmp_path / "m.onnx", IMGSZ, opset=t.opset, simplify=False)
    ops = op_counts(path)
    assert "BatchNormalization" not in ops and "ScatterND" not in ops
    if target == "8.2":
        assert forbidden_nodes(path, target) == {} and "HardSwish" not in ops
    else:  # ONNX Runtime's Softplus is a scalar loop: none may be left
        assert "Softplus" not in ops and "Mish" not in ops
    x = np.random.default_rng(0).random((1, 3, IMGSZ, IMGSZ), dtype=np.float32)
    with torch.no_grad():
        ref = DeployModel(model)(torch.from_numpy(x)).numpy()  # the original, unfused model
    out = OrtBackend(path)(x)[0]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)  # boxes are in pixels (0..IMGSZ * 4)
