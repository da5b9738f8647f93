"""YOLOLoss: target assignment by hand, CIoU against YOLOv5's formula, a perfect prediction,
a real model, a tiny model that learns; the hyperparameter loader."""
import math

import pytest
import torch
from torch import nn

from edgeyolo.models.detect import Detect
from edgeyolo.train.hyp import load_hyp
from edgeyolo.train.loss import YOLOLoss, ciou, flat_cells, gather_cells, last_writes

ANCHORS = [[12, 16, 19, 36, 40, 28], [36, 75, 76, 55, 72, 146], [142, 110, 192, 243, 459, 401]]  # pixels
STRIDES = (8.0, 16.0, 32.0)


class Tiny(nn.Module):
    """Three stride-2 convs to P3, one more each to P4 and P5, and a Detect head."""

    def __init__(self, nc: int = 2):
        super().__init__()

        def conv(c1, c2):
            return nn.Sequential(nn.Conv2d(c1, c2, 3, 2, 1), nn.BatchNorm2d(c2), nn.SiLU())

        self.p3 = nn.Sequential(conv(3, 8), conv(8, 16), conv(16, 16))
        self.p4, self.p5 = conv(16, 16), conv(16, 16)
        self.head = Detect(nc, ANCHORS, [16, 16, 16])
        self.head.stride.copy_(torch.tensor(STRIDES))

    def forward(self, x):
        p3 = self.p3(x)
        p4 = self.p4(p3)
        return self.head([p3, p4, self.p5(p4)])


