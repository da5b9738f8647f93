"""Fine-tuning: ``edgeyolo train --weights best.pt`` starts from a trained detector, on data with the
same or another class count, and a fine-tuned run resumes from its own config."""
from __future__ import annotations

import shutil

import pytest
import torch

from edgeyolo.models.checkpoint import read_checkpoint
from edgeyolo.train.trainer import Trainer

from conftest import TINY_MODEL, train_config
from test_train import _crash_at


def _five_class_data(tiny_data, tmp_path):
    """The tiny set's images and labels under a YAML with a fifth class name (nc 4 -> 5)."""
    root = tmp_path / "five"
    shutil.copytree(tiny_data.parent, root)
    text = (root / "data.yaml").read_text()
    (root / "data.yaml").write_text(text.replace("  - truck", "  - truck\n  - van"))
    return root / "data.yaml"


def test_finetune_same_classes_starts_from_every_weight(overfit_run, tiny_data, tmp_path):
    best = overfit_run / "weights" / "best.pt"
    source = read_checkpoint(best)["model"]
    trainer = Trainer(train_config(tmp_path, tiny_data, model=None, weights=str(best), epochs=1))
    assert trainer.cfg.model == "tiny-yolo"  # the checkpoint's model, not the default
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, source[k]), k
    run = trainer.fit()
    assert read_checkpoint(run / "weights" / "last.pt")["meta"]["model"] == "tiny-yolo"


def test_finetune_renamed_classes_are_noted(overfit_run, tiny_data, tmp_path, capsys):
    root = tmp_path / "renamed"
    shutil.copytree(tiny_data.parent, root)
    (root / "data.yaml").write_text((root / "data.yaml").read_text().replace("  - truck", "  - van"))
    Trainer(train_config(tmp_path, root / "data.yaml", model=None, weights=str(overfit_run / "weights" / "best.pt")))
    assert ("was trained on classes motorcycle, car, bus, truck; --data names motorcycle, car, bus, van: each class "
            "output starts from the checkpoint's class at its index") in capsys.readouterr().out


def test_finetune_new_class_count_reinitialises_only_class_outputs(overfit_run, tiny_data, tmp_path, capsys):
    best = overfit_run / "weights" / "best.pt"
    source = read_checkpoint(best)["model"]
    trainer = Trainer(train_config(tmp_path, _five_class_data(tiny_data, tmp_path), model=None, weights=str(best),
                                   epochs=1))
    assert "initialised afresh: head.m.0.weight, head.m.0.bias" in capsys.readouterr().out
    own = trainer.model.state_dict()
    fresh = {k for k in own if not (own[k].shape == source[k].shape and torch.equal(own[k], source[k]))}
    assert fresh == {f"head.m.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    assert trainer.model.nc == 5
    trainer.fit()


def test_finetuned_run_resumes_after_its_yaml_is_gone(tiny_data, tmp_path, monkeypatch):
    yaml_copy = tmp_path / "my-model.yaml"
    shutil.copy(TINY_MODEL, yaml_copy)
    start = Trainer(train_config(tmp_path, tiny_data, model=str(yaml_copy), epochs=1, name="start")).fit()
    yaml_copy.unlink()  # the run's model now exists only in its checkpoints' config
    monkeypatch.setattr(Trainer, "_train_epoch", _crash_at(1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(train_config(tmp_path, tiny_data, model=None, weights=str(start / "weights" / "best.pt"), epochs=2,
                             name="tuned")).fit()
    monkeypatch.undo()
    run = Trainer.resume(tmp_path / "runs" / "tuned").fit()
    ckpt = read_checkpoint(run / "weights" / "last.pt")
    assert ckpt["train_state"]["epoch"] == 1 and ckpt["meta"]["model"] == "my-model"


def test_finetune_errors(overfit_run, tiny_data, tmp_path):
    best = str(overfit_run / "weights" / "best.pt")
    with pytest.raises(ValueError, match="a tiny-yolo checkpoint, but --model yolov4s-mbv2; leave out --model"):
        Trainer(train_config(tmp_path, tiny_data, model="yolov4s-mbv2", weights=best))
    with pytest.raises(ValueError, match="--weights .* and --backbone-weights exclude each other"):
        Trainer(train_config(tmp_path, tiny_data, model=None, weights=best, backbone_weights="r50.pth"))
    with pytest.raises(ValueError, match="missing.pt: checkpoint not found"):
        Trainer(train_config(tmp_path, tiny_data, model=None, weights=str(tmp_path / "missing.pt")))


def test_cli_weights_flag_one_line_error(overfit_run, capsys):
    from edgeyolo.cli import main

    best = str(overfit_run / "weights" / "best.pt")
    with pytest.raises(SystemExit) as e:
        main(["train", "--weights", best, "--model", "yolov4s-mbv2", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 1 and err == (f"edgeyolo: error: {best}: a tiny-yolo checkpoint, but --model yolov4s-mbv2; "
                                         "leave out --model to fine-tune it")


def _backbone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("backbone.") and v.is_floating_point()}


def test_freeze_backbone_then_unfreeze(overfit_run, tiny_data, tmp_path, monkeypatch):
    """Frozen for epoch 1: the backbone's weights and BN statistics are the start checkpoint's, the
    rest learns; unfrozen for epoch 2: the backbone learns too. A resume inside the frozen
    epochs equals a straight run."""
    best = overfit_run / "weights" / "best.pt"
    start = read_checkpoint(best)["model"]
    kw = dict(model=None, weights=str(best), epochs=2, freeze_backbone=1)
    monkeypatch.setattr(Trainer, "_train_epoch", _crash_at(1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(train_config(tmp_path, tiny_data, name="frozen", **kw)).fit()
    monkeypatch.undo()
    after1 = read_checkpoint(tmp_path / "runs" / "frozen" / "weights" / "last.pt")["train_state"]["raw_model"]
    backbone = _backbone(start)
    assert any("running_mean" in k for k in backbone)
    for k, v in backbone.items():
        assert torch.equal(after1[k], v), k
    assert not torch.equal(after1["head.m.0.weight"], start["head.m.0.weight"])
    assert not torch.equal(after1["neck.layers.0.conv.weight"], start["neck.layers.0.conv.weight"])

    resumed = Trainer.resume(tmp_path / "runs" / "frozen").fit()
    straight = Trainer(train_config(tmp_path, tiny_data, name="straight", **kw)).fit()
    a, b = (read_checkpoint(r / "weights" / "last.pt")["train_state"]["raw_model"] for r in (resumed, straight))
    changed = [k for k, v in backbone.items() if not torch.equal(a[k], v)]
    assert changed, "the backbone did not learn after it was unfrozen"
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_freeze_for_whole_run_keeps_backbone(overfit_run, tiny_data, tmp_path, capsys):
    best = overfit_run / "weights" / "best.pt"
    run = Trainer(train_config(tmp_path, tiny_data, model=None, weights=str(best), epochs=2,
                               freeze_backbone=5)).fit()
    assert "backbone frozen for epochs 1-2" in capsys.readouterr().out
    end = read_checkpoint(run / "weights" / "last.pt")["train_state"]["raw_model"]
    for k, v in _backbone(read_checkpoint(best)["model"]).items():
        assert torch.equal(end[k], v), k
    Trainer(train_config(tmp_path, tiny_data, epochs=1, freeze_backbone=1, name="random"))
    assert "keeps a randomly initialised backbone fixed" in capsys.readouterr().out
