"""Box format conversions, letterbox un-mapping, clipping and IoU (torchvision ``ops/boxes.py`` style).

Every function takes a torch tensor or a numpy array and returns the same kind, with boxes in the
last dimension (shape ``(..., 4)``). Box formats:

* ``xyxy``: x1, y1, x2, y2 (top-left, bottom-right corners);
* ``xywh``: cx, cy, w, h (centre and size, what Detect decodes and YOLO labels store).

torch is imported only inside the tensor branches so that numpy callers (the torch-free runtime,
``nms_numpy``, ``metrics``) can import this module without torch installed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

B = TypeVar("B", "torch.Tensor", np.ndarray)  # a function returns the kind it was given


def _check_boxes(x: B, name: str = "boxes") -> None:
    if x.ndim < 1 or x.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got {tuple(x.shape)}")


def _copy(x: B) -> B:
    return x.copy() if isinstance(x, np.ndarray) else x.clone()


def _is_numpy(x: B) -> bool:
    return isinstance(x, np.ndarray)


def xywh2xyxy(x: B) -> B:
    """(..., 4) cx, cy, w, h -> (..., 4) x1, y1, x2, y2 (same units)."""
    _check_boxes(x)
    if _is_numpy(x):
        y = np.empty_like(x)
        y[..., 0:2] = x[..., 0:2] - x[..., 2:4] / 2
        y[..., 2:4] = x[..., 0:2] + x[..., 2:4] / 2
        return y
    from torchvision.ops import box_convert

    return box_convert(x, "cxcywh", "xyxy")


def xyxy2xywh(x: B) -> B:
    """(..., 4) x1, y1, x2, y2 -> (..., 4) cx, cy, w, h (same units)."""
    _check_boxes(x)
    if _is_numpy(x):
        y = np.empty_like(x)
        y[..., 0:2] = (x[..., 0:2] + x[..., 2:4]) / 2
        y[..., 2:4] = x[..., 2:4] - x[..., 0:2]
        return y
    from torchvision.ops import box_convert

    return box_convert(x, "xyxy", "cxcywh")


def xywhn2xyxy(x: B, w: int = 640, h: int = 640, padw: float = 0.0, padh: float = 0.0) -> B:
    """(..., 4) cx, cy, w, h normalised to an image of ``w`` x ``h`` -> (..., 4) x1, y1, x2, y2 in
    pixels of the image placed at (``padw``, ``padh``) (the mosaic / letterbox canvas)."""
    _check_boxes(x)
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive, got w={w}, h={h}")
    y = xywh2xyxy(x)  # a new array/tensor, safe to write into
    y[..., 0::2] = y[..., 0::2] * w + padw
    y[..., 1::2] = y[..., 1::2] * h + padh
    return y


def clip_boxes(boxes: B, shape: Sequence[int]) -> B:
    """Clip (..., 4) xyxy boxes to an image of ``shape`` = (h, w); returns a new array/tensor."""
    _check_boxes(boxes)
    if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
        raise ValueError(f"shape must be (h, w) with positive sides, got {tuple(shape)}")
    # Not torchvision's clip_boxes_to_image: it takes integer sizes only and no numpy arrays.
    h, w = float(shape[0]), float(shape[1])
    out = _copy(boxes)
    if _is_numpy(out):
        out[..., 0::2] = out[..., 0::2].clip(0, w)
        out[..., 1::2] = out[..., 1::2].clip(0, h)
    else:
        out[..., 0::2] = out[..., 0::2].clamp(0, w)
        out[..., 1::2] = out[..., 1::2].clamp(0, h)
    return out


def _gain_pad(img1_shape: Sequence[int], img0_shape: Sequence[int],
              ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None
              ) -> tuple[tuple[float, float], tuple[float, float]]:
    """((gain_x, gain_y), (pad_w, pad_h)) of a letterbox from ``img0_shape`` into ``img1_shape``."""
    for name, s in (("img1_shape", img1_shape), ("img0_shape", img0_shape)):
        if len(s) < 2 or s[0] <= 0 or s[1] <= 0:
            raise ValueError(f"{name} must be (h, w) with positive sides, got {tuple(s)}")
    if ratio_pad is None:
        gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
        return (gain, gain), ((img1_shape[1] - img0_shape[1] * gain) / 2, (img1_shape[0] - img0_shape[0] * gain) / 2)
    (rh, rw), pad = ratio_pad
    if rh <= 0 or rw <= 0:
        raise ValueError(f"ratio_pad gains must be > 0, got {(rh, rw)}")
    return (float(rw), float(rh)), (float(pad[0]), float(pad[1]))


def scale_boxes(img1_shape: Sequence[int], boxes: B, img0_shape: Sequence[int],
                ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None = None) -> B:
    """Map (..., 4) xyxy boxes from a letterboxed image of ``img1_shape`` = (h1, w1) back to the
    original image of ``img0_shape`` = (h0, w0), and clip them to it (YOLOv5's ``scale_boxes``).

    ``ratio_pad = ((rh, rw), (pad_w, pad_h))`` as the data loader records it; if None both are
    recomputed from the shapes the way ``edgeyolo.data.letterbox`` computes them (centred
    padding). x is divided by ``rw`` and y by ``rh``: the loader's two gains differ by the rounding
    of the resized side, and YOLOv5's single gain (``rh`` for both) moves x by up to ~1.5 px on a
    640x427 COCO image at 320.
    """
    _check_boxes(boxes)
    (gx, gy), pad = _gain_pad(img1_shape, img0_shape, ratio_pad)
    out = _copy(boxes)
    out[..., 0::2] = (out[..., 0::2] - pad[0]) / gx
    out[..., 1::2] = (out[..., 1::2] - pad[1]) / gy
    return clip_boxes(out, img0_shape)


def clip_to_content(boxes: B, img1_shape: Sequence[int], img0_shape: Sequence[int],
                    ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None = None) -> B:
    """Clip (..., 4) xyxy boxes in a letterboxed image of ``img1_shape`` = (h1, w1) to the area the
    original image of ``img0_shape`` = (h0, w0) covers in it (the padding excluded): the clip of
    :func:`scale_boxes`, without leaving the letterboxed pixels. Scoring in letterboxed pixels
    must clip like this, or a box that runs into the padding loses IoU the original image's box
    would not (``ratio_pad`` as in :func:`scale_boxes`)."""
    _check_boxes(boxes)
    (gx, gy), (px, py) = _gain_pad(img1_shape, img0_shape, ratio_pad)
    x1, y1, x2, y2 = px, py, px + img0_shape[1] * gx, py + img0_shape[0] * gy
    out = _copy(boxes)
    if _is_numpy(out):
        out[..., 0::2], out[..., 1::2] = out[..., 0::2].clip(x1, x2), out[..., 1::2].clip(y1, y2)
    else:
        out[..., 0::2], out[..., 1::2] = out[..., 0::2].clamp(x1, x2), out[..., 1::2].clamp(y1, y2)
    return out


def box_area(boxes: B) -> B:
    """(..., 4) xyxy -> (...) areas (no +1: continuous pixel coordinates, as COCO)."""
    _check_boxes(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: B, boxes2: B) -> B:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M).

    torch: ``torchvision.ops.box_iou``. numpy: the same formula, which is also pycocotools'
    ``maskUtils.iou`` for boxes (no +1, intersection clamped at 0); the COCO evaluation relies on it.
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    if boxes1.ndim != 2 or boxes2.ndim != 2:
        raise ValueError(f"box_iou takes (N, 4) and (M, 4), got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    if not _is_numpy(boxes1):
        from torchvision.ops import box_iou as tv_box_iou

        return tv_box_iou(boxes1, boxes2)
    dtype = np.result_type(boxes1, boxes2, np.float32)  # float, at least float32
    a1, a2 = box_area(boxes1).astype(dtype), box_area(boxes2).astype(dtype)
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    wh = (rb - lt).clip(0)
    inter = (wh[..., 0] * wh[..., 1]).astype(dtype)  # (N, M)
    union = a1[:, None] + a2[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # empty boxes: IoU 0
