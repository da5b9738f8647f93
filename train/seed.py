"""Seeding for reproducible training: python, numpy and torch from one integer."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; called at every epoch start with (seed + epoch) so that a
    resumed run replays exactly the epochs a straight run would."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
