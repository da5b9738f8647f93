"""The detection dataset shared by training, validation, INT8 calibration and benchmarking.

Behaves like PyTorch_YOLOv4 (u5 branch) / YOLOv5 ``LoadImagesAndLabels``: each item is
``(img, labels, path, shapes)`` with ``img`` a (3, H, W) uint8 RGB tensor, ``labels`` a (n, 6)
float32 tensor ``[0, cls, cx, cy, w, h]`` normalised to the returned image (column 0 is filled
with the index in the batch by :meth:`DetectionDataset.collate_fn`), and ``shapes`` =
``((h0, w0), ((ratio_h, ratio_w), (pad_w, pad_h)))`` mapping the returned image back to the
original (None for mosaic images, which have no single original).
"""
from __future__ import annotations

import copy
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import (augment_hsv, flip_lr, flip_ud, letterbox_bands, mixup, mosaic4, random_perspective,
                      xywhn2xyxy, xyxy2xywhn)
from .config import DataConfig, load_data_config
from .letterbox import letterbox
from .scan import scan_split

LOGGER = logging.getLogger("edgeyolo.data")

# PyTorch_YOLOv4's augmentation hyperparameters (hyp.scratch.s.yaml, with translate 0.1 as in its
# hyp.scratch.yaml; that file's scale 0.9 shrinks small objects to nothing on small images). A
# trainer's hyp dict overrides any of them; its other keys (lr0, box, ...) are ignored here.
DEFAULT_HYP: dict[str, float] = {
    "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4, "degrees": 0.0, "translate": 0.1, "scale": 0.5,
    "shear": 0.0, "perspective": 0.0, "flipud": 0.0, "fliplr": 0.5, "mosaic": 1.0, "mixup": 0.0,
    "letterbox_bands": 0.0,
}

Shapes = tuple[tuple[int, int], tuple[tuple[float, float], tuple[float, float]]] | None

# Decoded images are kept in RAM by default (``cache_images=None``) when they take at most this
# share of the memory available, and at most CACHE_MAX_BYTES: on a small set re-decoding every
# mosaic's four PNG/JPEG files is most of the loader's work (1.6 ms of a 9 ms mosaic for a 320 px
# tile on a 2-core CPU), and the loader's workers compete with training for the same cores.
CACHE_RAM_SHARE = 0.2
CACHE_MAX_BYTES = 4 * 2**30


