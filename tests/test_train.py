"""Training: a tiny end-to-end run improves mAP, resume is exact, checkpoints fail clearly, val, compare."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from edgeyolo.cli import cli, main
from edgeyolo.models.checkpoint import load_model, read_checkpoint
from edgeyolo.models.builder import build_model
from edgeyolo.train.checkpoint_state import CheckpointState
from edgeyolo.train.trainer import Trainer

from conftest import EPOCHS, VAL_INTERVAL, train_config as _cfg


def test_tiny_train_improves_map(overfit_run):
    rows = [line.split(",") for line in (overfit_run / "results.csv").read_text().splitlines()]
    header = [h.strip() for h in rows[0]]
    col = header.index("metrics/mAP50")
    maps = [float(r[col]) for r in rows[1:]]
    assert len(maps) == EPOCHS
    validated = [m for m in maps if not math.isnan(m)]
    assert len(validated) == EPOCHS // VAL_INTERVAL  # the other epochs' metrics stay NaN
    assert validated[-1] > 0.5 and validated[-1] > validated[0] + 0.2, validated
    box = header.index("train/box_loss")
    assert float(rows[-1][box]) < 0.7 * float(rows[1][box])
    for name in ("args.yaml", "hyp.yaml", "results.png", "labels.png", "train_batch.png", "PR_curve.png",
                 "confusion_matrix.png", "weights/best.pt", "weights/last.pt"):
        assert (overfit_run / name).is_file(), name
    best = read_checkpoint(overfit_run / "weights" / "best.pt")
    assert "train_state" not in best and best["names"] == ["motorcycle", "car", "bus", "truck"]


def test_val_cli_and_save_json(overfit_run, overfit_data, tmp_path):
    out = tmp_path / "dets.json"
    result = CliRunner().invoke(cli, ["val", "--weights", str(overfit_run / "weights" / "best.pt"), "--data",
                                      str(overfit_data), "--split", "train", "--batch", "16",
                                      "--workers", "0", "--device", "cpu", "--save-json", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["class"])
    assert lines[header + 1].split()[:2] == ["all", "48"]
    assert "ms inference" in result.output
    dets = json.loads(out.read_text())
    assert dets and {"image_id", "category_id", "bbox", "score"} <= set(dets[0])
    # boxes are in the original 96-px images' pixels
    assert all(-1e-3 <= d["bbox"][0] and d["bbox"][0] + d["bbox"][2] <= 96 + 1e-3 for d in dets)


def _crash_at(epoch_to_fail):
    original = Trainer._train_epoch

    def patched(self, epoch, nb, nw):
        if epoch == epoch_to_fail:
            raise RuntimeError("simulated crash")
        return original(self, epoch, nb, nw)
    return patched


def test_resume_is_exact(tiny_data, tmp_path, monkeypatch):
    # The crashed run wrote last.pt after its first epoch only (the write interval is long): the
    # resume goes back to it, drops the results.csv row written after it, and retrains to the same weights.
    straight = Trainer(_cfg(tmp_path, tiny_data, epochs=3, name="straight")).fit()
    monkeypatch.setattr(Trainer, "_train_epoch", _crash_at(2))
    cfg = _cfg(tmp_path, tiny_data, epochs=3, name="crashed", save_interval=1e9)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(cfg).fit()
    monkeypatch.undo()
    crashed = tmp_path / "runs" / "crashed"
    assert read_checkpoint(crashed / "weights" / "last.pt")["train_state"]["epoch"] == 0
    assert (crashed / "results.csv").read_text().count("\n") == 3  # header + 2 epochs
    resumed = Trainer.resume(crashed).fit()
    a, b = (read_checkpoint(r / "weights" / "last.pt") for r in (straight, resumed))
    assert a["train_state"]["epoch"] == b["train_state"]["epoch"] == 2
    for key in ("raw_model",):
        for k, v in a["train_state"][key].items():
            assert torch.equal(v, b["train_state"][key][k]), k
    for k, v in a["model"].items():  # EMA weights
        assert torch.equal(v, b["model"][k]), k
    assert (resumed / "results.csv").read_text().count("\n") == 4  # header + 3 epochs, no duplicates


class _Writer(CheckpointState):
    """CheckpointState's writes alone, on a tiny model."""

    def __init__(self, tmp_path, tiny_model, save_interval):
        self.cfg = SimpleNamespace(imgsz=96, model="tiny", save_interval=save_interval)
        self.ema = SimpleNamespace(ema=build_model(tiny_model, nc=2))
        self.names, self.weights_dir = ["a", "b"], tmp_path
        self.best_fitness = -1.0

    def _train_state(self, epoch):
        return {"epoch": epoch, "best_fitness": self.best_fitness}


