"""One training epoch: the backbone freeze switch, closing mosaic, a loader seeded by epoch,
warm-up, multi-scale, AMP on CUDA, accumulation to the nominal batch, gradient clipping and the
EMA update after each optimizer step."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edgeyolo.data import DetectionDataset, build_train_loader

from .config import TrainConfig
from .distributed import Processes, wrap_ddp
from .ema import ModelEMA, unwrap
from .finetune import set_frozen
from .loss import YOLOLoss
from .multiscale import random_rescale
from .optim import warmup
from .seed import seed_everything

if TYPE_CHECKING:
    from .recipe import Recipe


class EpochLoop:
    """The Trainer's epoch (a mixin: the attributes below are the Trainer's)."""

    cfg: TrainConfig
    hyp: dict
    procs: Processes
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    loss_fn: YOLOLoss
    train_set: DetectionDataset
    recipe: Recipe
    accumulate: int  # batches per optimizer step after warm-up
    lr_factor: Callable[[int], float]  # epoch -> multiplier of lr0 (the cosine or linear schedule)
    frozen: bool
    last_opt_step: int  # the iteration of the last optimizer step, over the whole run
    _log: Callable[[str], None]

    def _train_epoch(self, epoch: int, batches_per_epoch: int, warmup_iterations: int) -> np.ndarray:
        """Train ``epoch`` -> (3,) mean box, obj, cls loss over its batches."""
        frozen = epoch < self.cfg.freeze_backbone
        if frozen != self.frozen:
            self.frozen = frozen
            set_frozen(unwrap(self.model).backbone, frozen)
            if self.procs.distributed:
                self.model = wrap_ddp(self.model, self.device)
            self._log(f"epoch {epoch + 1}: backbone {'frozen' if frozen else 'unfrozen'}")
        cfg, hyp, model = self.cfg, self.hyp, self.model
        world = self.procs.world
        closing = epoch >= cfg.epochs - self.recipe.close_mosaic
        if closing and self.train_set.hyp["mosaic"] > 0:
            self.train_set.hyp["mosaic"] = 0.0
            self._train_dl = None  # its workers hold a copy of the dataset made with mosaic on
            self._log(f"epoch {epoch + 1}: mosaic off for the last {cfg.epochs - epoch} epoch(s)")
        seed_everything(cfg.seed + 1000 * epoch + self.procs.rank)
        if self._train_dl is None:  # workers forked once (edgeyolo/data/epoch_loader.py says why)
            self._train_dl = build_train_loader(self.train_set, cfg.batch, cfg.workers, seed=cfg.seed)
        loader = self._train_dl
        loader.set_epoch(epoch)  # batches and augmentations depend on (seed, epoch) only: a resume repeats them
        for g in self.optimizer.param_groups:
            g["lr"] = hyp["lr0"] * self.lr_factor(epoch)
        model.train()
        if frozen:
            unwrap(model).backbone.eval()  # BatchNorm keeps the statistics of the weights it starts from
        mean_losses = torch.zeros(3)
        bar = tqdm(enumerate(loader), total=len(loader), disable=not (self.procs.main and cfg.progress),
                   bar_format="{l_bar}{bar:20}{r_bar}", leave=False)
        self.optimizer.zero_grad()
        accumulate = self.accumulate
        for i, (imgs, targets, _, _) in bar:
            iteration = i + batches_per_epoch * epoch
            imgs = imgs.to(self.device, non_blocking=True).float().div_(255).contiguous(memory_format=torch.channels_last)
            if iteration <= warmup_iterations:
                accumulate = max(1, round(float(np.interp(iteration, [0, warmup_iterations],
                                                          [1, cfg.nbs / (cfg.batch * world)]))))
                warmup(self.optimizer, iteration, warmup_iterations, self.lr_factor(epoch), hyp["lr0"],
                       hyp["warmup_bias_lr"], hyp["warmup_momentum"], hyp["momentum"])
            if cfg.multi_scale:
                imgs = random_rescale(imgs, cfg.imgsz, int(unwrap(model).stride.max()))
            with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
                raw = model(imgs)
                loss, items = self.loss_fn([r.float() for r in raw], targets.to(self.device))
            if world > 1:
                loss = loss * world  # DDP averages gradients over ranks; YOLOv5 scales back
            self.scaler.scale(loss).backward()
            if iteration - self.last_opt_step >= accumulate:
                self._optimizer_step(model, iteration)
            mean_losses = (mean_losses * i + items.cpu()) / (i + 1)
            if self.procs.main and cfg.progress:
                mem = f"{torch.cuda.memory_reserved(self.device) / 2**30:.1f}G" if self.device.type == "cuda" else "cpu"
                bar.set_description(f"{epoch + 1}/{cfg.epochs} {mem} box {mean_losses[0]:.4f} obj {mean_losses[1]:.4f} "
                                    f"cls {mean_losses[2]:.4f} inst {targets.shape[0]:>3} {imgs.shape[-1]}px")
        if iteration > self.last_opt_step:  # the epoch's last, partial accumulation (YOLOv5 drops it at the next zero_grad)
            self._optimizer_step(model, iteration)
        return mean_losses.numpy()

    def _optimizer_step(self, model: nn.Module, iteration: int) -> None:
        """Unscale, clip the gradient norm to 10, step, and update the EMA."""
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.update(model)
        self.last_opt_step = iteration
