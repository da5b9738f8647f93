"""COCO-style detection metrics in numpy: mAP@0.5, mAP@0.5:0.95, per-class P/R at the max-F1 conf.

Why not call pycocotools / faster-coco-eval during validation: they need json-like dicts (a Python
object per box, slow at conf_thres=0.001), and give neither per-class P/R at an operating point
nor the curves. This module reproduces ``COCOeval`` for boxes (iouType 'bbox', area 'all', no
crowd, maxDets=100) exactly, and gets everything else from the same matches in one pass:

* matching per image and class: detections sorted by score (stable), at most ``max_dets``; each
  takes the unmatched GT of highest IoU >= t (ties: the later GT), for t in 0.50:0.05:0.95;
* accumulation per class over images: precision made monotone from the right, then sampled at
  101 recall points with ``searchsorted(side='left')`` (0 beyond the last recall);
* classes with no GT are left out of the means (NaN per class), as COCO's -1;
* P and R per class at the confidence that maximises the smoothed mean F1, from the IoU 0.5
  matches (YOLOv5's ``ap_per_class``).

tests/test_metrics.py checks the parity with pycocotools to 1e-4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .boxes import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO iouThrs: 0.50:0.05:0.95
# COCO's areaRng for APs / APm / APl (box area in px^2, both ends inclusive).
COCO_AREAS = {"small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e10)}
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # COCO recThrs: 0:0.01:1
CONF_GRID = np.linspace(0.0, 1.0, 1000)  # confidence axis of the P/R/F1 curves (YOLOv5's px)
_EPS = 1e-16


def _as_dets(dets: np.ndarray, nc: int) -> np.ndarray:
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 6)  # also takes CPU tensors and []
    if d.shape[0] and (d[:, 5].min() < 0 or d[:, 5].max() >= nc):
        raise ValueError(f"detection classes must be in [0, {nc - 1}], got {d[:, 5].min():g}..{d[:, 5].max():g}")
    return d


def _as_gts(gts: np.ndarray, nc: int) -> np.ndarray:
    g = np.asarray(gts, dtype=np.float64).reshape(-1, 5)
    if g.shape[0] and (g[:, 0].min() < 0 or g[:, 0].max() >= nc):
        raise ValueError(f"ground-truth classes must be in [0, {nc - 1}], got {g[:, 0].min():g}..{g[:, 0].max():g}")
    if g.shape[0] and ((g[:, 3] < g[:, 1]) | (g[:, 4] < g[:, 2])).any():
        raise ValueError("ground-truth boxes must have x2 >= x1 and y2 >= y1")
    return g


def _area(b: np.ndarray) -> np.ndarray:
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def match_image(dets: np.ndarray, gts: np.ndarray, nc: int, max_dets: int = 100,
                area: tuple[float, float] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval's ``evaluateImg`` for one image, every class at once.

    dets (n, 6) = x1, y1, x2, y2, conf, cls; gts (m, 5) = cls, x1, y1, x2, y2 (same coordinates).
    ``area`` (lo, hi) in px^2 scores one box size only, as COCO's ``areaRng``: a GT whose box area is
    outside it is ignored (a detection prefers a GT that is not), and so is a detection matched to
    an ignored GT, or matched to none while its own area is outside it.
    Returns the kept detections' (k,) classes, (k,) scores, (k, 10) bool true-positive and (k, 10)
    bool ignored flags per IoU threshold, in decreasing-score order (stable: ties keep the input
    order, as COCO's mergesort; at most ``max_dets`` per class), and the (nc,) counts of GTs not ignored.
    """
    d, g = _as_dets(dets, nc), _as_gts(gts, nc)
    lo, hi = area if area is not None else (-np.inf, np.inf)
    if not lo <= hi:
        raise ValueError(f"area must be (lo, hi) with lo <= hi, got {area}")
    g_ig = (_area(g[:, 1:]) < lo) | (_area(g[:, 1:]) > hi)
    d = d[np.argsort(-d[:, 4], kind="mergesort")]
    d_out = (_area(d) < lo) | (_area(d) > hi)
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)  # COCO clamps the threshold the same way
    keep = np.zeros(len(d), dtype=bool)
    tp = np.zeros((len(d), len(thr)), dtype=bool)
    ig = np.zeros((len(d), len(thr)), dtype=bool)  # matched to an ignored GT, or (below) unmatched and off-size
    for c in np.unique(d[:, 5]):
        di = np.flatnonzero(d[:, 5] == c)[:max_dets]
        # A box of negative area w * h (one side negative) takes one of the max_dets places but
        # matches nothing, and COCO ignores unmatched boxes outside the area range: so it is
        # dropped after the cut. (Areas over COCO's 1e10 px^2 cap are not treated specially.)
        di = di[_area(d[di]) >= 0]
        keep[di] = True
        gc, gci = g[g[:, 0] == c, 1:], g_ig[g[:, 0] == c]
        if not len(gc):
            continue
        iou = box_iou(d[di, :4], gc)  # (k, m) float64, pycocotools' formula
        matched = np.zeros((len(thr), len(gc)), dtype=bool)  # (T, m) GT taken at threshold t
        rank = np.where(gci, 0.0, 2.0)  # IoU + rank: a GT not ignored outranks any ignored one
        for row, k in zip(iou, di):
            if row.max() < thr[0]:
                continue  # matches nothing at any threshold: skip the (T, m) work
            ok = ~matched & (row[None, :] >= thr[:, None])  # (T, m) candidates
            has = ok.any(1)
            # Best IoU among candidates, the last one on ties (COCO's loop replaces on >=).
            vals = np.where(ok, row[None, :] + rank, -1.0)[:, ::-1]
            best = len(gc) - 1 - vals.argmax(1)
            tp[k], ig[k] = has & ~gci[best], has & gci[best]
            matched[np.flatnonzero(has), best[has]] = True
    ig |= ~tp & ~ig & d_out[:, None]  # unmatched and outside the size range
    nt = np.bincount(g[~g_ig, 0].astype(np.int64), minlength=nc)
    return d[keep, 5].astype(np.int64), d[keep, 4], tp[keep], ig[keep], nt


