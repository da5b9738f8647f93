"""The training run: ``Trainer(cfg).fit()`` trains, ``Trainer.resume(path)`` continues a run
from its last.pt. It builds the run (data, model, fine-tuning start, autoanchor, the recipe's
optimizer and schedule, EMA) and runs the epochs, validating the EMA model and writing
results.csv and the checkpoints after each. The parts live beside it: ``config`` (what a run is
asked for), ``distributed`` (devices and DDP), ``checkpoint_state`` (state to and from last.pt,
resume), ``epoch_loop`` (one epoch), ``run_plots`` (figures).
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edgeyolo.data import DetectionDataset, build_dataloader, load_data_config, synthetic_data_yaml
from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import load_model
from edgeyolo.models.pretrained import load_backbone_weights
from edgeyolo.runs import increment_path, read_results, write_results, write_yaml

from .allocator import keep_freed_memory
from .autoanchor import check_anchors
from .checkpoint_state import CheckpointState, read_resume_state, read_start_checkpoint
from .config import TrainConfig
from .distributed import broadcast_anchors, broadcast_flag, init_processes, wrap_ddp
from .ema import ModelEMA
from .epoch_loop import EpochLoop
from .finetune import set_frozen, transfer_weights
from .hyp import load_hyp
from .loss import YOLOLoss
from .optim import build_optimizer, lr_lambda
from .precise_bn import recalibrate_bn
from .recipe import plan
from .run_plots import plot_final, plot_training_data
from .seed import seed_everything
from .validate import validate


class Trainer(CheckpointState, EpochLoop):
    """``Trainer(cfg).fit()`` trains; ``Trainer.resume(path)`` continues a run from its last.pt."""

    def __init__(self, cfg: TrainConfig, run_dir: Path | None = None, state: dict[str, Any] | None = None):
        self.cfg = cfg = cfg.resolved()
        self.procs = init_processes(cfg.device)
        self.device = self.procs.device
        # before the loader forks its workers, which inherit the setting
        self.allocator_note = keep_freed_memory() if self.device.type == "cpu" else ""
        self.hyp = load_hyp(cfg.hyp)
        data_yaml = cfg.data or str(synthetic_data_yaml())
        self.data = load_data_config(data_yaml)
        self.names = list(self.data.names)
        self.run_dir = run_dir or increment_path(Path(cfg.project) / cfg.name, cfg.exist_ok)
        self.weights_dir = self.run_dir / "weights"

        seed_everything(cfg.seed)
        start = None
        if cfg.weights and state is None:
            self.cfg, start = read_start_checkpoint(cfg)
        cfg = self.cfg
        # A resumed run rebuilds its model from last.pt's config (autoanchor's anchors, a YAML that
        # may have moved since), a fine-tuned one from its start checkpoint's.
        arch = state["model_cfg"] if state is not None else start["cfg"] if start is not None else self.cfg.model
        model = build_model(arch, nc=len(self.names))
        if start is not None:
            self._log(transfer_weights(model, start["model"], cfg.weights))
            if list(start["names"]) != self.names and len(start["names"]) == len(self.names):
                self._log(f"note: {cfg.weights} was trained on classes {', '.join(start['names'])}; --data names "
                          f"{', '.join(self.names)}: each class output starts from the checkpoint's class at its index")
        if cfg.backbone_weights and state is None:
            n = load_backbone_weights(model, cfg.backbone_weights)
            self._log(f"loaded {n} backbone tensors from {cfg.backbone_weights}")
        # Channels-last: oneDNN's (and cuDNN's) native layout; a training step of the default model at
        # 320 ran 1.17x as fast on a 2-core CPU (benchmarks/results/cpu-amd-epyc-avx2/train_throughput.md).
        self.model = model.to(self.device, memory_format=torch.channels_last)
        stride = int(self.model.stride.max())
        if cfg.imgsz % stride:
            raise ValueError(f"--imgsz {cfg.imgsz} must be a multiple of the model's max stride {stride}")

        world = self.procs.world
        self.train_set = DetectionDataset(self.data, "train", cfg.imgsz, augment=True, hyp=self.hyp,
                                          cache_images=cfg.cache)
        self.val_set = DetectionDataset(self.data, "val", cfg.imgsz, augment=False, rect=True, batch_size=cfg.batch * 2,
                                        cache_images=cfg.cache) if self.procs.main else None
        self._val_dl = None
        self._bn_view: DetectionDataset | None = None
        self._train_dl = None
        self.anchor_note = self._fit_anchors() if state is None and cfg.autoanchor != "off" else ""
        self.hyp_given = dict(self.hyp)  # what hyp.yaml records: rerunnable with --hyp (not the scaled decay)
        self.batches_per_epoch = math.ceil(len(self.train_set) / (cfg.batch * world))
        self.recipe = plan(self.hyp, cfg.optimizer, len(self.train_set), cfg.batch * world, cfg.nbs, cfg.epochs,
                           len(self.names), self.batches_per_epoch, cfg.close_mosaic, cfg.precise_bn)
        self.accumulate = self.recipe.accumulate
        for m in self.model.modules():  # before the EMA copies the model
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = self.recipe.bn_momentum
        self.hyp.update(lr0=self.recipe.lr0, warmup_bias_lr=self.recipe.warmup_bias_lr)
        self.hyp["weight_decay"] *= cfg.batch * world * self.accumulate / cfg.nbs
        self.optimizer = build_optimizer(self.model, self.recipe.optimizer, self.hyp["lr0"], self.hyp["momentum"],
                                         self.hyp["weight_decay"])
        self.lr_factor = lr_lambda(cfg.schedule, cfg.epochs, self.hyp["lrf"])
        self.ema = ModelEMA(self.model, self.recipe.ema_decay, self.recipe.ema_tau) if self.procs.main else None
        self.loss_fn = YOLOLoss(self.model, self.hyp, imgsz=cfg.imgsz)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda")
        self.start_epoch, self.best_fitness, self.last_opt_step = 0, -1.0, -1
        self.stale, self.stopped_early = 0, False  # validations without improvement; saved, so a resume keeps counting
        if state is not None:
            self._load_state(state)
        self.frozen = self.start_epoch < cfg.freeze_backbone
        set_frozen(self.model.backbone, self.frozen)  # before DDP, which hooks only parameters that need grads
        if cfg.freeze_backbone and not (cfg.weights or cfg.backbone_weights):
            self._log(f"warning: --freeze-backbone {cfg.freeze_backbone} without --weights or --backbone-weights "
                      "keeps a randomly initialised backbone fixed")
        if self.procs.distributed:
            if cfg.sync_bn:
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.model = wrap_ddp(self.model, self.device)

    def _log(self, msg: str) -> None:
        if self.procs.main:
            tqdm.write(msg)

    @classmethod
    def resume(cls, target: str | Path, project: str = "runs/train") -> Trainer:
        """``target``: a last.pt, a run folder, or "auto" for the newest last.pt under ``project``."""
        cfg, state, run_dir = read_resume_state(target, project)
        return cls(cfg, run_dir=run_dir, state=state)

    def _fit_anchors(self) -> str:
        """Autoanchor on rank 0, its anchors broadcast to the others; before the EMA copies the model."""
        note = ""
        if self.procs.main:
            found = check_anchors(self.model, self.train_set.labels, self.train_set.shapes, self.cfg.imgsz,
                                  float(self.hyp["anchor_t"]), self.cfg.seed, mode=self.cfg.autoanchor)
            note = found.message(self.cfg.imgsz, self.model.head.anchors)
        if self.procs.distributed:
            broadcast_anchors(self.model)
        return note

    def _setup_run_dir(self) -> None:
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(self.run_dir / "args.yaml", dataclasses.asdict(self.cfg))
        write_yaml(self.run_dir / "hyp.yaml", self.hyp_given)
        if self.cfg.plots and self.start_epoch == 0:
            plot_training_data(self.run_dir, self.train_set, self.names, self.cfg.seed)

    def fit(self) -> Path:
        cfg = self.cfg
        if self.procs.main:
            self._setup_run_dir()
            where = "resuming" if self.start_epoch else "training"
            self._log(f"{where} {cfg.model} on {self.data.source} ({len(self.train_set)} train images, imgsz "
                      f"{cfg.imgsz}, {cfg.epochs} epochs, device {self.device}) -> {self.run_dir}")
            for note in (self.anchor_note, self.allocator_note):
                if note:
                    self._log(note)
            self._log(self.recipe.note)
            if self.frozen:
                self._log(f"backbone frozen for epochs {self.start_epoch + 1}-{min(cfg.freeze_backbone, cfg.epochs)}")
        rows = [r for r in read_results(self.run_dir / "results.csv") if r["epoch"] < self.start_epoch]
        t_run = time.time()
        t_start = t_run - (rows[-1]["time"] if rows else 0.0)  # the time column keeps counting across a resume
        last_epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, cfg.epochs):
            last_epoch = epoch
            losses = self._train_epoch(epoch, self.batches_per_epoch, self.recipe.warmup_iters)
            stop = self._end_epoch(epoch, losses, t_start, rows) if self.procs.main else False
            if self.procs.distributed:
                stop = broadcast_flag(stop)
            if stop:
                break
        if self.procs.main:
            self._finish(last_epoch + 1 - self.start_epoch, time.time() - t_run)
        return self.run_dir

    def _end_epoch(self, epoch: int, losses: np.ndarray, t_start: float, rows: list[dict[str, float]]) -> bool:
        """Rank 0 after ``epoch``: validate when due, append the epoch's row to results.csv, save the
        checkpoints -> whether to stop early."""
        cfg = self.cfg
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        row = {"epoch": epoch, "time": time.time() - t_start, **{f"lr/pg{j}": lr for j, lr in enumerate(lrs)},
               **dict(zip(("train/box_loss", "train/obj_loss", "train/cls_loss"), losses.tolist()))}
        result = None
        if (epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs:
            self._recalibrate_bn()
            result = validate(self.ema.ema, self._val_loader(), self.names, loss_fn=self.loss_fn,
                              progress=cfg.progress)
            row.update(result.summary())
            m = result.metrics
            self._log(f"epoch {epoch + 1}/{cfg.epochs}: mAP50 {m.map50:.3f}  mAP50-95 {m.map:.3f}  "
                      f"P {m.mp:.3f}  R {m.mr:.3f}")
        rows.append(row)  # metrics stay NaN on epochs that were not validated
        write_results(self.run_dir / "results.csv", rows)
        is_best = result is not None and result.fitness > self.best_fitness
        if result is not None:
            self.best_fitness = max(self.best_fitness, result.fitness)
            self.stale = 0 if is_best else self.stale + 1
        stop = self.stopped_early = self.stale >= cfg.patience
        # after the stop decision: last.pt says the run ended
        self._save_checkpoints(epoch, result, is_best, final=stop or epoch + 1 == cfg.epochs)
        if stop:
            self._log(f"early stop: no fitness improvement in {cfg.patience} validations")
        return stop

    def _recalibrate_bn(self) -> None:
        """The EMA model's BatchNorm statistics from the recipe's ``precise_bn`` training images as
        validation letterboxes them (train/precise_bn.py says why); the same images at every
        validation, in the main process (a loader's workers would be forked anew each time). A
        frozen backbone keeps its own statistics."""
        n = self.recipe.precise_bn
        if n <= 0:
            return
        if self._bn_view is None:  # a fixed random sample of n images, in rect batches
            pick = torch.randperm(len(self.train_set), generator=torch.Generator().manual_seed(self.cfg.seed))[:n]
            self._bn_view = self.train_set.validation_view(sorted(pick.tolist()), self.cfg.batch)
        loader = build_dataloader(self._bn_view, self.cfg.batch, 0, shuffle=False, distributed=False)
        batches = (imgs.to(self.device).float().div_(255).contiguous(memory_format=torch.channels_last)
                   for imgs, *_ in loader)
        recalibrate_bn(self.ema.ema, batches, skip=self.ema.ema.backbone if self.frozen else None)

    def _val_loader(self) -> Any:
        """One loader for every validation: its workers persist, where a new loader would fork new
        ones each epoch (a second or more per epoch on a small set, for identical batches)."""
        if self._val_dl is None:
            batch = int(np.bincount(self.val_set.batch_index).max())  # the rect dataset's own batches
            self._val_dl = build_dataloader(self.val_set, batch, self.cfg.workers, shuffle=False, distributed=False)
        return self._val_dl

    def _finish(self, epochs: int, seconds: float) -> None:
        best = self.weights_dir / "best.pt"
        summary = f"{epochs} epochs in {seconds / 60:.1f} min"
        if best.is_file() and self.cfg.plots:
            model, _ = load_model(best, self.device)
            result = validate(model, self._val_loader(), self.names, progress=self.cfg.progress)
            plot_final(self.run_dir, result, self.names)
            self._log(result.table())
            summary += f"; best.pt mAP50 {result.metrics.map50:.3f} mAP50-95 {result.metrics.map:.3f}"
        self._log(f"{summary}. Results saved to {self.run_dir}")
