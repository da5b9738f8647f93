"""edgeyolo.ops.boxes: conversions, letterbox un-mapping, clipping, IoU."""
import numpy as np
import pytest
import torch
import torchvision

from edgeyolo.data.letterbox import letterbox
from edgeyolo.ops.boxes import box_iou, clip_boxes, clip_to_content, scale_boxes, xywh2xyxy, xywhn2xyxy, xyxy2xywh


def _rand_xywh(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 640, (n, 2)), rng.uniform(1, 200, (n, 2))]).astype(np.float32)


def test_xywh_xyxy_known_values():
    b = np.array([[50.0, 40.0, 20.0, 10.0]])
    np.testing.assert_array_equal(xywh2xyxy(b), [[40.0, 35.0, 60.0, 45.0]])
    np.testing.assert_array_equal(xyxy2xywh(np.array([[40.0, 35.0, 60.0, 45.0]])), b)
    t = xywh2xyxy(torch.tensor(b))
    assert isinstance(t, torch.Tensor)
    torch.testing.assert_close(t, torch.tensor([[40.0, 35.0, 60.0, 45.0]], dtype=torch.float64))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_round_trips(kind):
    x = _rand_xywh(100)
    if kind == "torch":
        x = torch.from_numpy(x)
    y = xyxy2xywh(xywh2xyxy(x))
    assert type(y) is type(x) and y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-4)
    # leading batch dimensions are kept
    xb = x.reshape(4, 25, 4)
    np.testing.assert_allclose(np.asarray(xywh2xyxy(xb)).reshape(100, 4), np.asarray(xywh2xyxy(x)))


def test_numpy_and_torch_agree_and_inputs_untouched():
    x = _rand_xywh(50, seed=1)
    x0 = x.copy()
    t = torch.from_numpy(x.copy())
    np.testing.assert_allclose(xywh2xyxy(x), xywh2xyxy(t).numpy(), atol=1e-5)
    np.testing.assert_allclose(xywhn2xyxy(x / 640, 320, 240, 3, 4), xywhn2xyxy(t / 640, 320, 240, 3, 4).numpy(), atol=1e-4)
    np.testing.assert_allclose(clip_boxes(x, (300, 200)), clip_boxes(t, (300, 200)).numpy())
    np.testing.assert_array_equal(x, x0)  # no function writes into its input


def test_xywhn2xyxy_with_padding():
    b = np.array([[0.5, 0.5, 0.5, 0.25]])  # centred box half the width, quarter the height
    out = xywhn2xyxy(b, w=400, h=200, padw=10, padh=20)
    np.testing.assert_allclose(out, [[110.0, 95.0, 310.0, 145.0]])


def test_scale_boxes_hand_computed_letterbox():
    # A 200x400 (h, w) image letterboxed to 320x320: gain 0.8, resized to 320x160, 80 px padding
    # above and below. The original box (100, 50, 300, 150) sits at (80, 120, 240, 200).
    img0 = np.zeros((200, 400, 3), np.uint8)
    img1, r, (pw, ph) = letterbox(img0, 320)
    assert img1.shape[:2] == (320, 320) and r == pytest.approx(0.8) and (pw, ph) == (0.0, 80.0)
    boxes = np.array([[80.0, 120.0, 240.0, 200.0]])
    expected = [[100.0, 50.0, 300.0, 150.0]]
    np.testing.assert_allclose(scale_boxes((320, 320), boxes, (200, 400)), expected)
    np.testing.assert_allclose(scale_boxes((320, 320), boxes, (200, 400), ratio_pad=((r, r), (pw, ph))), expected)
    tb = scale_boxes((320, 320), torch.tensor(boxes), (200, 400))
    assert isinstance(tb, torch.Tensor)
    np.testing.assert_allclose(tb.numpy(), expected)
    # Parts in the padding are clipped to the original image.
    out = scale_boxes((320, 320), np.array([[-10.0, 70.0, 330.0, 250.0]]), (200, 400))
    np.testing.assert_allclose(out, [[0.0, 0.0, 400.0, 200.0]])


def test_clip_boxes():
    b = torch.tensor([[-5.0, -5.0, 50.0, 700.0], [10.0, 20.0, 30.0, 40.0]])
    torch.testing.assert_close(clip_boxes(b, (480, 40)), torch.tensor([[0.0, 0.0, 40.0, 480.0], [10.0, 20.0, 30.0, 40.0]]))


