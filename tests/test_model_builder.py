"""The YAML builder: Detect's decode by hand, tap channels, and errors on bad configs."""
from __future__ import annotations

import math

import pytest
import torch
import yaml

from edgeyolo.models import build_model, load_config
from edgeyolo.models.detect import Detect


def test_detect_decode_hand_computed():
    det = Detect(nc=1, anchors=[[10, 13]], ch=[4])
    det.stride.fill_(8.0)
    raw = torch.zeros(1, 1, 2, 3, 6)  # one anchor, 2x3 grid, logits 0 -> sigmoid 0.5
    raw[0, 0, 1, 2, 0:4] = torch.tensor([math.log(3.0), -math.log(3.0), 0.0, math.log(3.0)])  # sigmoid 0.75/0.25/0.5/0.75
    out = det.decode([raw])
    assert out.shape == (1, 6, 6)
    # cell (gy=0, gx=1): xy = (2*0.5 - 0.5 + (1, 0)) * 8 = (12, 4); wh = (2*0.5)^2 * (10, 13)
    assert torch.allclose(out[0, 1], torch.tensor([12.0, 4.0, 10.0, 13.0, 0.5, 0.5]))
    # cell (gy=1, gx=2): x = (1.5 - 0.5 + 2) * 8 = 24, y = (0.5 - 0.5 + 1) * 8 = 8, w = 10, h = (1.5)^2 * 13
    assert torch.allclose(out[0, 5], torch.tensor([24.0, 8.0, 10.0, 2.25 * 13, 0.5, 0.5]))


def test_detect_bias_priors():
    model = build_model("yolov4s-mbv3s", nc=4)
    for conv, s in zip(model.head.m, (8, 16, 32)):
        b = conv.bias.detach().view(3, 9)
        # bias = default init (|b| <= 1/sqrt(fan_in)) + prior; the prior dominates
        bound = 1 / math.sqrt(conv.in_channels)
        assert (b[:, 4] - math.log(8 / (640 / s) ** 2)).abs().max() <= bound + 1e-6
        assert (b[:, 5:] - math.log(0.6 / (4 - 0.99))).abs().max() <= bound + 1e-6


def _tiny_cfg(**over):
    cfg = {
        "nc": 2, "anchors": [[10, 13, 16, 30], [30, 61, 62, 45], [116, 90, 156, 198]],
        "backbone": {"taps": {"P3": 3, "P4": 4, "P5": 5}, "layers": [
            [-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [24, 3, 2]],
            [-1, 1, "Conv", [40, 1, 1]],  # 3: tap P3 has 40 channels, the row before it 24
            [-1, 1, "Conv", [48, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]]},
        "head": [[["P3", "P3"], 1, "Concat", [1]],  # 0: 80 channels
                 [-1, 1, "Conv", [32, 1, 1]],  # 1: P3 out
                 [0, 1, "Conv", [16, 3, 2]],  # 2: reads row 0 by absolute index
                 ["P5", 1, "nn.Upsample", [None, 2, "nearest"]],  # 3: 64 channels at /16
                 [[2, "P4", -1], 1, "Concat", [1]],  # 4: 16 + 48 + 64, P4 out
                 [-1, 1, "Conv", [32, 3, 2]],  # 5: P5 out
                 [[1, 4, 5], 1, "Detect", ["nc", "anchors"]]],
    }
    cfg.update(over)
    return cfg


def test_absolute_taps_read_the_tapped_rows_channels():
    """u5 reads the channels of the row *before* an absolute index; here that would be 24, not 40."""
    model = build_model(_tiny_cfg())
    assert [f.channels for f in model.feature_info] == [40, 48, 64]
    assert model.neck.layers[1].conv.in_channels == 80  # Concat of the P3 tap twice
    assert model.neck.layers[2].conv.in_channels == 80  # row 0 read by absolute index
    assert [m.in_channels for m in model.head.m] == [32, 16 + 48 + 64, 32]
    out = model.eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 2 * (64 + 16 + 4), 7)


def test_yaml_file_and_zoo_name(tmp_path):
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(_tiny_cfg()))
    assert load_config(path)["name"] == "custom"
    assert build_model(path).nc == 2
    assert load_config("yolov4-mbv3s")["head"][0][2] == "SPPCSP"  # shared head file merged in


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["backbone"]["layers"].__setitem__(0, [-1, 1, "Nope", [8]]), "unknown module 'Nope'"),
    (lambda c: c["head"].__setitem__(0, [["P7"], 1, "Concat", [1]]), "unknown source 'P7'"),
    (lambda c: c["head"].__setitem__(2, [5, 1, "Conv", [16, 3, 2]]), "from 5 is not an earlier row"),
    (lambda c: c["head"].pop(), "last row must be Detect"),
    (lambda c: c["backbone"]["taps"].__setitem__("P5", 9), "tap P5 = row 9 is outside"),
    (lambda c: c["head"].__setitem__(1, [-1, 1, "Conv"]), "expected [from, number, module, args]"),
    (lambda c: c.__setitem__("nc", 0), "nc must be >= 1"),
])
def test_bad_config_errors(mutate, message):
    cfg = _tiny_cfg()
    mutate(cfg)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_model(cfg)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="yolov4-nope: not a model name"):
        build_model("yolov4-nope")
