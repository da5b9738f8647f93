"""The BatchNorm-statistics study scores every set of weights a checkpoint holds."""
from __future__ import annotations

import torch

from edgeyolo.models.checkpoint import read_checkpoint


def test_saved_weights_include_the_raw_weights_of_a_resumable_checkpoint(overfit_run):
    from edgeyolo.bench.studies.bn_statistics import saved_weights
    last = read_checkpoint(overfit_run / "weights" / "last.pt")
    labels = saved_weights(last)
    assert [label for label, _ in labels] == ["as saved", "raw weights"]
    (_, ema), (_, raw) = labels
    assert ema is last["model"] and raw is last["train_state"]["raw_model"]
    # two different models: the EMA lags the trained weights
    assert any(not torch.equal(ema[k], raw[k]) for k in ema if ema[k].dtype.is_floating_point)
    best = read_checkpoint(overfit_run / "weights" / "best.pt")  # no resumable state: the EMA weights only
    assert [label for label, _ in saved_weights(best)] == ["as saved"]
