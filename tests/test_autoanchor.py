"""Autoanchor: the anchor fit metric, anchor evolution, and the trainer replacing anchors that do
not fit the labels (in the weights and in the checkpoint's config, kept across a resume)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import load_model, read_checkpoint
from edgeyolo.ops.anchors import anchor_fit, evolve_anchors, label_sizes
from edgeyolo.train.autoanchor import check_anchors
from edgeyolo.train.trainer import Trainer

from conftest import TINY_MODEL, train_config

CENTRES = np.array([[8, 10], [16, 30], [30, 20], [40, 80], [70, 50], [70, 140], [140, 110], [190, 240],
                    [400, 350]], dtype=float)


def _clusters(seed: int = 1, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c * np.exp(rng.normal(0, 0.05, (n, 2))) for c in CENTRES])


def test_anchor_fit_by_hand():
    anchors = np.array([[10.0, 10.0], [40.0, 40.0]])
    wh = np.array([[10.0, 10.0], [50.0, 50.0], [30.0, 10.0], [100.0, 10.0], [20.0, 20.0]])
    # worst side ratio to each anchor (a match needs > 1/4): (1, 1/4) (1/5, 4/5) (1/3, 1/4) (1/10, 1/4) (1/2, 1/2)
    fit = anchor_fit(wh, anchors, thr=4.0)
    assert fit.bpr == pytest.approx(4 / 5)  # [100, 10] matches neither anchor
    assert fit.aat == pytest.approx((1 + 1 + 1 + 0 + 2) / 5)
    assert anchor_fit(wh, anchors, thr=3.0).bpr == pytest.approx(3 / 5)  # 1/3 is no longer above 1/3


def test_anchor_fit_bounds_and_errors():
    assert anchor_fit(np.zeros((0, 2)), CENTRES).bpr == 1.0  # no labels: nothing to miss
    assert anchor_fit(CENTRES, CENTRES).bpr == 1.0
    assert anchor_fit(CENTRES / 10, CENTRES[-1:]).bpr == 0.0
    with pytest.raises(ValueError, match="must be > 1"):
        anchor_fit(CENTRES, CENTRES, thr=1.0)


def test_label_sizes_letterbox_orientation_and_scale():
    labels = [np.array([[0, 0.5, 0.5, 0.5, 0.25]]), np.array([[1, 0.5, 0.5, 0.1, 0.1], [2, 0.5, 0.5, 1.0, 1.0]])]
    shapes = np.array([[100, 200], [300, 150]])  # (h, w): a wide and a tall image
    wh = label_sizes(labels, shapes, imgsz=400)  # letterboxed to 400x200 (w, h) and 200x400
    np.testing.assert_allclose(wh, [[200, 50], [20, 40], [200, 400]])
    np.testing.assert_allclose(label_sizes(labels, shapes, 400, scale=np.array([0.5, 2.0])),
                               [[100, 25], [40, 80], [400, 800]])
    with pytest.raises(ValueError, match="2 label arrays for 1 image shapes"):
        label_sizes(labels, shapes[:1], 400)


def test_evolve_recovers_clusters_sorted_and_seeded():
    wh = _clusters()
    k = evolve_anchors(wh, 9, thr=4.0, generations=300, seed=0)
    assert np.all(np.diff(k.prod(1)) > 0)  # smallest first: P3's anchors, then P4's, P5's
    np.testing.assert_allclose(k, CENTRES, rtol=0.04)
    np.testing.assert_array_equal(k, evolve_anchors(wh, 9, thr=4.0, generations=300, seed=0))
    with pytest.raises(ValueError, match="3 labels of >= 2 px: too few to fit 9 anchors"):
        evolve_anchors(np.array([[5.0, 5.0], [1.0, 1.0], [6.0, 7.0], [9.0, 1.0]]), 9)


def test_evolution_raises_fit_of_kmeans_start():
    # sizes spread wider than one anchor set covers at a tight threshold: the genetic step must not lose fit
    rng = np.random.default_rng(0)
    wh = np.exp(rng.uniform(np.log(2), np.log(600), (3000, 2)))
    start, evolved = (evolve_anchors(wh, 9, thr=2.0, generations=g, seed=0) for g in (0, 300))
    assert anchor_fit(wh, evolved, 2.0).bpr >= anchor_fit(wh, start, 2.0).bpr - 1e-9


def _labels_for(wh_px: np.ndarray, imgsz: int) -> tuple[list[np.ndarray], np.ndarray]:
    """One square ``imgsz`` image per box of ``wh_px`` pixels."""
    labels = [np.array([[0, 0.5, 0.5, w / imgsz, h / imgsz]]) for w, h in wh_px]
    return labels, np.full((len(labels), 2), imgsz)


def test_check_anchors_keeps_fitting_anchors():
    model = build_model(str(TINY_MODEL))
    before = model.head.anchors.clone()
    labels, shapes = _labels_for(before.reshape(-1, 2).numpy().repeat(20, 0), 640)
    found = check_anchors(model, labels, shapes, 640, thr=4.0)
    assert not found.changed and found.fit.bpr == 1.0 and found.new is None
    assert torch.equal(model.head.anchors, before)
    assert "the anchors fit the data" in found.message(640, model.head.anchors)


def test_check_anchors_replaces_poor_anchors_in_weights_and_config():
    model = build_model(str(TINY_MODEL))
    labels, shapes = _labels_for(_clusters(n=30) / 8, 96)  # 1-50 px objects at 96 px: P5's anchors never match
    found = check_anchors(model, labels, shapes, 96, thr=4.0, generations=200)
    assert found.changed and found.fit.bpr < 0.98 and found.new.bpr > found.fit.bpr
    flat = model.head.anchors.reshape(-1, 2)
    assert torch.all(flat.prod(1).diff() > 0)  # ordered by area across P3 -> P5
    assert "new anchors reach" in found.message(96, model.head.anchors)
    rebuilt = build_model(model.cfg)  # the config alone now gives the same anchors
    assert torch.equal(rebuilt.head.anchors, model.head.anchors)
    with pytest.raises(ValueError, match=r"has \(3, 3, 2\) anchors"):
        model.set_anchors(torch.ones(4, 2))


def test_check_anchors_too_few_labels_keeps_config():
    model = build_model(str(TINY_MODEL))
    before = model.head.anchors.clone()
    labels, shapes = _labels_for(np.array([[3.0, 3.0]] * 4), 640)
    found = check_anchors(model, labels, shapes, 640, thr=4.0)
    assert not found.changed and "too few to fit 9 anchors" in found.message(640, model.head.anchors)
    assert torch.equal(model.head.anchors, before)


def test_anchor_fit_fitness_by_hand():
    anchors = np.array([[10.0, 10.0], [40.0, 40.0]])
    wh = np.array([[10.0, 10.0], [20.0, 20.0], [100.0, 10.0], [10.0, 5.0]])
    # best worse-side ratio per box: 1, 1/2, 0 (matches none), 1/2
    assert anchor_fit(wh, anchors).fitness == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert anchor_fit(wh, anchors).one_match == pytest.approx(3 / 4)  # [20, 20] alone matches both


def _boxes(lo: float, hi: float) -> np.ndarray:
    """300 boxes with sides log-uniform in [lo, hi] px."""
    return np.exp(np.random.default_rng(0).uniform(np.log(lo), np.log(hi), (300, 2)))


def test_check_evolves_when_small_boxes_match_one_anchor():
    # 4-14 px boxes under the tiny model's COCO anchors (10x13 smallest): every box can match an
    # anchor (u5's test passes) but over a third match only one; evolved anchors give each several
    labels, shapes = _labels_for(_boxes(4, 14), 320)
    model = build_model(str(TINY_MODEL))
    found = check_anchors(model, labels, shapes, 320, thr=4.0, generations=100)
    assert found.fit.bpr > 0.98 and found.fit.one_match > 0.3
    assert found.fit.problem().endswith("of the targets match at most one anchor, over 5%")
    assert found.changed and found.new.one_match < 0.05 and found.new.aat > 2 * found.fit.aat
    assert f"({found.fit.one_match:.1%} at most one)" in found.message(320, model.head.anchors)


def test_evolve_mode_refits_anchors_the_check_keeps():
    labels, shapes = _labels_for(_boxes(20, 60), 320)  # each box matches 2 or more COCO anchors
    model = build_model(str(TINY_MODEL))
    before = model.head.anchors.clone()
    kept = check_anchors(model, labels, shapes, 320, thr=4.0, generations=100)
    assert kept.fit.problem() == "" and kept.new is None and torch.equal(model.head.anchors, before)

    found = check_anchors(model, labels, shapes, 320, thr=4.0, generations=100, mode="evolve")
    assert found.changed and found.new.bpr >= found.fit.bpr and found.new.fitness > found.fit.fitness
    assert not torch.equal(model.head.anchors, before)
    wh = label_sizes(labels, shapes, 320)
    assert anchor_fit(wh, model.head.anchors.reshape(-1, 2).numpy()).fitness > anchor_fit(wh, before.reshape(-1, 2).numpy()).fitness
    assert f"fitness {found.fit.fitness:.4f}; new anchors reach" in found.message(320, model.head.anchors)
    with pytest.raises(ValueError, match="check or evolve, got 'off'"):
        check_anchors(model, labels, shapes, 320, thr=4.0, mode="off")


def test_evolve_mode_keeps_anchors_that_fit_best():
    # boxes exactly at the config's anchors: fitness 1 up to the zoom jitter, no evolved set does better
    model = build_model(str(TINY_MODEL))
    before = model.head.anchors.clone()
    labels, shapes = _labels_for(before.reshape(-1, 2).numpy().repeat(20, 0), 640)
    found = check_anchors(model, labels, shapes, 640, thr=4.0, generations=100, mode="evolve")
    assert not found.changed and found.new is not None and found.new.fitness <= found.fit.fitness
    assert torch.equal(model.head.anchors, before)
    assert "keeping the config's" in found.message(640, model.head.anchors)


def test_autoanchor_option_and_saved_bools(monkeypatch):
    from edgeyolo.cli import main
    from edgeyolo.train import trainer as trainer_mod
    from edgeyolo.train.config import TrainConfig

    seen = []

    class Stop(Exception):
        pass

    def fake_init(self, cfg):
        seen.append(cfg.autoanchor)
        raise Stop

    monkeypatch.setattr(trainer_mod.Trainer, "__init__", fake_init)
    for args, mode in (([], "check"), (["--autoanchor", "evolve"], "evolve"), (["--no-autoanchor"], "off")):
        with pytest.raises(Stop):
            main(["train", "--data", "d.yaml", *args])
        assert seen[-1] == mode
    assert TrainConfig(autoanchor=True).autoanchor == "check"  # args.yaml of a run saved when it was a bool
    assert TrainConfig(autoanchor=False).autoanchor == "off"
    with pytest.raises(ValueError, match="autoanchor must be check, evolve or off, got 'always'"):
        TrainConfig(autoanchor="always")


@pytest.fixture()
def huge_anchor_model(tmp_path):
    """The tiny model with anchors 20x too large for 96-px synthetic images."""
    cfg = yaml.safe_load(TINY_MODEL.read_text())
    cfg["anchors"] = [[v * 20 for v in level] for level in cfg["anchors"]]
    path = tmp_path / "huge-anchors.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_trainer_fits_anchors_and_resume_keeps_them(tiny_data, tmp_path, huge_anchor_model, monkeypatch):
    from test_train import _crash_at

    config_anchors = build_model(huge_anchor_model).head.anchors
    monkeypatch.setattr(Trainer, "_train_epoch", _crash_at(1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(train_config(tmp_path, tiny_data, model=huge_anchor_model, epochs=2, name="fit")).fit()
    monkeypatch.undo()
    first = read_checkpoint(tmp_path / "runs" / "fit" / "weights" / "last.pt")
    from edgeyolo.cli.info import _weights_info
    text = _weights_info(tmp_path / "runs" / "fit" / "weights" / "last.pt", None)
    assert f"training state: 1/2 epochs (resume: edgeyolo train --resume {tmp_path}/runs/fit/weights/last.pt)" in text
    fitted = first["model"]["head.anchors"]
    assert not torch.equal(fitted, config_anchors)
    assert torch.equal(torch.tensor(first["cfg"]["anchors"]).view_as(fitted), fitted)
    assert torch.equal(first["train_state"]["raw_model"]["head.anchors"], fitted)

    run = Trainer.resume(tmp_path / "runs" / "fit").fit()
    for name in ("last.pt", "best.pt"):
        model, ckpt = load_model(run / "weights" / name)
        assert torch.equal(model.head.anchors, fitted), name
        assert torch.equal(torch.tensor(ckpt["cfg"]["anchors"]).view_as(fitted), fitted), name

    kept = Trainer(train_config(tmp_path, tiny_data, model=huge_anchor_model, epochs=1, name="kept",
                                autoanchor=False)).fit()
    assert torch.equal(read_checkpoint(kept / "weights" / "last.pt")["model"]["head.anchors"], config_anchors)


def test_data_check_reports_anchor_fit(tiny_data, huge_anchor_model, capsys):
    from edgeyolo.cli import main
    from edgeyolo.data import DetectionDataset

    main(["data", "check", "--data", str(tiny_data), "--imgsz", "96"])
    out = capsys.readouterr().out
    assert "anchors of yolov4s-mbv3s at 96 px: best possible recall 1.0000 of the train boxes" in out
    main(["data", "check", "--data", str(tiny_data), "--imgsz", "96", "--model", huge_anchor_model])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("anchors of"))
    ds = DetectionDataset(tiny_data, "train", 96, augment=False)
    anchors = build_model(huge_anchor_model).head.anchors.reshape(-1, 2).numpy()
    fit = anchor_fit(label_sizes(ds.labels, ds.shapes, 96), anchors)
    assert f"best possible recall {fit.bpr:.4f}" in line and fit.bpr < 0.98
    assert line.endswith(f"edgeyolo train will evolve new ones (autoanchor: best possible recall {fit.bpr:.4f}, under 0.98)")


def test_fitted_anchors_reach_exported_models(overfit_run, tmp_path):
    """A checkpoint with non-default anchors: the in-graph decode of an ONNX export and the runtime's
    numpy decode of a --raw export both use them (not the config YAML's)."""
    from edgeyolo.models.checkpoint import save_checkpoint
    from edgeyolo.runtime.backends import load_backend
    from edgeyolo.runtime.processing import decode_raw
    from runtime_helpers import export_tiny

    model, ckpt = load_model(overfit_run / "weights" / "best.pt")
    model.set_anchors(model.head.anchors * torch.tensor([1.3, 0.7]))  # as autoanchor would, aspect changed too
    weights = save_checkpoint(tmp_path / "fitted.pt", model, ckpt["names"], ckpt["meta"])
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        expected = model(x).numpy()
    decoded = load_backend(export_tiny(weights, tmp_path / "dec"))
    np.testing.assert_allclose(decoded(x.numpy())[0], expected, rtol=1e-3, atol=1e-2)
    raw = load_backend(export_tiny(weights, tmp_path / "raw", raw=True))
    np.testing.assert_allclose(np.array(raw.info.anchors), model.head.anchors.numpy())
    got = decode_raw(raw(x.numpy()), raw.info.anchors, raw.info.stride)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-2)


def test_anchor_fit_study_counts_matches_by_size(tiny_data, tmp_path, monkeypatch):
    from edgeyolo.bench.studies import anchor_fit as study
    from edgeyolo.ops.anchors import anchor_matches

    anchors = np.array([[10.0, 10.0], [40.0, 40.0]])
    # a match needs both side ratios under 4: 10x10 is 4x from 40x40 (no match), 50x10 5x from 10x10
    wh = np.array([[10.0, 10.0], [20.0, 20.0], [50.0, 10.0], [3.0, 3.0]])
    np.testing.assert_array_equal(anchor_matches(wh, anchors, 4.0), [1, 2, 0, 1])
    monkeypatch.setattr("sys.argv", ["anchor_fit", "--data", str(tiny_data), "--imgsz", "96", "--small", "1",
                                     "--out", str(tmp_path)])
    study.main()
    rows = [r for r in (tmp_path / "anchor_fit" / "synth.md").read_text().splitlines() if r.startswith("| yolov4s")]
    assert len(rows) == 1 and rows[0].split(" | ")[6] == "no boxes"  # no box under 1 px