def _raw(b: int = 1, imgsz: int = 256, nc: int = 2) -> list[torch.Tensor]:
    return [torch.zeros(b, 3, imgsz // int(s), imgsz // int(s), 5 + nc) for s in STRIDES]


def _target(cx, cy, w, h, img=0, cls=1, imgsz=256) -> list[float]:
    return [img, cls, cx / imgsz, cy / imgsz, w / imgsz, h / imgsz]


@pytest.fixture(scope="module")
def hyp():
    return load_hyp()


def test_assignment_counts_by_hand(hyp):
    loss = YOLOLoss(Tiny(), hyp, imgsz=256)
    # A 32x32 px box: wh ratios within 4 for all 3 P3 anchors, P4 anchors 0 and 1 (72x146: 146/32 = 4.6
    # fails), no P5 anchor (142/32 = 4.4). Centre (101, 61): P3 grid (12.625, 7.625), both fractions
    # > 0.5 -> right and down neighbours: 3 cells. P4 (6.3125, 3.8125): left and down: 3 cells.
    tg = loss.build_targets(_raw(), torch.tensor([_target(101, 61, 32, 32)]))
    assert [len(t.b) for t in tg] == [3 * 3, 3 * 2, 0]
    cells = {(int(i), int(j)) for i, j in zip(tg[0].gi, tg[0].gj)}
    assert cells == {(12, 7), (13, 7), (12, 8)}
    assert {(int(i), int(j)) for i, j in zip(tg[1].gi, tg[1].gj)} == {(6, 3), (5, 3), (6, 4)}
    assert sorted(tg[1].a.tolist()) == [0, 0, 0, 1, 1, 1]
    assert ((tg[0].tbox[:, :2] >= -0.5) & (tg[0].tbox[:, :2] <= 1.5)).all()
    torch.testing.assert_close(tg[0].tbox[:, 2:], torch.full((9, 2), 4.0))  # 32 px / stride 8
    torch.testing.assert_close(tg[0].anchors, torch.tensor(ANCHORS[0]).view(3, 2).repeat(3, 1) / 8)
    assert (tg[0].tcls == 1).all() and (tg[0].b == 0).all()

    # On a cell edge: x exactly at a half cell (P3 gx = 12.5) -> no x neighbour: 2 cells per anchor.
    tg = loss.build_targets(_raw(), torch.tensor([_target(100, 61, 32, 32)]))
    assert [len(t.b) for t in tg] == [3 * 2, 3 * 2, 0]
    # At the image corner (P3 grid (0.375, 0.375)): no neighbour beyond the border: 1 cell per anchor.
    tg = loss.build_targets(_raw(), torch.tensor([_target(3, 3, 32, 32)]))
    assert [len(t.b) for t in tg] == [3, 2, 0]
    # Too small for every anchor (12/2 = 6 > 4): nothing.
    tg = loss.build_targets(_raw(), torch.tensor([_target(101, 61, 2, 2)]))
    assert [len(t.b) for t in tg] == [0, 0, 0]
    # A 200x200 box: no P3 anchor (200/40 = 5), P4 anchors 1 and 2 (200/55 = 3.6, 200/72 = 2.8; not
    # 200/36 = 5.6), all 3 P5 anchors (459/200 = 2.3). P4 cells as above; P5 grid (3.156, 1.906): left, down.
    tg = loss.build_targets(_raw(b=2), torch.tensor([_target(101, 61, 200, 200, img=1)]))
    assert [len(t.b) for t in tg] == [0, 2 * 3, 3 * 3] and (tg[2].b == 1).all()
    assert sorted(tg[1].a.tolist()) == [1, 1, 1, 2, 2, 2]
    assert {(int(i), int(j)) for i, j in zip(tg[2].gi, tg[2].gj)} == {(3, 1), (2, 1), (3, 2)}
    # Several targets add up; none at all is fine.
    both = torch.tensor([_target(101, 61, 32, 32), _target(100, 61, 32, 32)])
    assert [len(t.b) for t in loss.build_targets(_raw(), both)] == [15, 12, 0]
    assert [len(t.b) for t in loss.build_targets(_raw(), torch.zeros(0, 6))] == [0, 0, 0]


def _bbox_ciou_yolov5(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """YOLOv5 utils/metrics.py bbox_iou(xywh=True, CIoU=True), elementwise."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.chunk(4, -1), box2.chunk(4, -1)
    b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = (torch.min(b1_x2, b2_x2) - torch.max(b1_x1, b2_x1)).clamp(0) * \
            (torch.min(b1_y2, b2_y2) - torch.max(b1_y1, b2_y1)).clamp(0)
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    cw = torch.max(b1_x2, b2_x2) - torch.min(b1_x1, b2_x1)
    ch = torch.max(b1_y2, b2_y2) - torch.min(b1_y1, b2_y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return (iou - (rho2 / c2 + v * alpha)).squeeze(-1)


def test_ciou_matches_yolov5_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.cat([torch.rand(500, 2, generator=g) * 3, torch.rand(500, 2, generator=g) * 4 + 0.05], 1)
    b = torch.cat([torch.rand(500, 2, generator=g) * 3, torch.rand(500, 2, generator=g) * 4 + 0.05], 1)
    a1, a2 = a.clone().requires_grad_(), a.clone().requires_grad_()
    x, y = ciou(a1, b), _bbox_ciou_yolov5(a2, b)
    torch.testing.assert_close(x, y, atol=1e-6, rtol=0)
    x.sum().backward()
    y.sum().backward()
    torch.testing.assert_close(a1.grad, a2.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(ciou(b, b), torch.ones(500), atol=1e-4, rtol=0)  # eps in the union


def test_ciou_gradient_finite_for_collapsed_boxes():
    """A predicted height that collapses next to a large centre coordinate (x2 - x1 rounds to 0)
    must not give NaN gradients (torchvision's xyxy CIoU divides by that height without eps)."""
    pred = torch.tensor([[50.0, 60.0, 3.0, 1e-9], [10.0, 10.0, 1e-12, 1e-12]], requires_grad=True)
    target = torch.tensor([[50.5, 60.5, 3.0, 2.0], [10.0, 10.0, 2.0, 2.0]])
    (1 - ciou(pred, target)).sum().backward()
    assert torch.isfinite(pred.grad).all()


def _logit(s: torch.Tensor) -> torch.Tensor:
    s = s.clamp(1e-6, 1 - 1e-6)
    return torch.log(s / (1 - s))


def test_perfect_prediction_gives_zero_box_loss(hyp):
    model = Tiny()
    loss = YOLOLoss(model, hyp, imgsz=256)
    cx, cy, w, h = 101.0, 61.0, 40.0, 30.0
    targets = torch.tensor([_target(cx, cy, w, h)])
    raw = _raw()
    for i, p in enumerate(raw):  # invert Detect.decode at every cell and anchor
        s, ny, nx = STRIDES[i], p.shape[2], p.shape[3]
        gy, gx = torch.meshgrid(torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32), indexing="ij")
        anchors = torch.tensor(ANCHORS[i], dtype=torch.float32).view(3, 1, 1, 2)
        p[..., 0] = _logit((cx / s - gx + 0.5) / 2)
        p[..., 1] = _logit((cy / s - gy + 0.5) / 2)
        p[..., 2:4] = _logit(torch.sqrt(torch.tensor([w, h]) / anchors) / 2)
    tg = loss.build_targets(raw, targets)
    assert sum(len(t.b) for t in tg) > 0
    dec = model.head.decode(raw)  # (1, N, 7): every assigned cell decodes to the target box
    for i, t in enumerate(tg):
        off = sum(3 * r.shape[2] * r.shape[3] for r in raw[:i])
        flat = off + (t.a * raw[i].shape[2] + t.gj) * raw[i].shape[3] + t.gi
        torch.testing.assert_close(dec[0, flat, :4], torch.tensor([[cx, cy, w, h]]).expand(len(flat), 4), atol=1e-3, rtol=0)
    _, items = loss(raw, targets)
    assert items[0] < 1e-5
    _, items_bad = loss(_raw(), targets)  # all-zero logits: boxes of the anchors' size at cell centres
    assert items_bad[0] > 100 * items[0] + 1e-3


def test_real_model_finite_and_backprops(hyp):
    from edgeyolo.models import build_model

    torch.manual_seed(0)
    model = build_model("yolov4s-mbv3s", nc=4).train()
    loss = YOLOLoss(model, hyp, imgsz=96)
    assert loss.box_gain == pytest.approx(0.1)
    assert loss.cls_gain == pytest.approx(0.5 * 4 / 80)
    assert loss.obj_gain == pytest.approx((96 / 640) ** 2)
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.4], [1, 3, 0.2, 0.7, 0.1, 0.15], [1, 0, 0.6, 0.4, 0.5, 0.6]])
    raw = model(torch.rand(2, 3, 96, 96))
    total, items = loss(raw, targets)
    assert total.ndim == 0 and torch.isfinite(total) and total > 0
    assert items.shape == (3,) and not items.requires_grad and (items > 0).all()
    torch.testing.assert_close(total.detach(), items.sum() * 2)  # sum of parts times the batch size
    total.backward()
    for name, p in (("head", model.head.m[0].weight), ("backbone", next(model.backbone.parameters()))):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name

    class Wrapper(nn.Module):  # what DistributedDataParallel looks like from outside
        def __init__(self, m):
            super().__init__()
            self.module = m

    with torch.no_grad():
        torch.testing.assert_close(YOLOLoss(Wrapper(model), hyp, imgsz=96)(raw, targets)[1], items)


