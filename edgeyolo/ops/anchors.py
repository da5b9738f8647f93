"""Anchor fit and anchor evolution (PyTorch_YOLOv4 u5 / YOLOv5 ``autoanchor``), in numpy.

A target can only be learned by an anchor whose width and height ratios to it are both within
``thr`` (the loss's ``anchor_t``, 4.0): a level's anchors 8 times larger than every object of a
dataset never see a positive. The default anchors are COCO's at 640 px; a user's own data (small
objects, a 320 px input, aerial views) may not fit them. :func:`anchor_fit` measures the fit,
:func:`evolve_anchors` computes anchors that fit.

Sizes are ``(n, 2)`` widths and heights in input pixels; anchors are ``(k, 2)`` in the same units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BPR_OK = 0.98  # u5's autoanchor keeps anchors that let more than 98 % of the targets match one
# A target that matches one anchor is learned by at most 3 cells (the loss takes its cell and two
# neighbours per matched anchor), against up to 18 for one that matches six. COCO's anchors pass
# u5's check on a set of small objects (craters of 4-78 px at 320: 99.6 %) while 14.5 % of its
# targets match only one (the three other real sets and the synthetic one: none); anchors evolved
# for it ended 3 crater seeds at 0.366 / 0.158 mAP against 0.332 / 0.144 at 60 epochs
# (benchmarks/results/cpu-amd-epyc-avx2/recipe-trials/README.md). One set: the threshold is a guess.
ONE_MATCH_OK = 0.05  # autoanchor also evolves anchors when more of the targets than this match at most one
MIN_WH = 2.0  # labels smaller than this (pixels, both sides) are left out of the k-means


@dataclass(frozen=True)
class AnchorFit:
    """``bpr``: best possible recall, the fraction of targets that at least one anchor can match;
    ``aat``: anchors above threshold, the mean number of anchors each target matches;
    ``fitness``: the mean over targets of the best anchor's worse side ratio, 0 for a target no
    anchor matches (what anchor evolution maximises: how closely the nearest anchor fits);
    ``one_match``: the fraction of targets that match at most one anchor."""

    bpr: float
    aat: float
    fitness: float = 0.0
    one_match: float = 0.0

    def problem(self) -> str:
        """Why autoanchor's check evolves new anchors for this fit ("": it does not)."""
        if self.bpr <= BPR_OK:
            return f"best possible recall {self.bpr:.4f}, under {BPR_OK}"
        if self.one_match > ONE_MATCH_OK:
            return f"{self.one_match:.1%} of the targets match at most one anchor, over {ONE_MATCH_OK:.0%}"
        return ""


def label_sizes(labels: Sequence[np.ndarray], shapes: np.ndarray, imgsz: int,
                scale: np.ndarray | None = None) -> np.ndarray:
    """Per-image labels ``[(n_i, 5) cls cx cy w h]`` (normalised) and ``shapes`` (N, 2) original
    height, width -> (sum n_i, 2) box width, height in pixels of the image letterboxed to a long
    side of ``imgsz``. ``scale`` (N,) multiplies each image (the augmentation's zoom)."""
    shapes = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)
    if len(shapes) != len(labels):
        raise ValueError(f"{len(labels)} label arrays for {len(shapes)} image shapes")
    if imgsz < 1:
        raise ValueError(f"imgsz must be >= 1, got {imgsz}")
    wh_img = imgsz * shapes[:, ::-1] / shapes.max(1, keepdims=True)  # (N, 2) letterboxed w, h
    if scale is not None:
        wh_img = wh_img * np.asarray(scale, dtype=np.float64).reshape(-1, 1)
    sizes = [np.asarray(lb, dtype=np.float64).reshape(-1, 5)[:, 3:5] * s for s, lb in zip(wh_img, labels)]
    return np.concatenate(sizes) if sizes else np.zeros((0, 2))


