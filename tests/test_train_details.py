"""Training details a review turned up, each shown failing before its fix: multi-scale sizes,
the order of best.pt/last.pt, cumulative time across a resume, the hyp.yaml a run records, the
epoch's last partial accumulation, the early-stop summary, absolute paths in args.yaml, compare
on a fine-tuned run, and a checkpoint's bench size."""
from __future__ import annotations

import pytest
import yaml

from edgeyolo.models.checkpoint import read_checkpoint
from edgeyolo.train.multiscale import multi_scale_sizes
from edgeyolo.runs import read_results
from edgeyolo.train.trainer import Trainer

from conftest import train_config
from test_train import _crash_at


def test_multi_scale_sizes_are_positive_strides_within_half_to_one_and_a_half():
    assert list(multi_scale_sizes(32, 32)) == [32]  # YOLOv5's rounding drew 0 here
    assert list(multi_scale_sizes(96, 32)) == [64, 96, 128]  # never below 0.5 x imgsz (it drew 32)
    assert list(multi_scale_sizes(640, 32))[::10] == [320, 640, 960]


def test_best_is_written_before_last(tiny_data, tmp_path, monkeypatch):
    import edgeyolo.train.checkpoint_state as tr
    written = []
    real = tr.atomic_torch_save
    monkeypatch.setattr(tr, "atomic_torch_save", lambda obj, path: (written.append(path.name), real(obj, path)))
    Trainer(train_config(tmp_path, tiny_data, epochs=1)).fit()
    assert written == ["best.pt", "last.pt"]


def test_time_hyp_accumulation_and_paths(tiny_data, tmp_path, monkeypatch):
    """batch 2, nominal batch 6: accumulate 3 over 4 batches, so the 4th batch's gradients are a
    partial accumulation, stepped at the epoch's end (they were dropped)."""
    import edgeyolo.train.recipe as recipe
    # The recipe keeps 4 optimizer steps an epoch, which on 4 batches means accumulating 1: allow 1
    # step an epoch so that the run accumulates 3 and leaves the partial accumulation this checks.
    monkeypatch.setattr(recipe, "MIN_STEPS_PER_EPOCH", 1)
    assert recipe.accumulation(6, 2, 4) == 3
    monkeypatch.chdir(tmp_path)
    import os
    rel = os.path.relpath(tiny_data, tmp_path)  # a relative --data, as a user in their project folder types it
    assert not rel.startswith("/")
    monkeypatch.setattr(Trainer, "_train_epoch", _crash_at(1))
    with pytest.raises(RuntimeError):
        Trainer(train_config(tmp_path, rel, epochs=2, batch=2, nbs=6, name="acc")).fit()
    monkeypatch.undo()
    run = tmp_path / "runs" / "acc"
    state = read_checkpoint(run / "weights" / "last.pt")["train_state"]
    assert state["last_opt_step"] == 3  # batches 0-2 stepped at 2, batch 3 at the end of the epoch
    assert all(str(v).startswith("/") for k, v in state["args"].items() if k in ("data", "hyp", "model"))
    Trainer.resume(run).fit()
    times = [r["time"] for r in read_results(run / "results.csv")]
    assert len(times) == 2 and times[1] > times[0]  # cumulative across the resume (it restarted at 0)


def test_hyp_yaml_records_the_given_weight_decay(tiny_data, tmp_path):
    run = Trainer(train_config(tmp_path, tiny_data, epochs=1, batch=8, nbs=4)).fit()  # decay scaled x2 in the run
    assert yaml.safe_load((run / "hyp.yaml").read_text())["weight_decay"] == pytest.approx(0.0005)


def test_early_stop_summary_counts_epochs_run(tiny_data, tmp_path, monkeypatch, capsys):
    from edgeyolo.train.validate import ValResult
    monkeypatch.setattr(ValResult, "fitness", property(lambda self: 0.5))
    Trainer(train_config(tmp_path, tiny_data, epochs=6, patience=1)).fit()
    assert "2 epochs in" in capsys.readouterr().out  # stopped after 2 of 6 (it said 6)


def test_compare_a_finetuned_run_and_bench_size_of_last_pt(overfit_run, tiny_data, tmp_path):
    from edgeyolo.bench.runner import _weights_bytes
    from edgeyolo.train.compare import compare_runs
    run = Trainer(train_config(tmp_path, tiny_data, model=None, weights=str(overfit_run / "weights" / "best.pt"),
                               epochs=1)).fit()
    table, _ = compare_runs([run], tmp_path / "cmp", imgsz=96)
    row = next(line for line in table.splitlines() if line.startswith(f"| {run.name} "))
    assert "| tiny-yolo |" in row and "| ? |" not in row  # built from the checkpoint's config
    last, best = overfit_run / "weights" / "last.pt", overfit_run / "weights" / "best.pt"
    assert _weights_bytes(last) == _weights_bytes(best) < last.stat().st_size * 0.6  # no optimizer state
