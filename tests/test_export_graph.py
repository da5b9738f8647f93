"""Graph preparation: BN fusion parity for every backbone, exact activation rewrites, counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeyolo.export.deploy import DeployModel, prepare_model
from edgeyolo.export.fuse import ChannelAffine, fuse_batchnorm, fuse_conv_bn
from edgeyolo.export.rewrite import (HardSwishClip, HardSwishMul, MishExplicit, MishSigmoid, rewrite_hardsigmoid,
                                     rewrite_hardswish, rewrite_mish)
from edgeyolo.export.targets import get_target
from edgeyolo.models import build_model
from helpers import randomize_bn


def test_csp_concat_bn_folds_into_plain_convs() -> None:
    """BottleneckCSP (CSPDarknet backbone): both concat halves come from plain convs -> no affine left."""
    from edgeyolo.models.blocks.csp import BottleneckCSP
    block = randomize_bn(BottleneckCSP(16, 32, n=1))
    fused, rep = fuse_batchnorm(block)
    assert isinstance(fused.bn, nn.Identity) and rep.affine == 0 and rep.fused == 1 + 2 + 2  # concat BN, cv1/cv4, m
    assert fused.cv3.bias is not None and fused.cv2.bias is not None
    x = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(fused(x), block(x), rtol=1e-5, atol=1e-5)


def test_csp2_keeps_affine_for_activation_branch() -> None:
    from edgeyolo.models.blocks.csp import SPPCSP, BottleneckCSP2
    for block in (randomize_bn(BottleneckCSP2(16, 16, n=2)), randomize_bn(SPPCSP(16, 16))):
        fused, rep = fuse_batchnorm(block)
        assert isinstance(fused.bn, ChannelAffine) and rep.affine == 1
        assert torch.all(fused.bn.scale[0, 16:] == 1) and torch.all(fused.bn.shift[0, 16:] == 0)  # branch B folded
        x = torch.randn(1, 16, 16, 16)
        torch.testing.assert_close(fused(x), block(x), rtol=1e-5, atol=1e-5)


def test_fuse_conv_bn_matches() -> None:
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=True)
    bn = randomize_bn(nn.Sequential(nn.BatchNorm2d(6)))[0]
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(fuse_conv_bn(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="BN of 5 channels"):
        fuse_conv_bn(conv, nn.BatchNorm2d(5))


X = torch.cat([torch.linspace(-10, 10, 20001), torch.tensor([-3.0, 3.0, 0.0, -1e4, 1e4, 25.0])])


@pytest.mark.parametrize("module,ref", [
    (HardSwishMul(), nn.Hardswish()), (HardSwishClip(), nn.Hardswish()), (MishExplicit(), nn.Mish()),
])
def test_rewrites_match_original_op(module: nn.Module, ref: nn.Module) -> None:
    torch.testing.assert_close(module(X), ref(X), rtol=1e-6, atol=1e-6)


def test_rewrite_functions_count_and_copy() -> None:
    m = nn.Sequential(nn.Hardswish(), nn.Sequential(nn.Hardswish(), nn.Hardsigmoid()), nn.Mish())
    m2, n = rewrite_hardswish(m, "clip")
    assert n == 2 and isinstance(m2[0], HardSwishClip) and isinstance(m[0], nn.Hardswish)
    m3, n = rewrite_hardsigmoid(m2)
    assert n == 1
    m4, n = rewrite_mish(m3)
    assert n == 1 and isinstance(m4[2], MishExplicit)
    torch.testing.assert_close(m4(X), m(X), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="style"):
        rewrite_hardswish(m, "bogus")


def test_prepare_model_counts_per_target() -> None:
    model = build_model("yolov4s-mbv3s", nc=4).eval()
    d82, r82 = prepare_model(model, get_target("8.2"))
    assert r82.rewrites == {"hswish": 18, "hsigmoid": 9, "mish": 36}
    assert any(isinstance(m, HardSwishClip) for m in d82.modules())
    _, r10 = prepare_model(model, get_target("10"))
    assert "mish" not in r10.rewrites and r10.rewrites["hswish"] == 18
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert r82.fused_bn + r82.affine_bn == n_bn
    assert r82.summary().startswith(f"fused {n_bn} BN") and "rewrote 18 hswish" in r82.summary()
    assert isinstance(d82, DeployModel) and not d82.training


def test_mish_sigmoid_form_matches_mish() -> None:
    """The ONNX Runtime form u - u / ((1 + sigmoid(u)^2) / 2), u = -x, against torch's Mish, far into
    both tails (no overflow: sigmoid stays in (0, 1))."""
    x = torch.cat([torch.linspace(-60, 60, 120001), torch.tensor([-1e4, -88.0, 88.0, 1e4, 0.0])])
    m, n = rewrite_mish(nn.Sequential(nn.Mish()), "sigmoid")
    assert n == 1 and isinstance(m[0], MishSigmoid)
    y = m(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, nn.functional.mish(x), rtol=1e-5, atol=3e-6)
    with pytest.raises(ValueError, match="mish rewrite style"):
        rewrite_mish(m, "fast")


def test_ort_target_rewrites() -> None:
    model = build_model("yolov4s-mbv3s", nc=4).eval()
    d, r = prepare_model(model, get_target("ort"))
    assert r.rewrites == {"hsigmoid": 9, "mish": 36}  # HardSwish stays one native op
    assert any(isinstance(m, nn.Hardswish) for m in d.modules())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(d(x), DeployModel(model)(x), rtol=1e-4, atol=1e-3)


def test_deploy_model_raw_and_decoded() -> None:
    model = build_model("yolov4s-mbv3s", nc=4).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        dec = DeployModel(model)(x)
        raw = DeployModel(model, decode=False)(x)
    assert dec.shape == (1, 3 * (64 // 8) ** 2 + 3 * 4 ** 2 + 3 * 2 ** 2, 9)
    assert isinstance(raw, tuple) and raw[0].shape == (1, 3, 8, 8, 9)


def test_unknown_target() -> None:
    with pytest.raises(ValueError, match="unknown --target"):
        get_target("7.1")
    names = {v: get_target(v).name for v in ("10", "10.3.0", "10.8", "10.16.1.11", "11", "11.4.0.106", "8.5.2.2", "8.6.1", "8.2.1")}
    assert names == {"10": "10.3", "10.3.0": "10.3", "10.8": "10.3", "10.16.1.11": "10.16", "11": "11",
                     "11.4.0.106": "11", "8.5.2.2": "8.5", "8.6.1": "8.6", "8.2.1": "8.2"}
    assert get_target("11").strongly_typed and not get_target("10.16").strongly_typed


def test_engine_target_follows_the_installed_tensorrt() -> None:
    from edgeyolo.export.targets import engine_target
    assert engine_target(None, "11.4.0.106").name == "11" and engine_target(None, "10.3.0").name == "10.3"
    assert engine_target("8.5", "10.3.0").name == "8.5"  # an older parser's graph still builds on 10
    with pytest.raises(ValueError, match=r"--target 10.16: this machine has TensorRT 11.4.0.106, which builds --target 11"):
        engine_target("10.16", "11.4.0.106")
    with pytest.raises(ValueError, match=r"--target 11: this machine has TensorRT 10.3.0"):
        engine_target("11", "10.3.0")


def test_mish_sigmoid_onnx_ops_and_values(tmp_path) -> None:
    """Six vectorised ONNX ops, the input read once (by the Neg), and ONNX Runtime's values equal
    to torch's Mish: the HardSigmoid that carries the affine (1 + t^2) / 2 never clips."""
    import numpy as np
    import onnx

    from edgeyolo.runtime.backends import OrtBackend
    path = tmp_path / "mish.onnx"
    x = torch.linspace(-30, 30, 3 * 64 * 64).reshape(1, 3, 64, 64)
    torch.onnx.export(MishSigmoid(), (x,), str(path), dynamo=False, opset_version=17, input_names=["images"])
    nodes = onnx.load(str(path)).graph.node
    assert sorted(n.op_type for n in nodes) == ["Div", "HardSigmoid", "Mul", "Neg", "Sigmoid", "Sub"]
    assert [n.op_type for n in nodes if "images" in n.input] == ["Neg"]
    out = OrtBackend(path)(x.numpy())[0]
    np.testing.assert_allclose(out, nn.functional.mish(x).numpy(), rtol=1e-5, atol=3e-6)