@dataclass
class DetectionMetrics:
    """Per-class results; per-class arrays are NaN for classes without GT (left out of means).

    ``precision`` (nc, 10, 101) is COCO's interpolated precision per IoU threshold and recall
    point; ``recall`` (nc, 10) the final recall per IoU threshold. ``p``/``r``/``f1`` (nc,) are
    read at ``conf`` (the max smoothed mean-F1 confidence) from the IoU 0.5 matches; the curves
    (nc, 1000) run over ``CONF_GRID``.
    """

    nt: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    p: np.ndarray
    r: np.ndarray
    f1: np.ndarray
    conf: float
    p_curve: np.ndarray
    r_curve: np.ndarray
    f1_curve: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """(nc,) bool: classes with at least one GT."""
        return self.nt > 0

    @property
    def ap(self) -> np.ndarray:
        """(nc, 10) AP per class per IoU threshold."""
        return self.precision.mean(2)

    @property
    def ap50(self) -> np.ndarray:
        """(nc,) AP@0.5 per class."""
        return self.ap[:, 0]

    @property
    def ap50_95(self) -> np.ndarray:
        """(nc,) AP@0.5:0.95 per class."""
        return self.ap.mean(1)

    def _mean(self, x: np.ndarray) -> float:
        return float(x[self.valid].mean()) if self.valid.any() else 0.0  # no GT at all: 0 as YOLOv5

    @property
    def mp(self) -> float:
        return self._mean(self.p)

    @property
    def mr(self) -> float:
        return self._mean(self.r)

    @property
    def map50(self) -> float:
        """COCOeval stats[1]."""
        return self._mean(self.ap50)

    @property
    def map75(self) -> float:
        """COCOeval stats[2], mAP@0.75."""
        return self._mean(self.ap[:, 5])

    @property
    def map(self) -> float:
        """COCOeval stats[0], mAP@0.5:0.95."""
        return self._mean(self.ap50_95)

    def table(self, names: Sequence[str] | None = None) -> str:
        """A YOLOv5-style per-class table (classes with GT only)."""
        names = list(names) if names is not None else [str(i) for i in range(len(self.nt))]
        rows = [f"{'class':>20}{'labels':>10}{'P':>10}{'R':>10}{'mAP50':>10}{'mAP50-95':>10}",
                f"{'all':>20}{int(self.nt.sum()):>10}{self.mp:>10.3g}{self.mr:>10.3g}"
                f"{self.map50:>10.3g}{self.map:>10.3g}"]
        for c in np.flatnonzero(self.valid):
            rows.append(f"{names[c]:>20}{int(self.nt[c]):>10}{self.p[c]:>10.3g}{self.r[c]:>10.3g}"
                        f"{self.ap50[c]:>10.3g}{self.ap50_95[c]:>10.3g}")
        return "\n".join(rows)