def test_loss_options_and_errors(hyp):
    model = Tiny(nc=1)
    targets = torch.tensor([_target(101, 61, 32, 32, cls=0)])
    raw = [r.normal_() for r in _raw(nc=1)]
    _, items = YOLOLoss(model, hyp, imgsz=256)(raw, targets)
    assert items[2] == 0  # one class: no class loss
    raw2 = [r.normal_() for r in _raw(nc=2)]
    t2 = torch.tensor([_target(101, 61, 32, 32)])
    base = YOLOLoss(Tiny(nc=2), hyp, imgsz=256)(raw2, t2)[1]
    smooth = YOLOLoss(Tiny(nc=2), {**hyp, "label_smoothing": 0.1}, imgsz=256)(raw2, t2)[1]
    focal = YOLOLoss(Tiny(nc=2), {**hyp, "fl_gamma": 1.5}, imgsz=256)(raw2, t2)[1]
    assert smooth[2] != base[2] and focal[1] < base[1] and torch.isfinite(focal).all()
    with pytest.raises(ValueError, match=r"targets must have shape \(N, 6\)"):
        YOLOLoss(model, hyp)(raw, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="has no Detect head"):
        YOLOLoss(nn.Linear(2, 2), hyp)
    with pytest.raises(ValueError, match="hyp is missing box"):
        YOLOLoss(model, {k: v for k, v in hyp.items() if k != "box"})


