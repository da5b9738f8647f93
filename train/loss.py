"""YOLOLoss: the YOLOv4 loss of PyTorch_YOLOv4 (u5 branch) / YOLOv5's ``ComputeLoss``.

* assignment: a target goes to every anchor whose w and h ratios to it are within ``anchor_t``
  (max(r, 1/r) < 4), in its own cell and in the two nearest neighbour cells (the g = 0.5 rule:
  left if the centre is in the left half of its cell, else right; same for up / down; never past
  the first / last cell), so up to 3 cells per matched anchor;
* box: CIoU of the decoded prediction (xy = 2 sigmoid - 0.5 relative to the cell, wh = (2 sigmoid)^2
  * anchor, grid units) and the target, loss mean(1 - CIoU);
* objectness: BCE on every cell, target (1 - gr) + gr * CIoU.detach().clamp(0) at the assigned
  cells, levels weighted 4.0 / 1.0 / 0.4 (P3 / P4 / P5);
* class: BCE at the assigned cells (targets 1 - eps/2 and eps/2 with label smoothing eps), skipped
  for one class.

Loss = (box * lbox + obj * lobj + cls * lcls) * batch_size with the gains of ``hyp`` scaled as
YOLOv5's train.py: box *= 3/nl, cls *= nc/80 * 3/nl, obj *= (imgsz/640)^2 * 3/nl.
"""
from __future__ import annotations

import math

from typing import Any, NamedTuple

import torch
from torch import nn


BALANCE_3 = (4.0, 1.0, 0.4)  # objectness weight per level P3, P4, P5 (small objects count more)
FOCAL_ALPHA = 0.25  # YOLOv5 FocalLoss alpha
_OFFSETS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32)  # own cell, l, u, r, d
_G = 0.5  # neighbour-cell rule: a centre within 0.5 of a cell edge also trains the cell beyond it


class LevelTargets(NamedTuple):
    """Targets assigned on one level, one row per (target, anchor, cell) assignment."""

    b: torch.Tensor  # (n,) image index in the batch
    a: torch.Tensor  # (n,) anchor index
    gj: torch.Tensor  # (n,) cell row
    gi: torch.Tensor  # (n,) cell column
    tbox: torch.Tensor  # (n, 4) target cx, cy relative to the cell's corner, w, h (grid units)
    anchors: torch.Tensor  # (n, 2) the anchor's w, h (grid units)
    tcls: torch.Tensor  # (n,) class


def ciou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Elementwise complete IoU of (n, 4) and (n, 4) cx, cy, w, h boxes -> (n,) (YOLOv5's
    ``bbox_iou(CIoU=True)``, alpha under no_grad).

    Written here rather than calling ``torchvision.ops.complete_box_iou_loss``: that takes xyxy
    boxes and divides by the box height without an eps; a collapsing predicted height (w, h come
    from (2 sigmoid)^2 * anchor, and x2 - x1 rounds to 0 once h is tiny next to cx) then gives
    NaN gradients that poison every weight. Here w and h are used directly, with eps.
    """
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    b1x1, b1x2, b1y1, b1y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2x1, b2x2, b2y1, b2y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * \
            (torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)  # enclosing box
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = (x2 - x1) ** 2 + (y2 - y1) ** 2  # squared centre distance
    v = (4 / math.pi ** 2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))) ** 2
    with torch.no_grad():
        alpha = v / ((1 - iou) + v + eps)  # (1 - iou) first: 1 + eps rounds to 1 in float32
    return iou - (rho2 / c2 + v * alpha)


def flat_cells(p: torch.Tensor, tg: LevelTargets) -> torch.Tensor:
    """(n,) flat index of each assignment's (image, anchor, row, column) in ``p`` (B, na, ny, nx, ...)."""
    _, na, ny, nx = p.shape[:4]
    return ((tg.b * na + tg.a) * ny + tg.gj) * nx + tg.gi


