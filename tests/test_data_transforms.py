"""Boxes stay on their objects through every transform: a white rectangle on black, labelled
exactly, must still fill its label box (+-1 px) after letterbox, rect batching, random affine,
mosaic, flips, HSV jitter and letterbox bands."""
from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgeyolo.data import DetectionDataset
from edgeyolo.data.augment import PAD_VALUE, letterbox_bands
from edgeyolo.data.letterbox import letterbox

# (h, w, boxes x1 y1 x2 y2 in pixels); boxes keep >= 12 px from the image edges and each other
IMAGES = [
    (100, 200, [(20, 30, 70, 80), (120, 14, 180, 40)]),
    (160, 120, [(15, 20, 100, 60), (40, 90, 70, 140)]),
    (128, 128, [(30, 30, 98, 98)]),
]
NO_COLOR = {"hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "fliplr": 0.0, "flipud": 0.0}


@pytest.fixture(scope="module")
def data_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("boxes")
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i, (h, w, boxes) in enumerate(IMAGES):
            img = np.zeros((h, w, 3), np.uint8)
            rows = []
            for x1, y1, x2, y2 in boxes:
                img[y1:y2, x1:x2] = 255
                rows.append(f"0 {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}\n")
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), img)  # PNG: no compression blur
            (root / "labels" / split / f"{i}.txt").write_text("".join(rows))
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [box]\n")
    return root / "data.yaml"


def _xyxy(labels: torch.Tensor, h: int, w: int) -> np.ndarray:
    """(n, 6) [_, cls, cx, cy, w, h] normalised -> (n, 4) pixel x1 y1 x2 y2."""
    _, _, cx, cy, bw, bh = labels.numpy().T
    return np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)


def _assert_boxes_on_white(img: torch.Tensor, labels: torch.Tensor) -> None:
    """Each label box equals, within a pixel, the extent of the white pixels around it."""
    white = img.numpy().min(0) > 127  # grey padding (114) and black are not white
    h, w = white.shape
    assert len(labels), "no box survived"
    for x1, y1, x2, y2 in _xyxy(labels, h, w):
        wx1, wy1 = max(0, int(x1) - 3), max(0, int(y1) - 3)
        ys, xs = np.nonzero(white[wy1:int(y2) + 4, wx1:int(x2) + 4])
        assert len(xs), f"no white pixels at box {x1, y1, x2, y2}"
        got = np.array([xs.min() + wx1, ys.min() + wy1, xs.max() + 1 + wx1, ys.max() + 1 + wy1])
        np.testing.assert_allclose(got, [x1, y1, x2, y2], atol=1.0)


def test_letterbox_function() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    out, r, (pw, ph) = letterbox(img, 128)
    assert out.shape == (128, 128, 3) and r == 0.64 and (pw, ph) == (0, 32)
    out, r, (pw, ph) = letterbox(img, (96, 160), auto=True, stride=32)
    assert out.shape == (96, 160, 3) and (pw, ph) == (0, 8)  # 160x80 + the minimum padding to 96
    out, r, _ = letterbox(np.zeros((50, 60, 3), np.uint8), 128, scaleup=False)
    assert r == 1.0 and out.shape == (128, 128, 3)


def test_letterbox_square_and_shapes_map_back(data_yaml: Path) -> None:
    ds = DetectionDataset(data_yaml, "val", 128, augment=False)
    for i in range(len(ds)):
        img, labels, path, shapes = ds[i]
        assert img.shape == (3, 128, 128) and img.dtype == torch.uint8 and labels.dtype == torch.float32
        _assert_boxes_on_white(img, labels)
        (h0, w0), ((rh, rw), (pw, ph)) = shapes
        orig = _xyxy(labels, 128, 128) - [pw, ph, pw, ph]
        orig /= [rw, rh, rw, rh]
        h, w, boxes = IMAGES[int(Path(path).stem)]
        assert (h0, w0) == (h, w)
        np.testing.assert_allclose(orig, np.array(boxes, float), atol=1.0)


def test_rect_batches(data_yaml: Path) -> None:
    ds = DetectionDataset(data_yaml, "val", 128, augment=False, rect=True, batch_size=2)
    assert [Path(f).stem for f in ds.im_files] == ["0", "2", "1"]  # sorted by h / w
    # wide + square -> square; the tall one alone -> tall; each side ceil(side / 32 + 0.5) * 32
    assert ds.batch_shapes.tolist() == [[160, 160], [160, 128]]
    ratios = {"0": 0.64, "2": 1.0, "1": 0.8}  # long side resized to 128
    for i in range(len(ds)):
        img, labels, path, shapes = ds[i]
        assert list(img.shape[1:]) == ds.batch_shapes[ds.batch_index[i]].tolist()
        _assert_boxes_on_white(img, labels)
        assert shapes[1][0] == pytest.approx((ratios[Path(path).stem],) * 2, abs=0.01)
    ds = DetectionDataset(data_yaml, "val", 128, augment=False, rect=True, batch_size=1, pad=0.0)
    assert ds.batch_shapes.tolist() == [[64, 128], [128, 128], [128, 96]]  # tight with pad 0
    _assert_boxes_on_white(*ds[0][:2])


@pytest.mark.parametrize("seed", range(6))
def test_random_affine(data_yaml: Path, seed: int) -> None:
    hyp = {**NO_COLOR, "mosaic": 0.0, "scale": 0.5, "translate": 0.2}
    ds = DetectionDataset(data_yaml, "train", 128, augment=True, hyp=hyp)
    random.seed(seed)
    np.random.seed(seed)
    img, labels, _, _ = ds[seed % len(ds)]
    _assert_boxes_on_white(img, labels)


