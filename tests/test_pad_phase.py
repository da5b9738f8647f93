"""The letterbox-phase study places the image where it says and counts degenerate boxes."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def test_placed_puts_the_image_at_top_and_centre():
    from edgeyolo.bench.studies.pad_phase import placed
    img = np.zeros((10, 6, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    x = placed(img, 32, top=4)
    assert x.shape == (1, 3, 32, 32)
    assert torch.all(x[0, 2, 4:14, 13:19] == 1) and torch.all(x[0, 0, 4:14, 13:19] == 0)  # RGB: blue is channel 2
    assert torch.allclose(x[0, :, 3, :], torch.full((3, 32), 114 / 255)) and torch.allclose(x[0, :, 14, :], torch.full((3, 32), 114 / 255))
    with pytest.raises(ValueError, match="does not fit a 32 px canvas"):
        placed(img, 32, top=23)


def test_answer_counts_boxes_and_degenerate_ones(tiny_model):
    from edgeyolo.bench.studies.pad_phase import answer
    from edgeyolo.models import build_model
    torch.manual_seed(0)
    model = build_model(tiny_model, nc=2).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)[0]
    score = out[:, 4] * out[:, 5:].max(1).values
    conf = float(score.median())
    res = answer(model, x, conf)
    kept = out[score > conf]
    assert res["boxes"] == len(kept) > 0
    assert res["degenerate"] == int(((kept[:, 2] < 2) | (kept[:, 3] < 2)).sum())
    assert res["backbone_peak"] > 0


def test_summary_counts_offsets_that_flood():
    from edgeyolo.bench.studies.pad_phase import _floods, _summary_row
    assert _floods([2, 2, 30, 2, 21]) == 2  # over 10x the median of 2
    assert _floods([0, 0, 0, 9, 11]) == 1  # a median of 0 counts as 1: floods start over 10 boxes
    res = [{"boxes": b, "degenerate": 0, "backbone_peak": p} for b, p in ((3, 15.5), (40, 91.6), (4, 15.0))]
    assert _summary_row("w.pt", res) == "| `w.pt` | 4 | 3 | 40 | 0 of 3 | 15.0 | 91.6 |"


@pytest.mark.parametrize("side, rows, cols", [("top", slice(0, 3), slice(None)), ("bottom", slice(13, 16), slice(None)),
                                              ("left", slice(None), slice(0, 3)), ("right", slice(None), slice(13, 16)),
                                              ("middle", slice(5, 8), slice(None))])
def test_grey_band_covers_only_its_side(side, rows, cols):
    from edgeyolo.bench.studies.grey_bands import banded
    x = torch.zeros(2, 3, 16, 16)
    out = banded(x, side, 3)
    expected = torch.zeros_like(x)
    expected[..., rows, cols] = 114 / 255
    assert torch.equal(out, expected) and torch.equal(x, torch.zeros_like(x))  # the input is left as it was
    with pytest.raises(ValueError, match="side must be one of top, middle"):
        banded(x, "centre", 3)