def _crowd(b: int, per_image: int, imgsz: int, seed: int = 0) -> torch.Tensor:
    """(b * per_image, 6) targets of 16-48 px boxes, two classes, spread over each image."""
    g = torch.Generator().manual_seed(seed)
    n = b * per_image
    wh = (16 + 32 * torch.rand(n, 2, generator=g)) / imgsz
    xy = wh / 2 + (1 - wh) * torch.rand(n, 2, generator=g)
    cls = torch.randint(0, 2, (n, 1), generator=g).float()
    return torch.cat([torch.arange(b).repeat_interleave(per_image)[:, None].float(), cls, xy, wh], 1)


def test_loss_gradient_repeats_bit_for_bit_on_two_threads(hyp):
    # A crowded batch: 11,520 assignments on P3 (n * (5 + nc) = 80,640 gathered values),
    # where a gradient added with parallel atomic adds came out different on most repeats.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        loss = YOLOLoss(Tiny(nc=2), hyp, imgsz=256)
        targets = _crowd(16, 80, 256)
        g = torch.Generator().manual_seed(1)
        base = [torch.randn(r.shape, generator=g) for r in _raw(b=16, nc=2)]
        assert len(loss.build_targets(base, targets)[0].b) * 7 > 32768

        def gradients() -> list[torch.Tensor]:
            raw = [r.clone().requires_grad_(True) for r in base]
            loss(raw, targets)[0].backward()
            return [r.grad for r in raw]

        first = gradients()
        for _ in range(12):
            for a, b in zip(first, gradients()):
                assert torch.equal(a, b)
    finally:
        torch.set_num_threads(threads)
    # and they are the gradients of gathering with advanced indexing, up to the order of the adds
    tg = loss.build_targets(base, targets)[0]
    ref = base[0].clone().requires_grad_(True)
    w = torch.randn(len(tg.b), 7, generator=g)
    (ref[tg.b, tg.a, tg.gj, tg.gi] * w).sum().backward()
    mine = base[0].clone().requires_grad_(True)
    (gather_cells(mine, flat_cells(mine, tg)) * w).sum().backward()
    torch.testing.assert_close(mine.grad, ref.grad, rtol=1e-5, atol=1e-5)


def test_objectness_target_last_assignment_wins():
    index = torch.tensor([3, 1, 3, 2, 1, 0])
    assert last_writes(index, 5).tolist() == [False, False, True, True, True, True]
    assert last_writes(torch.zeros(0, dtype=torch.long), 4).tolist() == []
    # On assignments of two boxes that share cells and anchors, the writes kept give the objectness
    # target a serial index_put gives (YOLOv5's: each write in assignment order, the last one stays).
    loss = YOLOLoss(Tiny(nc=2), load_hyp(), imgsz=256)
    raw = _raw()
    tg = loss.build_targets(raw, torch.tensor([_target(101, 61, 32, 32), _target(100, 60, 40, 28)]))[0]
    cell = flat_cells(raw[0], tg)
    assert len(cell.unique()) < len(cell)
    values = torch.rand(len(cell))
    serial = torch.zeros(raw[0].shape[:4])
    for k in range(len(cell)):
        serial[tg.b[k], tg.a[k], tg.gj[k], tg.gi[k]] = values[k]
    kept = last_writes(cell, serial.numel())
    mine = torch.zeros(raw[0].shape[:4])
    mine.view(-1)[cell[kept]] = values[kept]
    assert torch.equal(mine, serial) and kept.sum() == len(cell.unique())


