"""The DataLoader factory shared by train, val, export calibration and bench."""
from __future__ import annotations

import gc
import logging
import os
import random

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

LOGGER = logging.getLogger("edgeyolo.data")


def seed_worker(worker_id: int) -> None:
    """Seed ``random`` and ``numpy.random`` in a worker from torch's per-worker seed, which the
    loader's generator derives from ``seed``: augmentation is reproducible, yet differs between
    workers (and between epochs, as the generator advances)."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


class RectBatchSampler:
    """The aspect-ratio batches of a ``rect`` dataset, as index lists, in order: every batch has
    one shape. Under torchrun rank ``r`` of ``w`` takes batches r, r + w, ... (a
    ``DistributedSampler`` would interleave single images and mix shapes within a batch)."""

    def __init__(self, batch_index: np.ndarray, rank: int = 0, world: int = 1) -> None:
        nb = int(batch_index[-1]) + 1 if len(batch_index) else 0
        self.batches = [np.flatnonzero(batch_index == b).tolist() for b in range(rank, nb, world)]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reshuffle; here so a trainer can treat every sampler alike."""


class ForkSafeLoader(DataLoader):
    """A DataLoader that frees the process's cyclic garbage before it forks its workers.

    A forked worker inherits the parent's garbage and may collect it itself: an ONNX Runtime session
    left in a reference cycle (an export check, a benchmark earlier in the same process) then runs
    its destructor in the worker, where the session's thread pool does not exist, and the worker
    hangs for ever in ``pthread_cond_destroy`` (seen in the test suite). Collected in the parent,
    where its threads are, the session is destroyed safely before the fork."""

    def _get_iterator(self):  # type: ignore[no-untyped-def]
        if self.num_workers > 0:
            gc.collect()
        return super()._get_iterator()


def worker_settings(dataset: Dataset, workers: int, pin_memory: bool | None) -> dict:
    """The DataLoader arguments every loader here shares: workers capped at the CPU count and kept
    alive between epochs, pinned memory where CUDA is, the dataset's own ``collate_fn``."""
    workers = max(0, min(workers, os.cpu_count() or 1))
    return {"num_workers": workers, "persistent_workers": workers > 0,
            "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory,
            "collate_fn": getattr(dataset, "collate_fn", None)}


def _distributed_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def build_dataloader(dataset: Dataset, batch_size: int, workers: int = 2, shuffle: bool = False, seed: int = 0,
                     distributed: bool | None = None, pin_memory: bool | None = None,
                     drop_last: bool = False) -> ForkSafeLoader:
    """A DataLoader for ``dataset`` (batches from its ``collate_fn`` when it has one).

    ``distributed`` (default: a torch.distributed process group of more than one process is
    initialised, as under torchrun) gives each rank its share through a ``DistributedSampler``
    (call ``loader.sampler.set_epoch(epoch)`` each epoch to reshuffle); ``batch_size`` is then per
    rank. ``pin_memory`` defaults to CUDA being available. Workers are capped at the CPU count and
    kept alive between epochs. With ``workers=0`` augmentation uses the main process's RNGs.

    A ``rect`` dataset (validation) is batched by its own aspect-ratio batches through
    :class:`RectBatchSampler`, split between ranks by whole batches; ``shuffle`` is then an error.
    """
    if distributed is None:
        distributed = _distributed_active()
    rank = dist.get_rank() if distributed else 0
    generator = torch.Generator()
    generator.manual_seed(seed + rank)  # ranks see different augmentations of their shards
    common = {**worker_settings(dataset, workers, pin_memory), "worker_init_fn": seed_worker, "generator": generator}
    batch_index = getattr(dataset, "batch_index", None)
    if getattr(dataset, "rect", False) and batch_index is not None:
        if shuffle:
            raise ValueError("a rect dataset (aspect-ratio batches) cannot be shuffled; use shuffle=False")
        if batch_size != int(np.bincount(batch_index).max()):
            LOGGER.warning("loader batch_size %d differs from the rect dataset's; using the dataset's batches",
                           batch_size)
        world = dist.get_world_size() if distributed else 1
        return ForkSafeLoader(dataset, batch_sampler=RectBatchSampler(batch_index, rank, world), **common)
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last) if distributed else None
    return ForkSafeLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      drop_last=drop_last, **common)