def _smooth(y: np.ndarray, f: float = 0.1) -> np.ndarray:
    """Box filter of fractional width ``f`` with edge padding (YOLOv5's ``smooth``)."""
    nf = round(len(y) * f * 2) // 2 + 1
    p = np.ones(nf // 2)
    return np.convolve(np.concatenate((p * y[0], y, p * y[-1])), np.ones(nf) / nf, mode="valid")


def accumulate(cls: np.ndarray, scores: np.ndarray, tp: np.ndarray, nt: np.ndarray,
               ig: np.ndarray | None = None) -> DetectionMetrics:
    """COCOeval's ``accumulate`` plus YOLOv5's P/R/F1 curves.

    cls (n,), scores (n,), tp (n, 10), ig (n, 10) (None: nothing ignored): the ``match_image``
    outputs of all images concatenated in image order; nt (nc,) GT counts per class (not ignored).
    An ignored detection counts neither as a true nor as a false positive at that threshold.
    """
    fp = ~tp if ig is None else ~tp & ~ig
    nc, n_t, n_r = len(nt), len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = np.full((nc, n_t, n_r), np.nan)
    recall = np.full((nc, n_t), np.nan)
    p_curve, r_curve = np.zeros((nc, len(CONF_GRID))), np.zeros((nc, len(CONF_GRID)))
    for c in np.flatnonzero(nt > 0):
        i = np.flatnonzero(cls == c)
        i = i[np.argsort(-scores[i], kind="mergesort")]  # image order breaks score ties, as COCO
        tpc = np.cumsum(tp[i], 0, dtype=np.float64)  # (k, T)
        fpc = np.cumsum(fp[i], 0, dtype=np.float64)
        rc = tpc / nt[c]
        pr = tpc / (tpc + fpc + np.spacing(1))
        precision[c] = 0.0
        recall[c] = rc[-1] if len(i) else 0.0
        if not len(i):
            continue
        pr_mono = np.maximum.accumulate(pr[::-1], 0)[::-1]  # COCO's right-to-left max loop
        for t in range(n_t):
            idx = np.searchsorted(rc[:, t], RECALL_THRESHOLDS, side="left")
            precision[c, t] = np.where(idx < len(i), pr_mono[np.minimum(idx, len(i) - 1), t], 0.0)
        # P and R as functions of the confidence threshold at IoU 0.5 (YOLOv5 ap_per_class).
        conf = scores[i]
        r_curve[c] = np.interp(-CONF_GRID, -conf, tpc[:, 0] / (nt[c] + _EPS), left=0)
        counted = tpc[:, 0] + fpc[:, 0]  # 0 while only ignored detections (a size range) were seen
        prec = np.divide(tpc[:, 0], counted, out=np.ones_like(counted), where=counted > 0)
        p_curve[c] = np.interp(-CONF_GRID, -conf, prec, left=1)
    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + _EPS)
    valid = nt > 0
    j = int(_smooth(f1_curve[valid].mean(0)).argmax()) if valid.any() else 0
    nan = np.where(valid, 1.0, np.nan)
    return DetectionMetrics(nt=np.asarray(nt), precision=precision, recall=recall, p=p_curve[:, j] * nan,
                            r=r_curve[:, j] * nan, f1=f1_curve[:, j] * nan, conf=float(CONF_GRID[j]),
                            p_curve=p_curve, r_curve=r_curve, f1_curve=f1_curve)


