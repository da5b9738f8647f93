"""The training loader: workers forked once per run, augmentation seeded per item.

A DataLoader built afresh each epoch forks its workers each epoch, and on the CPU that is the
dearest part of a short epoch: after a fork every page the training process writes is copied
on first touch, so the epoch's first step ran 3-5 s instead of ~1.2 s (yolov4s-mbv3s, 320, batch
16, 2 cores; 35 crater tiles, 3 steps an epoch: the epoch took 7.6 s with 2 fresh workers, 3.7 s
with none). Here the workers persist for the whole run, as Ultralytics' loader does.

Persistent workers keep their random state from epoch to epoch, so a resumed run would see other
augmentations than a straight one. Instead each item carries its own seed, drawn from (run seed,
epoch, rank, position in the epoch): an epoch's batches and augmentations depend only on those,
not on which worker made them, how many workers there are, or what ran before.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, Dataset, DistributedSampler, Sampler

from .loader import ForkSafeLoader, _distributed_active, worker_settings


def item_seed(seed: int, epoch: int, rank: int, position: int) -> int:
    """A 32-bit seed for one item, well mixed from its four coordinates (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([seed, epoch, rank, position]).generate_state(1)[0])


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(n)`` that depends only on ``seed`` and the epoch set."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + 1000 * self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class SeededItems(Sampler[tuple[int, int]]):
    """``(index, seed)`` for each index of ``order`` (a sampler with ``set_epoch``): the dataset
    seeds its augmentation with the second element."""

    def __init__(self, order: Sampler[int], seed: int, rank: int = 0) -> None:
        self.order, self.seed, self.rank, self.epoch = order, seed, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order.set_epoch(epoch)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self.order):
            yield int(index), item_seed(self.seed, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return len(self.order)  # type: ignore[arg-type]


class EpochLoader(ForkSafeLoader):
    """A DataLoader whose workers outlive the epoch; call :meth:`set_epoch` before iterating."""

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.sampler.set_epoch(epoch)  # type: ignore[union-attr]


def build_train_loader(dataset: Dataset, batch_size: int, workers: int, seed: int, drop_last: bool = False,
                       distributed: bool | None = None, pin_memory: bool | None = None) -> EpochLoader:
    """The shuffled training loader of ``dataset`` (which must take ``(index, seed)`` items, as
    :class:`~edgeyolo.data.DetectionDataset` does). Under torchrun (``distributed`` None: a process
    group of more than one) each rank takes its ``DistributedSampler`` share; ``batch_size`` is per rank."""
    distributed = _distributed_active() if distributed is None else distributed
    rank = dist.get_rank() if distributed else 0
    order: Sampler[int] = (DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=drop_last) if distributed
                           else EpochShuffle(len(dataset), seed))  # type: ignore[arg-type]
    batches = BatchSampler(SeededItems(order, seed, rank), batch_size, drop_last)
    return EpochLoader(dataset, batch_sampler=batches, **worker_settings(dataset, workers, pin_memory))