def _ratio_metric(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(n, 2) sizes, (k, 2) anchors -> (n, k) the worse of the two side ratios, in (0, 1]."""
    r = wh[:, None] / anchors[None]  # (n, k, 2)
    return np.minimum(r, 1 / r).min(2)


def anchor_fit(wh: np.ndarray, anchors: np.ndarray, thr: float = 4.0) -> AnchorFit:
    """How well ``anchors`` (k, 2) cover the target sizes ``wh`` (n, 2) at the loss's ratio
    threshold ``thr`` (> 1)."""
    if thr <= 1:
        raise ValueError(f"thr (anchor_t) must be > 1, got {thr}")
    wh, anchors = np.asarray(wh, np.float64).reshape(-1, 2), np.asarray(anchors, np.float64).reshape(-1, 2)
    if not len(wh):
        return AnchorFit(1.0, 0.0, 1.0, 0.0)
    x = _ratio_metric(np.maximum(wh, 1e-9), anchors)  # (n, k)
    best, matches = x.max(1), (x > 1 / thr).sum(1)
    return AnchorFit(float((best > 1 / thr).mean()), float(matches.mean()), _best_ratio_mean(best, thr),
                     float((matches <= 1).mean()))


def anchor_matches(wh: np.ndarray, anchors: np.ndarray, thr: float = 4.0) -> np.ndarray:
    """(n,) how many of ``anchors`` (k, 2) each size of ``wh`` (n, 2) matches: both side ratios
    within ``thr``, the loss's rule."""
    wh, anchors = np.asarray(wh, np.float64).reshape(-1, 2), np.asarray(anchors, np.float64).reshape(-1, 2)
    return (_ratio_metric(np.maximum(wh, 1e-9), anchors) > 1 / thr).sum(1)


def _best_ratio_mean(best: np.ndarray, thr: float) -> float:
    """The fitness: the mean best ratio (n,), a target no anchor matches counting 0."""
    return float((best * (best > 1 / thr)).mean())


def _fitness(wh: np.ndarray, anchors: np.ndarray, thr: float) -> float:
    """YOLOv5's anchor fitness: the mean best ratio over targets, counting only matchable ones."""
    return _best_ratio_mean(_ratio_metric(wh, anchors).max(1), thr)


def evolve_anchors(wh: np.ndarray, n: int, thr: float = 4.0, generations: int = 1000,
                   seed: int = 0) -> np.ndarray:
    """Anchors for target sizes ``wh`` (n_t, 2): k-means on the whitened sizes (scipy), then
    ``generations`` rounds of multiplicative mutation kept when they raise the fitness (YOLOv5's
    genetic step). Returns (n, 2) anchors sorted by area, smallest first (level P3 first).

    Raises ``ValueError`` when fewer than ``n`` targets are at least ``MIN_WH`` pixels wide or high.
    """
    from scipy.cluster.vq import kmeans  # the k-means u5 uses; imported here, only training needs it

    if n < 1:
        raise ValueError(f"n (anchors) must be >= 1, got {n}")
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    wh = wh[(wh >= MIN_WH).any(1)]
    if len(wh) < n:
        raise ValueError(f"{len(wh)} labels of >= {MIN_WH:g} px: too few to fit {n} anchors")
    rng = np.random.default_rng(seed)
    sigma = wh.std(0)
    sigma[sigma == 0] = 1.0  # all sizes equal on one side: nothing to whiten
    k = kmeans(wh / sigma, n, iter=30, seed=rng)[0] * sigma
    if len(k) != n:  # k-means collapsed duplicate centroids (few distinct sizes): YOLOv5's fallback
        k = np.sort(rng.random((n, 2)), 0) * wh.max(0)
    k = np.maximum(k, MIN_WH)
    f = _fitness(wh, k, thr)
    mutation_prob, sd = 0.9, 0.1
    for _ in range(generations):
        v = np.ones_like(k)
        while (v == 1).all():  # mutate until something changes
            v = ((rng.random(k.shape) < mutation_prob) * rng.random() * rng.standard_normal(k.shape) * sd + 1)
            v = v.clip(0.3, 3.0)
        kg = np.maximum(k * v, MIN_WH)
        fg = _fitness(wh, kg, thr)
        if fg > f:
            f, k = fg, kg
    return k[np.argsort(k.prod(1))]
