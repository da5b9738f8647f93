"""The run-length recipe: optimizer choice, accumulation, warm-up and mosaic closing, and the
trainer following it."""
from __future__ import annotations

from pathlib import Path

import torch

from edgeyolo.train.hyp import load_hyp
from edgeyolo.train.ema import ModelEMA
from edgeyolo.train.recipe import (accumulation, auto_optimizer, close_mosaic_epochs, ema_settings, plan,
                                   warmup_iterations)


def test_auto_optimizer_by_run_length() -> None:
    # Ultralytics' rule: iterations = ceil(images / max(batch, nbs)) * epochs, SGD past 10,000
    assert auto_optimizer(56, 16, 64, 60, 1) == ("AdamW", 0.002)  # 1 * 60 iterations
    assert auto_optimizer(118_000, 16, 64, 300, 80) == ("SGD", 0.01)  # COCO: 1844 * 300
    assert auto_optimizer(6400, 16, 64, 100, 4) == ("AdamW", 0.00125)  # exactly 10,000: still short
    assert auto_optimizer(6464, 16, 64, 100, 4)[0] == "SGD"


def test_accumulation_leaves_steps_on_small_sets() -> None:
    assert accumulation(64, 16, 4) == 1  # 56 images: one step a batch, not one an epoch
    assert accumulation(64, 16, 16) == 4  # enough batches: the nominal batch
    assert accumulation(64, 16, 1000) == 4
    assert accumulation(64, 128, 1000) == 1  # batch above the nominal batch


def test_warmup_capped_to_a_share_of_the_run() -> None:
    assert warmup_iterations(3.0, 4, 60) == 48  # 100 would be 42 % of a 240-iteration run
    assert warmup_iterations(3.0, 1000, 300) == 3000  # long runs: YOLOv5's warmup_epochs * batches
    assert warmup_iterations(1.0, 50, 10) == 100  # the quick start: YOLOv5's floor of 100, 20 % of its 500
    assert warmup_iterations(0.0, 50, 10) == -1


def test_close_mosaic_epochs() -> None:
    assert [close_mosaic_epochs(e) for e in (5, 10, 60, 300)] == [0, 0, 0, 0]  # off unless asked (recipe.py says why)


def test_ema_averages_a_share_of_a_short_run() -> None:
    assert ema_settings(10**6) == (0.9999, 2000.0)  # long runs: YOLOv5's
    assert ema_settings(40_000) == (0.9995, 2000.0)  # 5 % of the run: 2,000 updates
    decay, tau = ema_settings(240)  # 56 images: 4 updates an epoch for 60 epochs
    assert (round(decay, 6), tau) == (round(1 - 1 / 12, 6), 12.0)
    assert ema_settings(10) == (0.0, 1.0)  # shorter than 20 updates: the EMA is the last weights
    # With YOLOv5's settings a 240-update run ends at decay 0.11: the last weights; with the
    # recipe's, after 240 updates of a weight that steps 0, 1, 2, ... the EMA lags by about the horizon.
    model = torch.nn.Linear(1, 1, bias=False)
    ema = ModelEMA(model, decay, tau)
    for step in range(240):
        model.weight.data.fill_(float(step))
        ema.update(model)
    assert 239 - 13 < float(ema.ema.weight) < 239 - 10


def test_plan_adam_bias_warmup_and_named_optimizer() -> None:
    hyp = load_hyp()
    auto = plan(hyp, "auto", 56, 16, 64, 60, 1, 4, None)
    assert (auto.optimizer, auto.lr0, auto.warmup_bias_lr, auto.accumulate, auto.close_mosaic) == (
        "AdamW", 0.002, 0.002, 1, 0)
    assert "AdamW lr0 0.002 (auto" in auto.note
    sgd = plan(hyp, "SGD", 56, 16, 64, 60, 1, 4, 0)
    assert (sgd.optimizer, sgd.lr0, sgd.warmup_bias_lr, sgd.close_mosaic) == ("SGD", 0.01, 0.1, 0)
    long = plan(hyp, "auto", 10**6, 16, 64, 300, 80, 62500, 15)
    assert (long.optimizer, long.bn_momentum, auto.bn_momentum) == ("SGD", 0.03, 0.1)
    assert (long.ema_decay, long.ema_tau) == (0.9999, 2000.0) and auto.ema_tau == 12.0  # 4 updates x 60 epochs
    assert "EMA decay 0.9167 (ramp 12 updates)" in auto.note


def test_plan_precise_bn_asked_for_and_capped() -> None:
    hyp = load_hyp()
    assert plan(hyp, "auto", 200, 16, 64, 60, 1, 13, None).precise_bn == 0  # off unless asked (recipe.py says why)
    asked = plan(hyp, "auto", 200, 16, 64, 60, 1, 13, None, precise_bn=64)
    assert asked.precise_bn == 64 and "re-estimated on 64 training images" in asked.note
    assert plan(hyp, "auto", 56, 16, 64, 60, 1, 4, None, precise_bn=64).precise_bn == 56  # a small set: all, once
    assert "re-estimated" not in plan(hyp, "auto", 200, 16, 64, 60, 1, 13, None).note


def test_trainer_reestimates_statistics_on_images_as_validated(tmp_path: Path, tiny_data: Path) -> None:
    """The validated model's first BatchNorm holds the mean and variance of its input over the
    training images letterboxed as validation does, though the run trains on mosaics."""
    import yaml

    from conftest import train_config

    from edgeyolo.data import DetectionDataset
    from edgeyolo.train.trainer import Trainer
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text(yaml.safe_dump({"mosaic": 1.0, "warmup_epochs": 0.0}))
    t = Trainer(train_config(tmp_path, tiny_data, epochs=1, batch=8, optimizer="auto", hyp=str(hyp), precise_bn=8))
    assert t.recipe.precise_bn == 8 and t.train_set.augment
    t.fit()
    model = t.ema.ema.eval()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    clean = DetectionDataset(tiny_data, "train", 96, augment=False, rect=True, batch_size=8)
    x = torch.stack([clean[i][0] for i in range(len(clean))]).float() / 255
    seen = []
    handle = bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    feats = seen[0]
    # float sums in another order (channels-last, thread count): a few 1e-4 apart
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), rtol=2e-3, atol=5e-4)
    torch.testing.assert_close(bn.running_var, feats.var((0, 2, 3), unbiased=True), rtol=2e-3, atol=5e-4)


def test_trainer_follows_the_recipe(tmp_path: Path, tiny_data: Path) -> None:
    """Mosaic is on until the closing epochs, then off; the optimizer is the recipe's."""
    import yaml

    from conftest import train_config

    from edgeyolo.train.trainer import Trainer
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text(yaml.safe_dump({"mosaic": 1.0, "warmup_epochs": 0.0}))
    t = Trainer(train_config(tmp_path, tiny_data, epochs=3, close_mosaic=1, optimizer="auto", hyp=str(hyp)))
    assert type(t.optimizer).__name__ == "AdamW" and t.recipe.close_mosaic == 1
    assert {m.momentum for m in t.ema.ema.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}
    assert (t.ema.decay_max, t.ema.tau) == (t.recipe.ema_decay, t.recipe.ema_tau) and t.recipe.ema_tau < 2000
    seen = []
    real_epoch = t._train_epoch

    def spy(epoch: int, nb: int, nw: int):
        out = real_epoch(epoch, nb, nw)
        seen.append(t.train_set.hyp["mosaic"])
        return out

    t._train_epoch = spy
    t.fit()
    assert seen == [1.0, 1.0, 0.0]
