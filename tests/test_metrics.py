"""COCO metrics: parity with pycocotools, hand-computed per-class values, confusion matrix, plots."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgeyolo.ops.confusion import ConfusionMatrix
from edgeyolo.ops.metrics import COCO_AREAS, DetectionEvaluator, evaluate_detections, paired_bootstrap


def _random_case(seed: int, n_img: int = 8, nc: int = 5, ties: bool = False):
    """Images with GTs of classes 0..3 (class nc-1 never has GT), detections jittered around the
    GTs (often the right class) plus random boxes; every 4th image has no detections."""
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for i in range(n_img):
        m = int(rng.integers(0, 8))
        xy, wh = rng.uniform(0, 200, (m, 2)), rng.uniform(5, 60, (m, 2))
        gcls = rng.choice(np.arange(nc - 1), m)
        gts.append(np.column_stack([gcls, xy, xy + wh]))
        k = int(rng.integers(0, 3 * m + 5)) if i % 4 else 0
        if m:
            src = rng.integers(0, m, k)
            dxy, dwh = xy[src] + rng.normal(0, 3, (k, 2)), wh[src] * rng.uniform(0.8, 1.2, (k, 2))
            dcls = np.where(rng.uniform(size=k) < 0.8, gcls[src], rng.integers(0, nc, k))
        else:
            dxy, dwh, dcls = rng.uniform(0, 200, (k, 2)), rng.uniform(5, 60, (k, 2)), rng.integers(0, nc, k)
        nr = int(rng.integers(0, 5)) if k else 0
        rxy, rwh = rng.uniform(0, 200, (nr, 2)), rng.uniform(5, 60, (nr, 2))
        d = np.concatenate([np.column_stack([dxy, dxy + dwh, rng.uniform(0, 1, k), dcls]),
                            np.column_stack([rxy, rxy + rwh, rng.uniform(0, 1, nr), rng.integers(0, nc, nr)])])
        if ties:
            d[:, 4] = np.round(d[:, 4], 1)  # many equal scores: tie order matters
        dets.append(d)
    if ties:  # > maxDets=100 detections of one class in one image, some with negative width
        g = gts[1] if len(gts[1]) else gts[2]
        g = g[g[:, 0] == g[0, 0]]  # the GTs of one class
        extra = np.column_stack([g[:, 1:], np.zeros(len(g)), g[:, 0]])[rng.integers(0, len(g), 150)]
        extra[:, :4] += rng.normal(0, 3, (len(extra), 4))
        extra[:, 4] = np.round(rng.uniform(0, 1, len(extra)), 1)
        extra[::7, 2] = extra[::7, 0] - 1  # negative width: negative area, ignored by COCO
        extra[::11, 2:4] = extra[::11, 0:2] - 1  # both sides negative: positive area, a false positive
        dets[1] = np.concatenate([dets[1], extra])
    return dets, gts, nc


def _coco_eval(dets, gts, nc) -> COCOeval:
    """pycocotools on in-memory COCO objects (xywh boxes, 1-based ids, categories 1..nc)."""
    anns = [{"id": k + 1, "image_id": i + 1, "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
             "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            for k, (i, (c, x1, y1, x2, y2)) in enumerate((i, row) for i, g in enumerate(gts) for row in g)]
    gt = COCO()
    gt.dataset = {"images": [{"id": i + 1} for i in range(len(gts))], "annotations": anns,
                  "categories": [{"id": c + 1, "name": str(c)} for c in range(nc)]}
    res = [{"image_id": i + 1, "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
           for i, d in enumerate(dets) for x1, y1, x2, y2, s, c in d]
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        e = COCOeval(gt, gt.loadRes(res), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


@pytest.mark.parametrize("seed,ties", [(0, False), (1, False), (2, False), (3, True), (4, True), (5, True)])
def test_parity_with_pycocotools(seed, ties):
    dets, gts, nc = _random_case(seed, ties=ties)
    e = _coco_eval(dets, gts, nc)
    m = evaluate_detections(dets, gts, nc)
    assert m.map == pytest.approx(e.stats[0], abs=1e-4)
    assert m.map50 == pytest.approx(e.stats[1], abs=1e-4)
    assert m.map75 == pytest.approx(e.stats[2], abs=1e-4)
    assert 0.05 < m.map50 < 0.95  # a case that exercises both matches and misses
    # per class: COCO's precision array (T, R, K) with -1 where a class has no GT
    ref = e.eval["precision"][:, :, :, 0, -1].transpose(2, 0, 1)
    np.testing.assert_allclose(np.where(np.isnan(m.precision), -1, m.precision), ref, atol=1e-9)
    np.testing.assert_allclose(np.where(np.isnan(m.recall), -1, m.recall), e.eval["recall"][:, :, 0, -1].T, atol=1e-9)
    assert not m.valid[nc - 1] and np.isnan(m.ap50[nc - 1])  # no GT: left out


@pytest.mark.parametrize("seed,ties", [(0, False), (6, False), (3, True), (6, True)])
def test_area_ranges_match_pycocotools(seed, ties):
    """APs / APm / APl: GTs outside the range ignored, detections on them or unmatched outside it too."""
    dets, gts, nc = _random_case(seed, ties=ties)
    dets = [np.column_stack([d[:, :4] * 3, d[:, 4:]]) for d in dets]  # sides 15-180 px: all three sizes
    gts = [np.column_stack([g[:, :1], g[:, 1:] * 3]) for g in gts]
    e = _coco_eval(dets, gts, nc)
    for a, (name, rng) in enumerate(COCO_AREAS.items(), start=1):  # COCO's areaRng index (0 is "all")
        m = evaluate_detections(dets, gts, nc, area=rng)
        assert m.map == pytest.approx(max(e.stats[2 + a], 0.0), abs=1e-4), name
        ref = e.eval["precision"][:, :, :, a, -1].transpose(2, 0, 1)
        np.testing.assert_allclose(np.where(np.isnan(m.precision), -1, m.precision), ref, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(np.where(np.isnan(m.recall), -1, m.recall), e.eval["recall"][:, :, a, -1].T,
                                   atol=1e-9, err_msg=name)
    exercised = [0 < e.stats[k] < 1 for k in (3, 4, 5)]  # a range with both matches and misses
    assert all(exercised) if seed == 6 else sum(exercised) >= 2
    with pytest.raises(ValueError, match="lo <= hi"):
        evaluate_detections(dets, gts, nc, area=(10.0, 1.0))


def test_perfect_detections():
    dets, gts, nc = _random_case(7)
    perfect = [np.column_stack([g[:, 1:], np.linspace(0.9, 0.5, len(g)), g[:, 0]]) for g in gts]
    m = evaluate_detections(perfect, gts, nc)
    assert m.map50 == pytest.approx(1.0) and m.map == pytest.approx(1.0)
    assert m.mp == pytest.approx(1.0) and m.mr == pytest.approx(1.0)
    np.testing.assert_allclose(m.ap50[m.valid], 1.0)
    assert m.nt.sum() == sum(len(g) for g in gts)


def test_per_class_hand_computed():
    # class 0: 2 GTs, a perfect det (0.9) and a false positive (0.8):
    #   recall 0.5 at precision 1 -> 51 of the 101 recall points (0.00..0.50) at 1 -> AP 51/101 at every IoU.
    # class 1: 1 GT, one det of IoU 0.62 -> TP at IoU 0.50, 0.55, 0.60 only -> AP50 1, AP50:95 0.3.
    # class 2: no GT, one det -> NaN, left out of the means.
    gts = [np.array([[0, 0, 0, 10, 10], [1, 50, 50, 60, 60]], float), np.array([[0, 100, 100, 120, 120]], float)]
    dets = [np.array([[0, 0, 10, 10, 0.9, 0], [200, 200, 210, 210, 0.8, 0], [50, 50, 60, 56.2, 0.7, 1]]),
            np.array([[0, 0, 5, 5, 0.6, 2]])]
    m = evaluate_detections(dets, gts, nc=3)
    np.testing.assert_allclose(m.ap50[:2], [51 / 101, 1.0])
    np.testing.assert_allclose(m.ap50_95[:2], [51 / 101, 0.3])
    assert np.isnan(m.ap50[2]) and not m.valid[2]
    assert m.map50 == pytest.approx((51 / 101 + 1) / 2)
    assert m.map == pytest.approx((51 / 101 + 0.3) / 2)
    np.testing.assert_array_equal(m.nt, [2, 1, 0])
    e = _coco_eval(dets, gts, 3)
    assert m.map == pytest.approx(e.stats[0], abs=1e-9) and m.map50 == pytest.approx(e.stats[1], abs=1e-9)
    # P, R at the max mean-F1 confidence: below conf 0.7 class 0 is at P 0.5, R 0.5 (F1 0.5) and
    # class 1 at P 1, R 1 (mean F1 0.75); above 0.7 class 1 has no detection (mean F1 <= 0.67).
    assert 0.0 <= m.conf < 0.7
    np.testing.assert_allclose(m.p[:2], [0.5, 1.0])
    np.testing.assert_allclose(m.r[:2], [0.5, 1.0])
    np.testing.assert_allclose(m.f1[:2], [0.5, 1.0], atol=1e-12)
    assert np.isnan(m.p[2])


def test_max_dets_and_empty_inputs():
    gts = [np.array([[0, 0, 0, 10, 10]], float)]
    # 100 higher-scored misses push the only hit out of maxDets=100
    misses = np.column_stack([np.full((100, 2), 50.0), np.full((100, 2), 60.0), np.linspace(0.99, 0.5, 100), np.zeros(100)])
    hit = np.array([[0, 0, 10, 10, 0.1, 0]])
    assert evaluate_detections([np.concatenate([misses, hit])], gts, 1).map50 == 0.0
    assert evaluate_detections([np.concatenate([misses, hit])], gts, 1, max_dets=101).map50 > 0.0
    ev = DetectionEvaluator(nc=2)
    m = ev.compute()
    assert m.map == 0.0 and m.map50 == 0.0 and not m.valid.any()
    ev.update(np.zeros((0, 6)), np.zeros((0, 5)))
    ev.update(np.zeros((0, 6)), gts[0])
    assert ev.compute().map50 == 0.0 and ev.compute().nt.tolist() == [1, 0]


def test_value_errors():
    with pytest.raises(ValueError, match=r"detection classes must be in \[0, 1\], got 2..2"):
        evaluate_detections([np.array([[0, 0, 1, 1, 0.5, 2.0]])], [np.zeros((0, 5))], nc=2)
    with pytest.raises(ValueError, match=r"ground-truth classes must be in \[0, 1\]"):
        evaluate_detections([np.zeros((0, 6))], [np.array([[-1, 0, 0, 1, 1.0]])], nc=2)
    with pytest.raises(ValueError, match="x2 >= x1 and y2 >= y1"):
        evaluate_detections([np.zeros((0, 6))], [np.array([[0, 5, 0, 1, 1.0]])], nc=2)
    with pytest.raises(ValueError, match="same images, got 1 and 2"):
        evaluate_detections([np.zeros((0, 6))], [np.zeros((0, 5))] * 2, nc=2)


def test_confusion_matrix_hand_built():
    cm = ConfusionMatrix(nc=3)  # conf 0.25, IoU 0.45
    gts = np.array([[0, 0, 0, 10, 10], [1, 20, 20, 30, 30], [2, 50, 50, 60, 60]], float)
    dets = np.array([[0, 0, 10, 10, 0.9, 0],  # GT 0, right class
                     [21, 21, 30, 30, 0.8, 2],  # GT 1 (IoU 0.81), wrong class
                     [100, 100, 110, 110, 0.7, 1],  # nothing: background FP
                     [0, 0, 10, 10, 0.1, 1],  # below conf: ignored
                     [1, 1, 10, 10, 0.5, 0]])  # GT 0 again, already taken by the better det: FP
    cm.update(dets, gts)
    expected = np.zeros((4, 4), int)
    expected[0, 0] = 1  # [pred, true]
    expected[2, 1] = 1
    expected[3, 2] = 1  # GT 2 missed
    expected[1, 3] = 1
    expected[0, 3] = 1
    np.testing.assert_array_equal(cm.matrix, expected)
    tp, fp = cm.tp_fp()
    np.testing.assert_array_equal(tp, [1, 0, 0])
    np.testing.assert_array_equal(fp, [1, 1, 1])
    cm.update(np.zeros((0, 6)), gts[:1])
    assert cm.matrix[3, 0] == 1
    np.testing.assert_allclose(cm.normalized().sum(0), [1, 1, 1, 1])


def test_plots_write_pngs(tmp_path):
    from edgeyolo.ops import plots

    dets, gts, nc = _random_case(0)
    m = evaluate_detections(dets, gts, nc)
    cm = ConfusionMatrix(nc)
    for d, g in zip(dets, gts):
        cm.update(d, g)
    csv_path = tmp_path / "results.csv"
    rows = [",".join(f"{c:>20}" for c in plots.RESULTS_COLUMNS)]
    rows += [",".join(str(v) for v in [e, 10.0 * e, *np.linspace(1, 0, 13) / (e + 1)]) for e in range(5)]
    csv_path.write_text("\n".join(rows) + "\n")
    labels = np.column_stack([np.arange(40) % nc, np.random.default_rng(0).uniform(0.05, 0.9, (40, 4))])
    written = [plots.plot_pr_curve(m, tmp_path / "PR_curve.png"),
               plots.plot_conf_curve(m, tmp_path / "F1_curve.png"),
               plots.plot_confusion_matrix(cm, tmp_path / "confusion_matrix.png", names=list("abcde")),
               plots.plot_results(csv_path),
               plots.plot_labels(labels, tmp_path / "labels.png", nc=nc)]
    assert written[3] == tmp_path / "results.png"
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    csv_path.write_text("epoch,time\n0,1\n")
    with pytest.raises(ValueError, match="missing column"):
        plots.plot_results(csv_path)


def _evaluator(dets, gts, nc) -> DetectionEvaluator:
    ev = DetectionEvaluator(nc)
    for d, g in zip(dets, gts):
        ev.update(d, g)
    return ev


def test_resample_of_every_image_is_compute_and_repeats_count_twice():
    dets, gts, nc = _random_case(3, n_img=12)
    ev = _evaluator(dets, gts, nc)
    full = ev.compute()
    again = ev.resample(np.arange(12))
    assert again.map == full.map and again.map50 == full.map50 and again.nt.tolist() == full.nt.tolist()
    twice = _evaluator(dets + dets[:3], gts + gts[:3], nc).compute()  # images 0-2 listed again
    assert ev.resample(np.r_[np.arange(12), 0, 1, 2]).map == pytest.approx(twice.map, abs=1e-12)


def test_paired_bootstrap_interval():
    dets, gts, nc = _random_case(5, n_img=40)
    ev = _evaluator(dets, gts, nc)
    assert paired_bootstrap(ev, ev, n=50) == (0.0, 0.0)  # a model against itself: no drop in any draw
    # a worse model: every other image loses its detections
    worse = _evaluator([d if i % 2 else d[:0] for i, d in enumerate(dets)], gts, nc)
    drop = ev.compute().map - worse.compute().map
    lo, hi = paired_bootstrap(ev, worse, n=200)
    assert 0 < lo < drop < hi
    lo_few, hi_few = paired_bootstrap(_evaluator(dets[:10], gts[:10], nc),
                                      _evaluator([d if i % 2 else d[:0] for i, d in enumerate(dets[:10])], gts[:10], nc))
    assert hi_few - lo_few > hi - lo  # fewer images, wider interval
    with pytest.raises(ValueError, match="same, non-empty image list, got 40 and 10"):
        paired_bootstrap(ev, _evaluator(dets[:10], gts[:10], nc))
