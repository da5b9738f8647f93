"""A training run's state to and from its checkpoints: last.pt (the EMA model for deployment plus
``train_state``: the raw model, optimizer, scaler, EMA count, early-stop counters and the run's
args, everything an exact resume needs) and best.pt (the EMA model of the best validation
fitness); the ``--weights`` checkpoint a fine-tuning run starts from; and what ``--resume`` points at.

When they are written: after the run's first epoch, then at most every ``save_interval`` seconds,
and after its last epoch or an early stop (``save_interval`` 0: every epoch). last.pt holds four
copies of the weights (EMA, raw, AdamW's two moments): 96 MB for the default model, and writing it
took 0.5-1.1 s of a 5-6 s epoch on the real crater set (2-core CPU); an epoch of COCO takes
minutes and is still written every epoch. A new best is held in memory (a copy of the EMA weights)
and written just before last.pt, so that the best.pt on disk is always the one last.pt's
``best_fitness`` names: a run resumed from an older last.pt keeps comparing against its best.pt.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from edgeyolo.models.checkpoint import atomic_torch_save, make_checkpoint, read_checkpoint

from .config import TrainConfig
from .ema import ModelEMA, unwrap

if TYPE_CHECKING:
    from edgeyolo.ops.evaluate import ValResult


def read_start_checkpoint(cfg: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """The ``--weights`` checkpoint, and ``cfg`` with the model set to that checkpoint's model."""
    if cfg.backbone_weights:
        raise ValueError("--weights (a whole detector) and --backbone-weights exclude each other: pick one")
    ckpt = read_checkpoint(cfg.weights)
    name = str(ckpt["cfg"].get("name", Path(cfg.weights).stem))
    if cfg.model is not None and name not in (cfg.model, Path(cfg.model).stem):
        raise ValueError(f"{cfg.weights}: a {name} checkpoint, but --model {cfg.model}; leave out --model to "
                         f"fine-tune it")
    return dataclasses.replace(cfg, model=name), ckpt


def read_resume_state(target: str | Path, project: str = "runs/train") -> tuple[TrainConfig, dict[str, Any], Path]:
    """``target``: a last.pt, a run folder, or "auto" for the newest last.pt under ``project`` ->
    (the run's config, its training state with the EMA model and model config added, run folder)."""
    if str(target) == "auto":
        found = sorted(Path(project).glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ValueError(f"{project}: no run with weights/last.pt to resume")
        target = found[-1]
    path = Path(target)
    if path.is_dir():
        path = path / "weights" / "last.pt"
    ckpt = read_checkpoint(path)
    state = ckpt.get("train_state")
    if not state:
        raise ValueError(f"{path}: has no training state (a best.pt or an exported file?); resume from last.pt")
    cfg = TrainConfig(**state["args"])
    if int(state["epoch"]) + 1 >= cfg.epochs:
        raise ValueError(f"{path}: this run already finished its {cfg.epochs} epochs")
    if state.get("stopped_early"):
        raise ValueError(f"{path}: this run stopped early after epoch {int(state['epoch']) + 1} (no fitness "
                         f"improvement in {cfg.patience} validations); start a new run to train further")
    return cfg, {**state, "ema_model": ckpt["model"], "model_cfg": ckpt["cfg"]}, path.parent.parent


class CheckpointState:
    """The Trainer's part that writes and restores its state (a mixin: the attributes below are
    the Trainer's)."""

    cfg: TrainConfig
    names: list[str]
    weights_dir: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    start_epoch: int
    best_fitness: float
    last_opt_step: int
    stale: int  # validations without improvement; saved, so a resume keeps counting
    stopped_early: bool
    _last_write: float | None = None  # time.monotonic() of this process's last write of last.pt
    _pending_best: dict[str, Any] | None = None  # a best.pt not written yet

    def _train_state(self, epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "best_fitness": self.best_fitness, "last_opt_step": self.last_opt_step,
                "stale": self.stale, "stopped_early": self.stopped_early,
                "raw_model": {k: v.detach().cpu() for k, v in unwrap(self.model).state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "ema_updates": self.ema.updates, "args": dataclasses.asdict(self.cfg)}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["raw_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.ema.load_state_dict(state["ema_model"])
            self.ema.updates = int(state["ema_updates"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best_fitness, self.last_opt_step = float(state["best_fitness"]), int(state["last_opt_step"])
        self.stale = int(state.get("stale", 0))  # checkpoints from before early stopping was saved: 0

    def _save_checkpoints(self, epoch: int, result: ValResult | None, is_best: bool, final: bool) -> None:
        """After ``epoch``: keep a new best (in memory, see the module docstring), then write best.pt
        and last.pt when due: ``final`` (the run's last epoch or an early stop), its first epoch, or
        ``save_interval`` seconds after the last write."""
        meta = {"epoch": epoch, "imgsz": self.cfg.imgsz, "model": self.cfg.model,
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        if result is not None:
            meta.update({"fitness": result.fitness, "mAP50": result.metrics.map50, "mAP50-95": result.metrics.map})
        now = time.monotonic()
        due = final or self._last_write is None or now - self._last_write >= self.cfg.save_interval
        if not (due or is_best):  # nothing to keep or write (on a GPU, a checkpoint is a copy to the host)
            return
        ckpt = make_checkpoint(self.ema.ema, self.names, meta)
        if is_best:  # a copy unless written now: the EMA's tensors change in place at the next step
            self._pending_best = ckpt if due else {**ckpt, "model": {k: v.clone() for k, v in ckpt["model"].items()}}
        if not due:
            return
        if self._pending_best is not None:  # best.pt first: the last.pt that records its fitness follows
            atomic_torch_save(self._pending_best, self.weights_dir / "best.pt")
            self._pending_best = None
        atomic_torch_save({**ckpt, "train_state": self._train_state(epoch)}, self.weights_dir / "last.pt")
        self._last_write = now