def test_box_iou_numpy_matches_torchvision():
    a = xywh2xyxy(_rand_xywh(30, 2)).astype(np.float64)
    b = xywh2xyxy(_rand_xywh(20, 3)).astype(np.float64)
    ref = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(box_iou(a, b), ref, atol=1e-12)
    np.testing.assert_allclose(box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(), ref)
    assert box_iou(np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 15, 10]]))[0, 0] == pytest.approx(1 / 3)
    assert box_iou(np.array([[0.0, 0, 10, 10]]), np.array([[20.0, 20, 30, 30]]))[0, 0] == 0.0
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 20)


def test_value_errors():
    with pytest.raises(ValueError, match=r"boxes must have shape \(\.\.\., 4\), got \(3, 5\)"):
        xywh2xyxy(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        xyxy2xywh(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="image size must be positive, got w=0, h=10"):
        xywhn2xyxy(np.zeros((1, 4)), 0, 10)
    with pytest.raises(ValueError, match=r"shape must be \(h, w\) with positive sides, got \(0, 10\)"):
        clip_boxes(np.zeros((1, 4)), (0, 10))
    with pytest.raises(ValueError, match=r"img0_shape must be \(h, w\) with positive sides"):
        scale_boxes((320, 320), np.zeros((1, 4)), (-1, 10))
    with pytest.raises(ValueError, match=r"ratio_pad gains must be > 0, got \(0, 0\)"):
        scale_boxes((320, 320), np.zeros((1, 4)), (10, 10), ratio_pad=((0, 0), (0, 0)))
    with pytest.raises(ValueError, match=r"box_iou takes \(N, 4\) and \(M, 4\)"):
        box_iou(np.zeros((2, 2, 4)), np.zeros((2, 4)))


def test_clip_to_content_is_the_clip_of_scale_boxes():
    # 200x400 (h, w) into 320x320: gain 0.8, content x 0..320, y 80..240
    out = clip_to_content(np.array([[-10.0, 70.0, 330.0, 250.0], [10.0, 100.0, 50.0, 120.0]]), (320, 320), (200, 400))
    np.testing.assert_allclose(out, [[0.0, 80.0, 320.0, 240.0], [10.0, 100.0, 50.0, 120.0]])
    rng = np.random.default_rng(0)
    xy = rng.uniform(-60, 380, (500, 2, 2))
    boxes = np.concatenate([xy.min(1), xy.max(1)], 1)
    ratio_pad = ((0.8, 0.7995), (0.5, 80.0))  # per-axis gains, as the loader records them
    np.testing.assert_allclose(scale_boxes((320, 320), clip_to_content(boxes, (320, 320), (200, 400), ratio_pad),
                                           (200, 400), ratio_pad),
                               scale_boxes((320, 320), boxes, (200, 400), ratio_pad), atol=1e-9)
    assert isinstance(clip_to_content(torch.tensor(boxes), (320, 320), (200, 400)), torch.Tensor)


def test_dataset_labels_map_back_exactly_on_a_coco_shaped_image(tmp_path):
    """A 427x640 image at 320: the loader's x and y gains differ by the rounding of the resized
    height; mapping a label back with one gain for both axes moved x by ~1.5 px."""
    import cv2
    from edgeyolo.data import DetectionDataset

    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "images" / split / "a.png"), np.full((427, 640, 3), 90, np.uint8))
        box = np.array([10.0, 40.0, 630.0, 400.0])  # x1 y1 x2 y2 in the original pixels
        cx, cy, w, h = xyxy2xywh(box) / np.array([640, 427, 640, 427])
        (tmp_path / "labels" / split / "a.txt").write_text(f"0 {cx} {cy} {w} {h}\n")
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [car]\n")
    ds = DetectionDataset(tmp_path / "data.yaml", "val", 320, augment=False)
    img, labels, _, shapes = ds[0]
    (rh, rw), _ = shapes[1]
    assert rh != rw
    hh, ww = img.shape[1:]
    lb = xywh2xyxy(labels[:, 2:].numpy() * np.array([ww, hh, ww, hh]))
    np.testing.assert_allclose(scale_boxes((hh, ww), lb, shapes[0], shapes[1])[0], box, atol=1e-3)
