"""NMS: a hand-built case, and the torch and numpy/OpenCV versions agreeing box for box."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgeyolo.ops.nms import non_max_suppression
from edgeyolo.ops.nms_numpy import _has_cv2_batched, non_max_suppression_numpy

BACKENDS = ["numpy"] + (["cv2"] if _has_cv2_batched() else [])


def _row(cx, cy, w, h, obj, *cls):
    return [cx, cy, w, h, obj, *cls]


def _hand_pred() -> np.ndarray:
    """One image, 2 classes:
    A: (0..20, 0..20) obj 0.9, cls (0.9, 0.1) -> conf 0.81 class 0
    B: A shifted by 2 px (IoU 0.82 with A)  obj 0.8, cls (0.9, 0.5) -> 0.72 class 0, 0.40 class 1
    C: (100..110, 100..110)                  obj 0.5, cls (0.2, 0.7) -> 0.35 class 1
    D: A shifted by 10 px (IoU 0.33 with A)  obj 0.6, cls (0.5, 0.1) -> 0.30 class 0
    E: low objectness                        obj 0.0005
    """
    return np.array([[
        _row(10, 10, 20, 20, 0.9, 0.9, 0.1),
        _row(12, 10, 20, 20, 0.8, 0.9, 0.5),
        _row(105, 105, 10, 10, 0.5, 0.2, 0.7),
        _row(20, 10, 20, 20, 0.6, 0.5, 0.1),
        _row(200, 200, 10, 10, 0.0005, 1.0, 1.0),
    ]], dtype=np.float32)


def _as_set(rows) -> list[tuple]:
    return [tuple(np.round(np.asarray(r, dtype=np.float64), 4)) for r in rows]


def test_hand_built_case():
    pred = torch.from_numpy(_hand_pred())
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.5)
    # multi-label: B's class-0 row is suppressed by A (IoU 0.82 > 0.5); B's class-1 row survives
    # (another class); D overlaps A by 0.33 < 0.5 and stays; C stays; E is below conf.
    assert _as_set(out) == _as_set([
        [0, 0, 20, 20, 0.81, 0],
        [2, 0, 22, 20, 0.40, 1],
        [100, 100, 110, 110, 0.35, 1],
        [10, 0, 30, 20, 0.30, 0],
    ])
    assert out.dtype == torch.float32 and out.shape == (4, 6)
    # best class only: B is class 0 (0.72) and is suppressed by A.
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.5, multi_label=False)
    assert _as_set(out) == _as_set([[0, 0, 20, 20, 0.81, 0], [100, 100, 110, 110, 0.35, 1], [10, 0, 30, 20, 0.30, 0]])
    # agnostic: B's class-1 row is suppressed by A too.
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.5, agnostic=True)
    assert _as_set(out) == _as_set([[0, 0, 20, 20, 0.81, 0], [100, 100, 110, 110, 0.35, 1], [10, 0, 30, 20, 0.30, 0]])
    # a looser IoU threshold keeps B's class-0 row; a tighter one drops D.
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.85)
    assert len(out) == 5 and (0.72, 0.0) in _as_set(out[:, 4:].numpy())
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.3)
    assert len(out) == 3 and (0.3, 0.0) not in _as_set(out[:, 4:].numpy())
    # class filter, max_det, conf_thres
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.5, classes=[1])
    assert (out[:, 5] == 1).all() and len(out) == 2
    (out,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.5, max_det=2)
    assert len(out) == 2 and out[0, 4] == pytest.approx(0.81)
    (out,) = non_max_suppression(pred, conf_thres=0.5, iou_thres=0.5)
    assert _as_set(out) == _as_set([[0, 0, 20, 20, 0.81, 0]])


def test_empty_and_batched():
    pred = torch.zeros(3, 10, 8)
    out = non_max_suppression(pred)
    assert len(out) == 3 and all(o.shape == (0, 6) for o in out)
    out = non_max_suppression_numpy(pred.numpy())
    assert len(out) == 3 and all(o.shape == (0, 6) for o in out)


@pytest.mark.parametrize("fn", [non_max_suppression, non_max_suppression_numpy])
def test_value_errors(fn):
    p = np.zeros((1, 4, 8), np.float32)
    p = torch.from_numpy(p) if fn is non_max_suppression else p
    with pytest.raises(ValueError, match=r"pred must have shape \(B, N, 5 \+ nc\) with nc >= 1, got \(4, 8\)"):
        fn(p[0])
    with pytest.raises(ValueError, match=r"conf_thres must be in \[0, 1\], got 1.5"):
        fn(p, conf_thres=1.5)
    with pytest.raises(ValueError, match=r"iou_thres must be in \[0, 1\], got -0.1"):
        fn(p, iou_thres=-0.1)
    with pytest.raises(ValueError, match="max_det must be >= 1, got 0"):
        fn(p, max_det=0)


def _random_pred(seed: int, b: int = 2, n: int = 800, nc: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.empty((b, n, 5 + nc), np.float32)
    # clustered centres so that many boxes overlap
    centres = rng.uniform(0, 320, (b, 20, 2))
    p[..., 0:2] = centres[np.arange(b)[:, None], rng.integers(0, 20, (b, n))] + rng.normal(0, 8, (b, n, 2))
    p[..., 2:4] = rng.uniform(8, 80, (b, n, 2))
    p[..., 4:] = rng.uniform(0, 1, (b, n, 1 + nc)) ** 2
    return p


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_torch_and_numpy_identical(backend, seed):
    pred = _random_pred(seed)
    for kw in ({}, {"multi_label": False}, {"agnostic": True}, {"classes": [0, 2], "iou_thres": 0.45},
               {"conf_thres": 0.25, "max_det": 50}):
        ref = non_max_suppression(torch.from_numpy(pred), **kw)
        out = non_max_suppression_numpy(pred, backend=backend, **kw)
        assert len(out) == len(ref)
        for r, o in zip(ref, out):
            assert o.dtype == np.float32 and len(r) > 0
            np.testing.assert_array_equal(o, r.numpy(), err_msg=f"{backend} {kw}")
    hand = _hand_pred()
    np.testing.assert_array_equal(non_max_suppression_numpy(hand, 0.25, 0.5, backend=backend)[0],
                                  non_max_suppression(torch.from_numpy(hand), 0.25, 0.5)[0].numpy())


def test_runtime_modules_do_not_import_torch():
    code = ("import sys; import edgeyolo.ops.nms_numpy, edgeyolo.ops.boxes, edgeyolo.ops.metrics, "
            "edgeyolo.ops.confusion, edgeyolo.ops.plots; "
            "bad = [m for m in ('torch', 'matplotlib', 'edgeyolo.train', 'edgeyolo.export', 'edgeyolo.bench') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_early_stop_keeps_the_same_first_boxes():
    """max_keep stops the greedy loop early; what it keeps is the head of the full result, and the
    large-candidate path of non_max_suppression_numpy (numpy loop) matches torchvision."""
    from edgeyolo.ops.nms_numpy import CV2_MAX_BOXES, nms_greedy
    rng = np.random.default_rng(0)
    xy = rng.random((3000, 2)) * 600
    boxes = np.concatenate((xy, xy + rng.random((3000, 2)) * 80 + 2), 1)
    scores = np.sort(rng.random(3000))[::-1].copy()
    full = nms_greedy(boxes, scores, 0.5)
    assert len(full) > 50
    np.testing.assert_array_equal(nms_greedy(boxes, scores, 0.5, max_keep=50), full[:50])
    pred = np.zeros((1, 3 * CV2_MAX_BOXES, 7), np.float32)
    n = pred.shape[1]
    pred[0, :, :2] = rng.random((n, 2)) * 600
    pred[0, :, 2:4] = rng.random((n, 2)) * 60 + 4
    pred[0, :, 4:] = rng.random((n, 3)) * 0.5 + 0.5
    ref = non_max_suppression(torch.from_numpy(pred), 0.001, 0.65, max_det=300)[0].numpy()
    got = non_max_suppression_numpy(pred, 0.001, 0.65, max_det=300)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("max_det", [1, 40, 300])
def test_head_first_nms_equals_full_nms(max_det):
    """The torch NMS runs on a growing head of the score-sorted candidates; what it keeps must be
    exactly torchvision's full batched_nms truncated to max_det, whether the head suffices at once
    (dense, overlapping boxes) or must grow (few survivors)."""
    from torchvision.ops import batched_nms
    g = torch.Generator().manual_seed(max_det)
    n = 6000
    for piled in (0, 4 * 300 + 500):  # scattered boxes; the best scored piled on one spot, then scattered
        xy = torch.rand(n, 2, generator=g) * 600
        xy[:piled] = 100 + torch.rand(piled, 2, generator=g)  # near-duplicates: all but ~one a class suppressed
        boxes = torch.cat((xy, xy + torch.rand(n, 2, generator=g) * 20 + 40), 1)
        scores = torch.linspace(1.0, 0.01, n)
        cls = torch.randint(0, 3, (n,), generator=g)
        pred = torch.cat((xywh_of(boxes), scores[:, None], torch.nn.functional.one_hot(cls, 3).float()), 1)[None]
        got = non_max_suppression(pred, 0.0001, 0.5, max_det=max_det)[0]
        keep = batched_nms(boxes, scores, cls, 0.5)[:max_det]
        torch.testing.assert_close(got[:, :4], boxes[keep], rtol=0, atol=1e-4)
        torch.testing.assert_close(got[:, 5], cls[keep].float())


def xywh_of(xyxy: torch.Tensor) -> torch.Tensor:
    return torch.cat(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]), 1)