class DetectionEvaluator:
    """Streaming evaluation: ``update`` once per image (matches are computed then, so only scores
    and flags are kept), ``compute`` at the end. ``area`` (lo, hi) px^2 scores one box size only
    (``match_image``; ``COCO_AREAS`` holds COCO's)."""

    def __init__(self, nc: int, max_dets: int = 100, area: tuple[float, float] | None = None):
        if nc < 1:
            raise ValueError(f"nc must be >= 1, got {nc}")
        if max_dets < 1:
            raise ValueError(f"max_dets must be >= 1, got {max_dets}")
        self.nc, self.max_dets, self.area = nc, max_dets, area
        self.reset()

    def reset(self) -> None:
        # per image: classes, scores, true-positive and ignored flags, GT counts per class (for resampling)
        self._per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._nt = np.zeros(self.nc, dtype=np.int64)

    def update(self, dets: np.ndarray, gts: np.ndarray) -> None:
        """One image: dets (n, 6) = x1, y1, x2, y2, conf, cls; gts (m, 5) = cls, x1, y1, x2, y2."""
        matches = match_image(dets, gts, self.nc, self.max_dets, self.area)
        self._per_image.append(matches)
        self._nt += matches[4]

    @property
    def n_images(self) -> int:
        return len(self._per_image)

    def _accumulate(self, idx: Sequence[int] | np.ndarray) -> DetectionMetrics:
        n_t = len(IOU_THRESHOLDS)
        parts = [self._per_image[i] for i in idx]
        if not parts:
            flags = np.zeros((0, n_t), dtype=bool)
            return accumulate(np.zeros(0, dtype=np.int64), np.zeros(0), flags, self._nt, flags)
        cls, scores, tp, ig, nt = zip(*parts)
        return accumulate(np.concatenate(cls), np.concatenate(scores), np.concatenate(tp), np.sum(nt, axis=0),
                          np.concatenate(ig))

    def compute(self) -> DetectionMetrics:
        return self._accumulate(range(self.n_images))

    def resample(self, idx: np.ndarray) -> DetectionMetrics:
        """The metrics of images ``idx`` (indices in ``update`` order, repeats allowed): one bootstrap draw."""
        if len(idx) == 0:
            raise ValueError("resample needs at least one image index")
        return self._accumulate(idx)


def paired_bootstrap(a: DetectionEvaluator, b: DetectionEvaluator, n: int = 200, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile interval (``level``) of mAP@0.5:0.95(a) - mAP@0.5:0.95(b) (fractions) over images
    drawn with replacement, the same draw for both: how much of a measured drop the validation set's
    size alone could explain. Why hand-written: pycocotools and faster-coco-eval have no resampling,
    and the per-image matches are already here. Raises ValueError unless both saw the same images."""
    if a.n_images != b.n_images or a.n_images == 0:
        raise ValueError(f"paired bootstrap needs the same, non-empty image list, got {a.n_images} and {b.n_images}")
    if not 0 < level < 1 or n < 2:
        raise ValueError(f"level must be in (0, 1) and n >= 2, got {level}, {n}")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        idx = rng.integers(0, a.n_images, a.n_images)
        diffs.append(np.nan_to_num(a.resample(idx).map) - np.nan_to_num(b.resample(idx).map))
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def evaluate_detections(dets: Sequence[np.ndarray], gts: Sequence[np.ndarray], nc: int,
                        max_dets: int = 100, area: tuple[float, float] | None = None) -> DetectionMetrics:
    """All images at once: ``dets[i]`` (n_i, 6) and ``gts[i]`` (m_i, 5) for image i; ``area`` as
    ``DetectionEvaluator``'s."""
    if len(dets) != len(gts):
        raise ValueError(f"dets and gts must list the same images, got {len(dets)} and {len(gts)}")
    ev = DetectionEvaluator(nc, max_dets, area)
    for d, g in zip(dets, gts):
        ev.update(d, g)
    return ev.compute()