def gather_cells(p: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Rows ``cell`` (n,) of ``p`` (B, na, ny, nx, no) seen as (B * na * ny * nx, no) -> (n, no).

    Both forms gather the same values; they differ in how the backward adds the gradient of a cell
    assigned more than once. On a CPU, advanced indexing's backward adds with parallel atomic adds
    once n * no >= 32768 and more than one thread runs, in an order that changes from run to run
    (a seeded 2-thread run did not repeat), while index_select's adds in index order. On CUDA it is
    the other way round: index_select's backward uses atomic adds, advanced indexing's sorts.
    """
    rows = p.reshape(-1, p.shape[-1])
    return rows.index_select(0, cell) if rows.device.type == "cpu" else rows[cell]


def last_writes(index: torch.Tensor, size: int) -> torch.Tensor:
    """(n,) bool: True where ``index`` (n,) of values in [0, size) holds its value for the last time.

    Writing ``values[mask]`` at ``index[mask]`` is "the last write wins" on every device and thread
    count; an index_put with repeated indices leaves which write wins to the kernel (a race on CUDA
    and on a multi-threaded CPU once it runs in parallel).
    """
    order = torch.arange(index.numel(), device=index.device)
    last = torch.full((size,), -1, dtype=order.dtype, device=index.device).scatter_reduce_(0, index, order, "amax")
    return last[index] == order


def _detect_head(model: nn.Module) -> nn.Module:
    model = model.module if hasattr(model, "module") else model  # DDP / DataParallel
    head = getattr(model, "head", None)
    if head is None or not all(hasattr(head, k) for k in ("anchors", "stride", "nc", "na", "nl")):
        raise ValueError(f"{type(model).__name__} has no Detect head at .head (anchors, stride, nc, na, nl)")
    return head


class YOLOLoss:
    """``loss, items = YOLOLoss(model, hyp)(raw, targets)``; see the module docstring.

    raw: the model's training output [(B, na, ny, nx, 5 + nc)] per level; targets (N, 6) =
    image index, class, cx, cy, w, h normalised to the input image. Returns the scalar loss (sum of
    the weighted parts times the batch size, what YOLOv5 backpropagates) and the detached (3,)
    [box, obj, cls] parts.
    """

    def __init__(self, model: nn.Module, hyp: dict[str, Any], imgsz: int = 640):
        self.head = _detect_head(model)
        self.nc, self.na, self.nl = int(self.head.nc), int(self.head.na), int(self.head.nl)
        if self.nl != 3:
            raise ValueError(f"YOLOLoss expects 3 detection levels (P3, P4, P5), got {self.nl}")
        missing = [k for k in ("box", "obj", "cls", "anchor_t") if k not in hyp]
        if missing:
            raise ValueError(f"hyp is missing {', '.join(missing)}")
        s = 3 / self.nl
        self.box_gain = float(hyp["box"]) * s
        self.cls_gain = float(hyp["cls"]) * self.nc / 80 * s
        self.obj_gain = float(hyp["obj"]) * (imgsz / 640) ** 2 * s
        self.anchor_t = float(hyp["anchor_t"])
        self.cls_pw, self.obj_pw = float(hyp.get("cls_pw", 1.0)), float(hyp.get("obj_pw", 1.0))
        self.fl_gamma = float(hyp.get("fl_gamma", 0.0))
        eps = float(hyp.get("label_smoothing", 0.0))
        self.cp, self.cn = 1.0 - 0.5 * eps, 0.5 * eps  # positive / negative class targets
        self.gr = 1.0  # objectness target = CIoU (YOLOv5's model.gr)
        self.balance = BALANCE_3

    def _bce(self, logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
        """Mean BCE-with-logits; focal (YOLOv5's FocalLoss, alpha 0.25) when fl_gamma > 0."""
        pw = torch.tensor([pos_weight], device=logits.device, dtype=logits.dtype)
        if self.fl_gamma <= 0:
            return nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pw)
        # YOLOv5's FocalLoss, written out: torchvision's sigmoid_focal_loss has no pos_weight, and
        # a hyp with cls_pw / obj_pw != 1 must keep its weight under focal loss too.
        bce = nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")
        p = logits.sigmoid()
        p_t = target * p + (1 - target) * (1 - p)
        alpha_t = target * FOCAL_ALPHA + (1 - target) * (1 - FOCAL_ALPHA)
        return (bce * alpha_t * (1 - p_t) ** self.fl_gamma).mean()

    def anchors_grid(self) -> torch.Tensor:
        """(nl, na, 2) anchors in grid units of their level (read at each call: autoanchor may change them)."""
        return self.head.anchors / self.head.stride.view(-1, 1, 1)

    def build_targets(self, raw: list[torch.Tensor], targets: torch.Tensor) -> list[LevelTargets]:
        """Assign (N, 6) targets to anchors and cells of each level (YOLOv5's ``build_targets``)."""
        if targets.ndim != 2 or targets.shape[1] != 6:
            raise ValueError(f"targets must have shape (N, 6) = image, class, cx, cy, w, h; got {tuple(targets.shape)}")
        device = raw[0].device
        targets = targets.to(device=device, dtype=torch.float32)
        na, nt = self.na, targets.shape[0]
        ai = torch.arange(na, device=device, dtype=torch.float32).view(na, 1).repeat(1, nt)  # (na, nt)
        t_all = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)  # (na, nt, 7): ..., anchor index
        off = _OFFSETS.to(device) * _G  # (5, 2)
        anchors_all = self.anchors_grid().to(device=device, dtype=torch.float32)
        out = []
        for i, p in enumerate(raw):
            ny, nx = p.shape[2], p.shape[3]
            gain = torch.tensor([1, 1, nx, ny, nx, ny, 1], device=device, dtype=torch.float32)
            t = t_all * gain  # (na, nt, 7) boxes in grid units
            anchors = anchors_all[i]  # (na, 2)
            if nt:
                r = t[..., 4:6] / anchors[:, None]  # (na, nt, 2) wh ratios
                t = t[torch.max(r, 1 / r).max(2)[0] < self.anchor_t]  # (m, 7) matched pairs
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy  # distance to the right / bottom edge
                j, k = ((gxy % 1 < _G) & (gxy > 1)).T  # left, up neighbours
                l, m = ((gxi % 1 < _G) & (gxi > 1)).T  # right, down neighbours
                sel = torch.stack((torch.ones_like(j), j, k, l, m))  # (5, m)
                t = t.repeat((5, 1, 1))[sel]  # (n, 7)
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[sel]  # (n, 2)
            else:
                t, offsets = t_all[0], torch.zeros((0, 2), device=device)
            b, c = t[:, 0].long(), t[:, 1].long()
            gxy, gwh, a = t[:, 2:4], t[:, 4:6], t[:, 6].long()
            gij = (gxy - offsets).long()
            gi, gj = gij[:, 0].clamp(0, nx - 1), gij[:, 1].clamp(0, ny - 1)
            # tbox xy is relative to the unclamped cell, as YOLOv5 (differs only for centres outside the image)
            out.append(LevelTargets(b, a, gj, gi, torch.cat((gxy - gij, gwh), 1), anchors[a], c))
        return out

    def __call__(self, raw: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(raw) != self.nl:
            raise ValueError(f"expected {self.nl} level outputs, got {len(raw)}")
        device = raw[0].device
        lbox = torch.zeros((), device=device)
        lobj = torch.zeros((), device=device)
        lcls = torch.zeros((), device=device)
        for i, (p, tg) in enumerate(zip(raw, self.build_targets(raw, targets))):
            tobj = torch.zeros(p.shape[:4], device=device, dtype=p.dtype)  # (B, na, ny, nx)
            n = tg.b.shape[0]
            if n:
                cell = flat_cells(p, tg)  # (n,)
                ps = gather_cells(p, cell)  # (n, 5 + nc) predictions at the assigned cells
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * tg.anchors
                iou = ciou(torch.cat((pxy, pwh), 1), tg.tbox)  # (n,)
                lbox = lbox + (1.0 - iou).mean()
                score = iou.detach().clamp(0).to(tobj.dtype)
                # Several assignments can hit the same cell: the last write wins, as in YOLOv5.
                last = last_writes(cell, tobj.numel())
                tobj.view(-1)[cell[last]] = ((1.0 - self.gr) + self.gr * score)[last]
                if self.nc > 1:
                    t = torch.full_like(ps[:, 5:], self.cn)
                    t[torch.arange(n, device=device), tg.tcls] = self.cp
                    lcls = lcls + self._bce(ps[:, 5:], t, self.cls_pw)
            lobj = lobj + self._bce(p[..., 4], tobj, self.obj_pw) * self.balance[i]
        lbox, lobj, lcls = lbox * self.box_gain, lobj * self.obj_gain, lcls * self.cls_gain
        bs = raw[0].shape[0]
        return (lbox + lobj + lcls) * bs, torch.stack((lbox, lobj, lcls)).detach()