@pytest.mark.parametrize("seed", range(8))
def test_mosaic(data_yaml: Path, seed: int) -> None:
    ds = DetectionDataset(data_yaml, "train", 128, augment=True, hyp={**NO_COLOR, "mosaic": 1.0})
    random.seed(seed)
    np.random.seed(seed)
    img, labels, _, shapes = ds[seed % len(ds)]
    assert img.shape == (3, 128, 128) and shapes is None
    _assert_boxes_on_white(img, labels)


@pytest.mark.parametrize("flip", ["fliplr", "flipud"])
def test_flips(data_yaml: Path, flip: str) -> None:
    hyp = {**NO_COLOR, "mosaic": 0.0, "scale": 0.0, "translate": 0.0, flip: 1.0}
    plain = DetectionDataset(data_yaml, "train", 128, augment=True, hyp={**hyp, flip: 0.0})
    flipped = DetectionDataset(data_yaml, "train", 128, augment=True, hyp=hyp)
    img0, lb0, _, _ = plain[0]
    img1, lb1, _, _ = flipped[0]
    axis = 2 if flip == "fliplr" else 1
    assert torch.equal(img1, img0.flip(axis))
    col = 2 if flip == "fliplr" else 3
    np.testing.assert_allclose(lb1[:, col], 1 - lb0[:, col], atol=1e-6)
    _assert_boxes_on_white(img1, lb1)


def test_hsv_changes_colours_not_boxes(data_yaml: Path) -> None:
    base = {"mosaic": 1.0, "fliplr": 0.0}
    out = []
    for hyp in ({**base, "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0}, {**base, "hsv_h": 0.5, "hsv_s": 0.9, "hsv_v": 0.9}):
        ds = DetectionDataset(data_yaml, "train", 128, augment=True, hyp=hyp)
        random.seed(1)
        np.random.seed(1)
        out.append(ds[0])
    assert torch.equal(out[0][1], out[1][1]) and not torch.equal(out[0][0], out[1][0])


def test_mixup_keeps_both_label_sets(data_yaml: Path) -> None:
    ds = DetectionDataset(data_yaml, "train", 128, augment=True, hyp={**NO_COLOR, "mixup": 1.0})
    plain = DetectionDataset(data_yaml, "train", 128, augment=True, hyp=NO_COLOR)
    random.seed(2)
    np.random.seed(2)
    _, lb_mix, _, _ = ds[0]
    random.seed(2)
    np.random.seed(2)
    _, lb_one, _, _ = plain[0]
    assert len(lb_mix) > len(lb_one) and torch.equal(lb_mix[: len(lb_one)], lb_one)


def _window(img: np.ndarray) -> tuple[int, int, int, int]:
    """(H, W, C) image -> x1, y1, x2, y2 of the region that is not exact letterbox grey."""
    content = ~(img == PAD_VALUE).all(2)
    ys, xs = np.nonzero(content)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("seed", range(8))
def test_letterbox_bands_are_exact_grey_and_centred(data_yaml: Path, seed: int) -> None:
    # strong colour jitter: the bands come after it, so they stay exactly the grey letterbox pads with
    hyp = {"hsv_h": 0.5, "hsv_s": 0.9, "hsv_v": 0.9, "fliplr": 0.0, "mosaic": 1.0, "letterbox_bands": 1.0}
    ds = DetectionDataset(data_yaml, "train", 128, augment=True, hyp=hyp)
    random.seed(seed)
    np.random.seed(seed)
    img, labels, _, _ = ds[seed % len(ds)]
    hwc = img.numpy().transpose(1, 2, 0)
    x1, y1, x2, y2 = _window(hwc)
    assert (x2 - x1 < 128) or (y2 - y1 < 128), "no band painted"
    # centred as letterbox() centres: the two bands of an axis differ by at most a pixel
    assert abs(x1 - (128 - x2)) <= 1 and abs(y1 - (128 - y2)) <= 1
    if len(labels):
        xyxy = _xyxy(labels, 128, 128)
        assert (xyxy[:, [0, 2]] >= x1 - 0.5).all() and (xyxy[:, [0, 2]] <= x2 + 0.5).all()
        assert (xyxy[:, [1, 3]] >= y1 - 0.5).all() and (xyxy[:, [1, 3]] <= y2 + 0.5).all()


def test_letterbox_bands_clip_and_drop_boxes() -> None:
    img = np.full((100, 200, 3), 7, np.uint8)
    # a box across the left edge of the window, one inside it, one at the far left
    labels = np.array([[0, 30, 10, 90, 50], [0, 80, 20, 120, 80], [0, 0, 0, 10, 100]], np.float32)
    random.seed(0)
    while True:  # draw until the columns alone are banded, keeping at least 60 % of them
        state = random.getstate()
        r = random.random()
        if 0.4 <= r < 0.8 and random.uniform(0.5, 1.0) <= 0.7:
            break
    random.setstate(state)
    out, kept = letterbox_bands(img, labels)
    x1, y1, x2, y2 = _window(out)
    assert (y1, y2) == (0, 100) and 30 < x1 < 80
    assert (out[:, x1:x2] == 7).all() and (out[:, :x1] == PAD_VALUE).all() and (out[:, x2:] == PAD_VALUE).all()
    np.testing.assert_array_equal(kept, [[0, x1, 10, 90, 50], [0, 80, 20, 120, 80]])
    with pytest.raises(ValueError, match=r"min_fill must lie in \(0, 1\], got 0"):
        letterbox_bands(img, labels, min_fill=0.0)
