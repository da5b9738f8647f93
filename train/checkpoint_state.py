"""A training run's state to and from its checkpoints: last.pt every epoch (the EMA model for
deployment plus ``train_state``: the raw model, optimizer, scaler, EMA count, early-stop counters
and the run's args, everything an exact resume needs), best.pt when fitness improves; the
``--weights`` checkpoint a fine-tuning run starts from; and what ``--resume`` points at."""
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

    def _save_checkpoints(self, epoch: int, result: ValResult | None, is_best: bool) -> None:
        """last.pt every epoch (with the training state); best.pt when validation fitness improves."""
        meta = {"epoch": epoch, "imgsz": self.cfg.imgsz, "model": self.cfg.model,
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        if result is not None:
            meta.update({"fitness": result.fitness, "mAP50": result.metrics.map50, "mAP50-95": result.metrics.map})
        ckpt = make_checkpoint(self.ema.ema, self.names, meta, self._train_state(epoch))
        if is_best:  # best.pt first: a last.pt that records a new best fitness always has its best.pt
            atomic_torch_save({k: v for k, v in ckpt.items() if k != "train_state"}, self.weights_dir / "best.pt")
        atomic_torch_save(ckpt, self.weights_dir / "last.pt")
