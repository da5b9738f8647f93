"""Where a training process runs: its device, its rank among ``torchrun``'s processes (RANK,
WORLD_SIZE, LOCAL_RANK), the process group, the DDP wrapper, and what rank 0 decides alone and
sends to the others (autoanchor's anchors, the early-stop flag)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .ema import unwrap


def select_device(spec: str, local_rank: int) -> torch.device:
    """``spec`` ("" or "auto": cuda:LOCAL_RANK when CUDA is there, else cpu) -> the device; an
    explicit CUDA device on a machine without CUDA is refused."""
    if spec in ("", "auto"):
        spec = f"cuda:{max(local_rank, 0)}" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: CUDA is not available on this machine (use --device cpu)")
    return device


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: ``rank`` of ``world`` processes, on ``device``."""

    rank: int
    world: int
    local_rank: int  # -1 outside torchrun
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, logs and writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_processes(device_spec: str) -> Processes:
    """This process's rank and device from torchrun's environment; with more than one process,
    the process group (NCCL on CUDA, Gloo on the CPU) is joined."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", -1))
    device = select_device(device_spec, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, local_rank, device)


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` (or the model inside a previous wrapper) in a new DDP wrapper: DDP all-reduces
    only the parameters that needed gradients when it was built, so a freeze change rewraps."""
    return nn.parallel.DistributedDataParallel(unwrap(model),
                                               device_ids=[device.index] if device.type == "cuda" else None)


def broadcast_anchors(model: nn.Module) -> None:
    """Every rank takes rank 0's anchors (its autoanchor result), (nl, na, 2) pixels."""
    anchors = model.head.anchors.clone()
    dist.broadcast(anchors, 0)
    model.set_anchors(anchors)


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (the early-stop decision, made where validation runs)."""
    box = [flag]
    dist.broadcast_object_list(box, 0)
    return box[0]
