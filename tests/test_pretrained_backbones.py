"""ImageNet checkpoints of torchvision and timm load strictly and give identical tapped features."""
from __future__ import annotations

import pytest
import torch
import torchvision
from click.testing import CliRunner

from edgeyolo.cli import cli
from helpers import randomize_bn
from edgeyolo.models import build_model
from edgeyolo.models.pretrained import load_backbone_weights



def _features_taps(features, taps):
    def run(x):
        out = []
        for i, layer in enumerate(features):
            x = layer(x)
            if i in taps:
                out.append(x)
        return out
    return run


def _resnet_taps(m):
    def run(x):
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        c3 = m.layer2(m.layer1(x))
        c4 = m.layer3(c3)
        return [c3, c4, m.layer4(c4)]
    return run


def _senet_taps(m):
    def run(x):
        x = m.layer1(m.pool0(m.layer0(x)))
        c3 = m.layer2(x)
        c4 = m.layer3(c3)
        return [c3, c4, m.layer4(c4)]
    return run


def _reference(name):
    tv = torchvision.models
    if name == "yolov4-mbv2":
        m = tv.mobilenet_v2()
        return m, _features_taps(m.features, (6, 13, 18))
    if name == "yolov4-mbv3s-tv":
        m = tv.mobilenet_v3_small()
        return m, _features_taps(m.features, (3, 8, 12))
    if name == "yolov4-mbv3l-tv":
        m = tv.mobilenet_v3_large()
        return m, _features_taps(m.features, (6, 12, 16))
    if name == "yolov4-r50":
        m = tv.resnet50()
        return m, _resnet_taps(m)
    if name == "yolov4-rx50":
        m = tv.resnext50_32x4d()
        return m, _resnet_taps(m)
    timm = pytest.importorskip("timm", reason="timm provides legacy_seresnet50 (Cadene's layout)")
    m = timm.create_model("legacy_seresnet50", pretrained=False)
    return m, _senet_taps(m)


@pytest.mark.parametrize("name", ["yolov4-mbv2", "yolov4-mbv3s-tv", "yolov4-mbv3l-tv", "yolov4-r50", "yolov4-rx50",
                                  "yolov4-ser50"])
def test_public_checkpoint_gives_identical_taps(name, tmp_path):
    torch.manual_seed(0)
    ref, taps = _reference(name)
    randomize_bn(ref)
    path = tmp_path / "backbone.pth"
    torch.save(ref.state_dict(), path)
    model = build_model(name, nc=4)
    n = load_backbone_weights(model, path)
    assert n == len([k for k in model.backbone.state_dict()])
    ref.eval(), model.eval()
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        expected, got = taps(x), model.backbone(x)
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in expected]
    for a, b in zip(got, expected):
        assert (a - b).abs().max().item() == 0.0


def test_wrapped_checkpoints_and_module_prefix(tmp_path):
    ref = torchvision.models.mobilenet_v3_small()
    sd = {"module." + k: v for k, v in ref.state_dict().items()}
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    model = build_model("yolov4s-mbv3s-tv", nc=4)
    assert load_backbone_weights(model, path) > 0
    assert torch.equal(model.backbone.layers[0][0].weight, ref.features[0][0].weight)


def test_wrong_checkpoint_names_missing_and_unexpected(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError) as err:
        load_backbone_weights(build_model("yolov4s-r50", nc=4), path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert "missing layers.4.layers.0.conv3.weight" in msg and "unexpected" in msg
    with pytest.raises(ValueError, match="does not fit the yolov4-mbv2 backbone: missing layers.0.0.weight"):
        load_backbone_weights(build_model("yolov4-mbv2", nc=4), path)


def test_seed_blocks_refuse_public_weights(tmp_path):
    path = tmp_path / "x.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
    with pytest.raises(ValueError, match="yolov4-mbv3s: its backbone .* matches no public checkpoint"):
        load_backbone_weights(build_model("yolov4-mbv3s", nc=4), path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="junk.pth: not a readable PyTorch checkpoint"):
        load_backbone_weights(build_model("yolov4s-mbv2", nc=4), path)


def test_info_cli_loads_backbone_weights(tmp_path):
    path = tmp_path / "mbv2.pth"
    ref = torchvision.models.mobilenet_v2()
    torch.save(ref.state_dict(), path)
    result = CliRunner().invoke(cli, ["info", "--model", "yolov4s-mbv2", "--imgsz", "64", "--backbone-weights", str(path)])
    assert result.exit_code == 0, result.output
    n = len(ref.features.state_dict())  # every tensor but the classifier's
    assert f"loaded {n} tensors from {path} into the yolov4s-mbv2 backbone" in result.output