@pytest.mark.parametrize("interval, last_epochs", [(25.0, [0, 3, 6, 9]), (0.0, list(range(10)))])
def test_checkpoints_written_by_time_and_best_kept_until_then(tmp_path, tiny_model, monkeypatch, interval, last_epochs):
    # 25 s with 10 s epochs: after the first epoch, at 30 s and 60 s, and after the last; 0: every epoch.
    # A new best waits in memory for the next write, as it was when validated (the weights change in place).
    import edgeyolo.train.checkpoint_state as cs

    clock, written = [0.0], []
    monkeypatch.setattr(cs.time, "monotonic", lambda: clock[0])
    real_save = cs.atomic_torch_save
    monkeypatch.setattr(cs, "atomic_torch_save", lambda obj, path: (written.append(path.name), real_save(obj, path)))
    w = _Writer(tmp_path, tiny_model, interval)
    name, weight = next(iter(w.ema.ema.state_dict().items()))  # a tensor the "training" changes in place
    fitness = [0.1, 0.3, 0.2, 0.2, 0.5, 0.4, 0.4, 0.4, 0.4, 0.45]  # bests at epochs 0, 1, 4
    at_best, lasts = None, []
    for epoch, f in enumerate(fitness):
        clock[0] = 10.0 * epoch
        weight.fill_(epoch)
        is_best = f > w.best_fitness
        w.best_fitness, at_best = max(w.best_fitness, f), epoch if is_best else at_best
        metrics = SimpleNamespace(map50=f, map=f)
        w._save_checkpoints(epoch, SimpleNamespace(fitness=f, metrics=metrics), is_best, final=epoch == 9)
        if written[-1:] == ["last.pt"]:  # at every write, best.pt is the one last.pt's best_fitness names
            written.append("checked")
            last, best = (read_checkpoint(tmp_path / n) for n in ("last.pt", "best.pt"))
            lasts.append(last["train_state"]["epoch"])
            assert last["train_state"]["best_fitness"] == best["meta"]["fitness"] == fitness[at_best]
            assert best["meta"]["epoch"] == at_best and torch.equal(best["model"][name], torch.full_like(weight, at_best))
    assert lasts == last_epochs and written.count("best.pt") == 3


def test_early_stop_is_saved_and_not_resumed(tiny_data, tmp_path, monkeypatch):
    from edgeyolo.bench.studies.backbone_study import run_state
    from edgeyolo.train.validate import ValResult
    monkeypatch.setattr(ValResult, "fitness", property(lambda self: 0.5))  # never improves after the first
    run = Trainer(_cfg(tmp_path, tiny_data, epochs=5, patience=1, name="flat")).fit()
    state = read_checkpoint(run / "weights" / "last.pt")["train_state"]
    assert (state["epoch"], state["stale"], state["stopped_early"]) == (1, 1, True)
    with pytest.raises(ValueError, match="flat/weights/last.pt: this run stopped early after epoch 2"):
        Trainer.resume(run)
    assert run_state(run, 5, 96) == "done"  # the backbone study does not retrain it either


def test_resume_errors(tiny_data, tmp_path, overfit_run):
    with pytest.raises(ValueError, match="has no training state"):
        Trainer.resume(overfit_run / "weights" / "best.pt")
    with pytest.raises(ValueError, match=f"already finished its {EPOCHS} epochs"):
        Trainer.resume(overfit_run)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="bad.pt: not a readable checkpoint"):
        Trainer.resume(bad)
    with pytest.raises(ValueError, match="no run with weights/last.pt"):
        Trainer.resume("auto", project=str(tmp_path / "empty"))


def test_cli_one_line_errors(tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(SystemExit) as e:
        main(["val", "--weights", str(foreign)])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgeyolo: error: ") and "not an edgeyolo checkpoint" in err and "\n" not in err
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tmp_path / "missing.yaml")])
    assert "missing.yaml" in capsys.readouterr().err


def test_compare_runs(overfit_run, tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(overfit_run), str(overfit_run), "--out", str(tmp_path / "cmp"),
                                      "--imgsz", "320"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000
    table = (tmp_path / "cmp" / "compare.md").read_text().splitlines()
    assert len(table) == 4 and "| tiny-yolo |" in table[2]  # the name in the checkpoint's config
    row = [c.strip() for c in table[2].split("|")]
    assert row[5] == str(EPOCHS) and float(row[6]) > 0.5


def test_load_trained_model_for_inference(overfit_run):
    model, ckpt = load_model(overfit_run / "weights" / "best.pt")
    assert ckpt["meta"]["imgsz"] == 96 and not model.training
    assert model(torch.zeros(1, 3, 96, 96)).shape[-1] == 9


def test_val_map_equals_its_own_json_scored_in_original_pixels(overfit_run, overfit_data, tmp_path):
    """validate() scores in letterboxed pixels; its --save-json boxes are in the original image's.
    Both must give the same mAP: boxes running into the letterbox padding are clipped to the image
    in both (they were not in the first, which read up to 0.2 mAP points low)."""
    import cv2
    import numpy as np

    from edgeyolo.data import DetectionDataset, build_dataloader
    from edgeyolo.ops.metrics import DetectionEvaluator
    from edgeyolo.train.validate import validate
    from runtime_helpers import gt_pixels, labelled_images

    model, ckpt = load_model(overfit_run / "weights" / "best.pt")
    ds = DetectionDataset(overfit_data, "train", 64, augment=False, rect=True, batch_size=8)  # 96 px images at 64
    out = tmp_path / "dets.json"
    result = validate(model, build_dataloader(ds, 8, 0, shuffle=False), ckpt["names"], progress=False, save_json=out)
    dets = json.loads(out.read_text())
    ev = DetectionEvaluator(4)
    n_outside = 0
    for path, labels in labelled_images(overfit_data, "train"):
        h, w = cv2.imread(str(path)).shape[:2]
        mine = np.array([[x, y, x + bw, y + bh, d["score"], d["category_id"]]
                         for d in dets if d["image_id"] == int(path.stem) for x, y, bw, bh in [d["bbox"]]],
                        np.float64).reshape(-1, 6)
        n_outside += int(((mine[:, 0] <= 0) | (mine[:, 1] <= 0) | (mine[:, 2] >= w) | (mine[:, 3] >= h)).sum())
        ev.update(mine, gt_pixels(labels, w, h))
    m = ev.compute()
    assert n_outside > 0  # some boxes were clipped: the case this test is about
    assert abs(m.map - result.metrics.map) < 2e-4, (m.map, result.metrics.map)
    assert abs(m.map50 - result.metrics.map50) < 2e-4, (m.map50, result.metrics.map50)