def test_tiny_model_learns_one_batch(hyp):
    torch.manual_seed(0)
    model = Tiny(nc=2).train()
    loss = YOLOLoss(model, hyp, imgsz=64)
    x = torch.rand(2, 3, 64, 64)
    targets = torch.tensor([[0, 0, 0.3, 0.3, 0.3, 0.4], [0, 1, 0.7, 0.6, 0.2, 0.2], [1, 1, 0.5, 0.5, 0.6, 0.5]])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    history = []
    for _ in range(30):
        total, items = loss(model(x), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.5 * history[0], history


def test_hyp_defaults_and_validation(tmp_path):
    hyp = load_hyp()
    expected = {"lr0": 0.01, "lrf": 0.1, "momentum": 0.937, "weight_decay": 0.0005, "warmup_epochs": 3.0,
                "warmup_momentum": 0.8, "warmup_bias_lr": 0.1, "box": 0.1, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0,
                "obj_pw": 1.0, "iou_t": 0.2, "anchor_t": 4.0, "fl_gamma": 0.0, "label_smoothing": 0.0,
                "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4, "degrees": 0.0, "translate": 0.1, "scale": 0.5,
                "shear": 0.0, "perspective": 0.0, "flipud": 0.0, "fliplr": 0.5, "mosaic": 1.0, "mixup": 0.0,
                "letterbox_bands": 0.5}
    assert hyp == expected
    f = tmp_path / "hyp.yaml"
    f.write_text("lr0: 0.02\nmosaic: 0\n")
    assert load_hyp(f) == {**expected, "lr0": 0.02, "mosaic": 0.0}
    f.write_text("lr0: 0.02\nmosiac: 1.0\n")
    with pytest.raises(ValueError) as e:
        load_hyp(f)
    assert str(e.value) == f"{f}: unknown hyperparameter 'mosiac'; did you mean 'mosaic'?"
    for text, match in (("lr0: fast\n", "'lr0' must be a number"), ("fliplr: 1.5\n", r"'fliplr' = 1.5 is outside \[0, 1\]"),
                        ("letterbox_bands: -0.5\n", r"'letterbox_bands' = -0.5 is outside \[0, 1\]"),
                        ("- 1\n", "must be a mapping"), ("a: [\n", "invalid YAML")):
        f.write_text(text)
        with pytest.raises(ValueError, match=match):
            load_hyp(f)
    with pytest.raises(ValueError, match="no such hyperparameter file"):
        load_hyp(tmp_path / "missing.yaml")


def test_focal_bce_is_torchvision_focal_loss_and_keeps_pos_weight(hyp):
    """With pos_weight 1 the focal BCE equals torchvision's sigmoid_focal_loss (alpha 0.25); a
    pos_weight != 1 (cls_pw / obj_pw) scales the positive terms as YOLOv5's FocalLoss does."""
    from torchvision.ops import sigmoid_focal_loss

    loss = YOLOLoss(Tiny(nc=2), {**hyp, "fl_gamma": 1.5}, imgsz=256)
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(1000, generator=g) * 3, (torch.rand(1000, generator=g) > 0.7).float()
    torch.testing.assert_close(loss._bce(logits, target, 1.0),
                               sigmoid_focal_loss(logits, target, alpha=0.25, gamma=1.5, reduction="mean"))
    pos, neg = target == 1, target == 0
    per = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=1.5, reduction="none")
    expected = (3.0 * per[pos].sum() + per[neg].sum()) / len(per)  # pos_weight multiplies the BCE of positives
    torch.testing.assert_close(loss._bce(logits, target, 3.0), expected)