def available_ram() -> int | None:
    """Bytes of memory available now (Linux/macOS sysconf), or None where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cache_fits(shapes: np.ndarray, imgsz: int, ram: int | None = None) -> bool:
    """Whether images of (N, 2) ``shapes`` (h, w), resized to long side ``imgsz`` as the dataset
    keeps them (uint8 BGR), fit the RAM budget: ``CACHE_RAM_SHARE`` of ``ram`` (default: available
    now) and at most ``CACHE_MAX_BYTES``."""
    ram = available_ram() if ram is None else ram
    if ram is None or not len(shapes):
        return False
    r = imgsz / shapes.max(1).clip(min=1)
    need = float((np.ceil(shapes[:, 0] * r) * np.ceil(shapes[:, 1] * r) * 3).sum())
    return need <= min(CACHE_RAM_SHARE * ram, CACHE_MAX_BYTES)


class DetectionDataset(Dataset):
    """Images and checked labels of one split of a data YAML.

    ``augment`` turns on mosaic (probability ``hyp['mosaic']``), random affine, HSV jitter,
    letterbox bands (``hyp['letterbox_bands']``: off in this class's defaults, on in the trainer's)
    and flips; without it each image is letterboxed to ``imgsz`` (square) or, with ``rect``, to its
    aspect-ratio batch shape.
    ``cache_images`` keeps the decoded, resized images in RAM (None: when they fit
    :func:`cache_fits`'s budget). With ``rect`` the images are sorted by aspect ratio so that
    consecutive ``batch_size`` items share a shape: use it with an unshuffled loader. ``pad`` (rect
    only) adds that many strides to each batch shape before rounding up: 0.5 by default without
    augmentation, as PyTorch_YOLOv4's test.py (a square 320 batch becomes 352); 0 gives tight
    shapes.

    Attributes: ``im_files`` (str paths), ``labels`` (list of (n, 5) float32 ``cls cx cy w h``
    normalised, per image), ``shapes`` ((N, 2) original h, w), ``names``, ``nc``, ``report``
    (list of :class:`~edgeyolo.data.labels.Problem`), ``batch_shapes`` ((nb, 2) h, w with rect).
    """

    def __init__(self, config: DataConfig | str | os.PathLike[str] | dict[str, Any], split: str, imgsz: int,
                 augment: bool, hyp: dict[str, Any] | None = None, rect: bool = False, batch_size: int = 16,
                 stride: int = 32, cache_images: bool | None = False, pad: float | None = None) -> None:
        self.config = load_data_config(config)
        self.split, self.imgsz, self.augment, self.rect, self.stride = split, int(imgsz), augment, rect, stride
        self.hyp = {**DEFAULT_HYP, **{k: float(v) for k, v in (hyp or {}).items() if k in DEFAULT_HYP}}
        self.mosaic = augment and not rect  # rect batches need whole images of a known shape
        if self.mosaic and self.hyp["mosaic"] > 0 and self.imgsz % 2:
            # a mosaic is cropped by imgsz // 2 on each side of its 2 x imgsz canvas: an odd size comes
            # out one pixel short, and such a batch cannot be stacked with letterboxed images
            raise ValueError(f"imgsz {self.imgsz}: mosaic augmentation needs an even image size")
        self.mosaic_border = (-self.imgsz // 2, -self.imgsz // 2)
        self.names, self.nc = list(self.config.names), self.config.nc

        self.scan = scan_split(self.config, split)
        if not self.scan.im_files:
            detail = f"{self.scan.n_found} images found, all unusable" if self.scan.n_found else "no images found"
            raise ValueError(f"{self.config.source}: split {split!r} has no usable image ({detail}; "
                             f"run `edgeyolo data check` for details)")
        self.report = self.scan.problems
        self.im_files = [str(f) for f in self.scan.im_files]
        self.labels = [lb.copy() for lb in self.scan.labels]
        self.shapes = np.array(self.scan.shapes, dtype=np.int64).reshape(-1, 2)  # (N, 2) h, w
        self.batch_shapes: np.ndarray | None = None
        self.batch_index = np.zeros(len(self), dtype=np.int64)
        self.ims: list[np.ndarray | None] = [None] * len(self)  # cached images, filled below when they fit
        if rect:
            self._set_rect_shapes(batch_size, 0.5 if pad is None and not augment else (pad or 0.0))
        self._unreadable: set[int] = set()
        self.cached = cache_fits(self.shapes, self.imgsz) if cache_images is None else bool(cache_images)
        if self.cached:
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                for i, (im, _, _) in enumerate(pool.map(self._read_resized, range(len(self)))):
                    self.ims[i] = im

    def validation_view(self, indices: Sequence[int], batch_size: int) -> DetectionDataset:
        """Images ``indices`` of this split as validation sees them: no augmentation, letterboxed to
        their rect batch shapes with half a stride of grey around (YOLOv5's val). A shallow copy:
        the cached images are shared, not read again."""
        idx = list(indices)
        view = copy.copy(self)
        view.augment = view.mosaic = False
        view.rect, view._unreadable = True, set()
        view.im_files, view.labels = [self.im_files[i] for i in idx], [self.labels[i] for i in idx]  # own lists
        view.shapes, view.ims = self.shapes[idx], [self.ims[i] for i in idx]
        view._set_rect_shapes(batch_size, 0.5)
        return view

    def __len__(self) -> int:
        return len(self.im_files)

    def _set_rect_shapes(self, batch_size: int, pad: float) -> None:
        """Sort by aspect ratio h/w and give each batch the smallest stride-multiple shape that
        fits all its images letterboxed to ``imgsz`` (plus ``pad`` strides, as YOLOv5's val)."""
        ar = self.shapes[:, 0] / self.shapes[:, 1]
        order = ar.argsort(kind="stable")
        self.im_files = [self.im_files[i] for i in order]
        self.labels = [self.labels[i] for i in order]
        self.shapes, ar = self.shapes[order], ar[order]
        self.ims = [self.ims[i] for i in order]  # a view's cached images follow their files
        self.batch_index = np.arange(len(self)) // batch_size
        nb = int(self.batch_index[-1]) + 1
        rel = np.ones((nb, 2))
        for b in range(nb):
            ari = ar[self.batch_index == b]
            if ari.max() < 1:  # all wide: full width, height of the tallest
                rel[b] = [ari.max(), 1]
            elif ari.min() > 1:  # all tall
                rel[b] = [1, 1 / ari.min()]
        self.batch_shapes = (np.ceil(rel * self.imgsz / self.stride + pad) * self.stride).astype(np.int64)

    def _read_resized(self, i: int) -> tuple[np.ndarray | None, tuple[int, int], tuple[int, int]]:
        """Read image ``i`` (BGR) and resize its long side to ``imgsz``."""
        im = cv2.imread(self.im_files[i])  # applies EXIF orientation, as the label check assumed
        if im is None:
            return None, (0, 0), (0, 0)
        h0, w0 = im.shape[:2]
        r = self.imgsz / max(h0, w0)
        if r != 1:
            # INTER_AREA is the better downscale for evaluation; augmentation re-samples anyway
            interp = cv2.INTER_LINEAR if (self.augment or r > 1) else cv2.INTER_AREA
            im = cv2.resize(im, (max(1, round(w0 * r)), max(1, round(h0 * r))), interpolation=interp)
        return im, (h0, w0), im.shape[:2]

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """-> (BGR image with long side ``imgsz``, (h0, w0) original, (h, w) resized). An image
        that cannot be read any more (changed since the check) becomes grey with no boxes."""
        im = self.ims[i]
        if im is not None:
            h0, w0 = (int(x) for x in self.shapes[i])
            return im, (h0, w0), im.shape[:2]
        im, hw0, hw = self._read_resized(i)
        if im is None:
            if i not in self._unreadable:
                LOGGER.warning("%s: unreadable image, used as an empty grey image", self.im_files[i])
                self._unreadable.add(i)
            self.labels[i] = np.zeros((0, 5), dtype=np.float32)
            h0, w0 = (int(x) for x in self.shapes[i])
            r = self.imgsz / max(h0, w0)
            hw = (max(1, round(h0 * r)), max(1, round(w0 * r)))
            return np.full((*hw, 3), 114, dtype=np.uint8), (h0, w0), hw
        return im, hw0, hw

    def load_mosaic(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``index`` and three random others on a 2s canvas, randomly affined back to
        (s, s). -> (BGR image, (n, 5) pixel ``cls x1 y1 x2 y2``)."""
        s = self.imgsz
        xc, yc = (int(random.uniform(-b, 2 * s + b)) for b in self.mosaic_border)  # centre in [s/2, 3s/2]
        indices = [index] + random.choices(range(len(self)), k=3)
        random.shuffle(indices)
        tiles = []
        for i in indices:
            img, _, (h, w) = self.load_image(i)
            tiles.append((img, xywhn2xyxy(self.labels[i], w, h)))
        img4, labels4 = mosaic4(tiles, s, (xc, yc))
        hyp = self.hyp
        return random_perspective(img4, labels4, hyp["degrees"], hyp["translate"], hyp["scale"], hyp["shear"],
                                  hyp["perspective"], border=self.mosaic_border)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str, Shapes]:
        """Item ``index``; an ``(index, seed)`` pair (the training loader's) first seeds ``random``
        and ``numpy.random``, so its augmentation is the same in whichever process makes it."""
        if isinstance(index, tuple):
            index, seed = index
            random.seed(seed)
            np.random.seed(seed % 2**32)  # numpy takes 32-bit seeds; a caller may pass any int
        hyp = self.hyp
        shapes: Shapes = None
        if self.mosaic and random.random() < hyp["mosaic"]:
            img, labels = self.load_mosaic(index)
            if random.random() < hyp["mixup"]:
                img, labels = mixup(img, labels, *self.load_mosaic(random.randrange(len(self))))
        else:
            img, (h0, w0), (h, w) = self.load_image(index)
            shape = tuple(int(x) for x in self.batch_shapes[self.batch_index[index]]) if self.rect else self.imgsz
            img, r, pad = letterbox(img, shape, auto=False, scaleup=self.augment)
            shapes = (h0, w0), ((h * r / h0, w * r / w0), pad)  # for mapping predictions back
            labels = xywhn2xyxy(self.labels[index], w * r, h * r, pad[0], pad[1])
            if self.augment:
                img, labels = random_perspective(img, labels, hyp["degrees"], hyp["translate"], hyp["scale"],
                                                 hyp["shear"], hyp["perspective"])
        if self.augment:
            augment_hsv(img, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"])
            # after the jitter, so that the bands are letterbox's exact grey; no draw when off, so
            # that a seed's augmentation stays what it was without them
            if hyp["letterbox_bands"] > 0 and random.random() < hyp["letterbox_bands"]:
                img, labels = letterbox_bands(img, labels)
        labels = xyxy2xywhn(labels, img.shape[1], img.shape[0])
        labels = labels[(labels[:, 3] > 0) & (labels[:, 4] > 0)]
        if self.augment:
            if random.random() < hyp["flipud"]:
                img, labels = flip_ud(img, labels)
            if random.random() < hyp["fliplr"]:
                img, labels = flip_lr(img, labels)
        out = torch.zeros((len(labels), 6), dtype=torch.float32)
        out[:, 1:] = torch.from_numpy(labels)
        img = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
        return torch.from_numpy(img), out, self.im_files[index], shapes

    @staticmethod
    def collate_fn(batch: list[tuple[torch.Tensor, torch.Tensor, str, Shapes]]
                   ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], tuple[Shapes, ...]]:
        """-> (imgs (B, 3, H, W) uint8, targets (N, 6) ``[batch_index, cls, cx, cy, w, h]``,
        paths, shapes)."""
        imgs, labels, paths, shapes = zip(*batch)
        for i, lb in enumerate(labels):
            lb[:, 0] = i
        return torch.stack(imgs, 0), torch.cat(labels, 0), paths, shapes
