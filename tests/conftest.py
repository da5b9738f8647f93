"""Shared fixtures: a tiny synthetic detection set generated once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core (pyproject's addopts): one thread each, or every worker's
    # OpenMP team (and the subprocesses the tests start) spins for cores the other worker holds.
    # Set before anything imports torch, which reads it once.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


TINY_MODEL = Path(__file__).parent / "data" / "tiny-yolo.yaml"


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """A ~0.2M-parameter YOLO config: the training tests exercise the loop, not a big model."""
    return str(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """8 train / 8 val synthetic images of 96 px."""
    from edgeyolo.data import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("tiny") / "synth", n_train=8, n_val=8, imgsz=96, seed=3)


@pytest.fixture(scope="session")
def overfit_data(tmp_path_factory) -> Path:
    """48 synthetic images of 96 px whose YAML validates on the training images themselves."""
    from edgeyolo.data import generate_synthetic

    yaml_path = generate_synthetic(tmp_path_factory.mktemp("overfit") / "synth", n_train=48, n_val=1, imgsz=96, seed=5)
    yaml_path.write_text(yaml_path.read_text().replace("val: images/val", "val: images/train"))
    return yaml_path


NO_AUG = {"mosaic": 0.0, "letterbox_bands": 0.0, "fliplr": 0.0, "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0,
          "translate": 0.0, "scale": 0.0, "warmup_epochs": 0.0, "lr0": 0.01, "warmup_bias_lr": 0.0}
EPOCHS, VAL_INTERVAL = 30, 10


def train_config(tmp_path: Path, data: Path, **over):
    """A TrainConfig for the tiny model on CPU without augmentation (fast, deterministic)."""
    import yaml

    from edgeyolo.train.config import TrainConfig
    hyp = tmp_path / "hyp.yaml"
    if not hyp.exists():
        hyp.write_text(yaml.safe_dump(NO_AUG))
    base = dict(model=str(TINY_MODEL), data=str(data), epochs=2, imgsz=96, batch=4, nbs=4, device="cpu", workers=0,
                hyp=str(hyp), project=str(tmp_path / "runs"), name="exp", optimizer="AdamW", plots=False,
                progress=False, cache=True)
    base.update(over)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def overfit_run(overfit_data, tmp_path_factory) -> Path:
    """The tiny model trained 30 epochs on 48 images (no augmentation), validating on the same
    images: a checkpoint with a real mAP (~0.6-0.9 mAP50) for the training, export and runtime tests."""
    from edgeyolo.train.trainer import Trainer
    tmp = tmp_path_factory.mktemp("overfit")
    return Trainer(train_config(tmp, overfit_data, epochs=EPOCHS, batch=8, nbs=8, val_interval=VAL_INTERVAL,
                                plots=True)).fit()
