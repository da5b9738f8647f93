"""Shared fixtures: a tiny synthetic detection set generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest


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
