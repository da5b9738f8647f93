"""The training loop: SGD/Adam with three parameter groups, accumulation to a nominal batch,
warm-up, cosine/linear LR, EMA, AMP on CUDA, multi-scale, clipping, early stopping, DDP, exact resume.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from edgeyolo.data import DetectionDataset, build_dataloader, load_data_config, synthetic_data_yaml
from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import make_checkpoint, atomic_torch_save, read_checkpoint
from edgeyolo.models.pretrained import load_backbone_weights
from edgeyolo.runs import increment_path, read_results, write_results, write_yaml

from .autoanchor import check_anchors
from .ema import ModelEMA, unwrap
from .finetune import set_frozen, transfer_weights
from .hyp import load_hyp
from .loss import YOLOLoss
from .multiscale import random_rescale
from .optim import build_optimizer, lr_lambda, warmup
from .precise_bn import recalibrate_bn
from .recipe import plan
from .seed import seed_everything
from .validate import ValResult, validate

# Defaults of a run on the built-in synthetic set: sized so that a 2-core CPU trains the default
# edge model to mAP@0.5 >= 0.7 in under 10 minutes (see README, measured there).
QUICK = {"imgsz": 160, "epochs": 10, "optimizer": "AdamW", "nbs": 16,
         "hyp": str(Path(__file__).with_name("hyp.quick.yaml"))}
DEFAULT = {"imgsz": 640, "epochs": 300, "optimizer": "auto", "nbs": 64, "hyp": None}


DEFAULT_MODEL = "yolov4s-mbv3s"


@dataclass
class TrainConfig:
    model: str | None = DEFAULT_MODEL  # None: DEFAULT_MODEL, or the model of ``weights``
    data: str | None = None  # None: the built-in synthetic set
    # None below: QUICK (synthetic data) or DEFAULT (user data) values
    epochs: int | None = None
    imgsz: int | None = None
    batch: int = 16  # per process
    nbs: int | None = None  # nominal batch: gradients accumulate to it
    device: str = ""  # "" = cuda:LOCAL_RANK if available, else cpu
    workers: int = 2
    backbone_weights: str | None = None
    weights: str | None = None  # an edgeyolo checkpoint to start from (fine-tuning)
    freeze_backbone: int = 0  # epochs with the backbone's weights and BN statistics fixed
    hyp: str | None = None
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    seed: int = 0
    optimizer: str | None = None  # SGD, Adam, AdamW or auto (by run length: train/recipe.py)
    schedule: str = "cosine"
    patience: int = 50  # validations without fitness improvement before stopping
    val_interval: int = 1  # validate every N epochs (and always after the last)
    multi_scale: bool = False
    close_mosaic: int | None = None  # final epochs without mosaic; None: by run length
    precise_bn: int = 0  # training images the EMA model's BatchNorm statistics are re-estimated on before validating
    autoanchor: bool = True  # fit the anchors to the labels before a new run (u5's check_anchors)
    sync_bn: bool = False
    cache: bool | None = None  # None: cache images in RAM for the synthetic set
    plots: bool = True
    progress: bool = True

    def resolved(self) -> TrainConfig:
        base = QUICK if self.data is None else DEFAULT
        filled = {k: v for k, v in base.items() if getattr(self, k) is None}
        if self.model is None and not self.weights:
            filled["model"] = DEFAULT_MODEL
        for k in ("data", "hyp", "model", "weights", "backbone_weights"):  # files: absolute, so that a
            v = filled.get(k, getattr(self, k))  # resume from another folder finds them (args are saved)
            if isinstance(v, str) and Path(v).is_file():
                filled[k] = str(Path(v).resolve())
        return dataclasses.replace(self, **filled, cache=(self.data is None) if self.cache is None else self.cache)


def _select_device(spec: str, local_rank: int) -> torch.device:
    if spec in ("", "auto"):
        spec = f"cuda:{max(local_rank, 0)}" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: CUDA is not available on this machine (use --device cpu)")
    return device


class Trainer:
    """``Trainer(cfg).fit()`` trains; ``Trainer.resume(path)`` continues a run from its last.pt."""

    def __init__(self, cfg: TrainConfig, run_dir: Path | None = None, state: dict[str, Any] | None = None):
        self.cfg = cfg = cfg.resolved()
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", -1))
        self.device = _select_device(cfg.device, self.local_rank)
        if self.world > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.main = self.rank == 0
        self.hyp = load_hyp(cfg.hyp)
        data_yaml = cfg.data or str(synthetic_data_yaml())
        self.data = load_data_config(data_yaml)
        self.names = list(self.data.names)
        self.run_dir = run_dir or increment_path(Path(cfg.project) / cfg.name, cfg.exist_ok)
        self.wdir = self.run_dir / "weights"

        seed_everything(cfg.seed)
        start = self._start_checkpoint() if cfg.weights and state is None else None
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
        # 320 ran 1.17x as fast on a 2-core CPU (benchmarks/results/cpu-amd-epyc/train_throughput.md).
        self.model = model.to(self.device, memory_format=torch.channels_last)
        stride = int(self.model.stride.max())
        if cfg.imgsz % stride:
            raise ValueError(f"--imgsz {cfg.imgsz} must be a multiple of the model's max stride {stride}")

        self.train_set = DetectionDataset(self.data, "train", cfg.imgsz, augment=True, hyp=self.hyp,
                                          cache_images=bool(cfg.cache))
        self.val_set = DetectionDataset(self.data, "val", cfg.imgsz, augment=False, rect=True, batch_size=cfg.batch * 2,
                                        cache_images=bool(cfg.cache)) if self.main else None
        self._val_dl = None
        self.anchor_note = self._fit_anchors() if state is None and cfg.autoanchor else ""
        self.hyp_given = dict(self.hyp)  # what hyp.yaml records: rerunnable with --hyp (not the scaled decay)
        self.nb = math.ceil(len(self.train_set) / (cfg.batch * self.world))  # batches per epoch
        self.recipe = plan(self.hyp, cfg.optimizer, len(self.train_set), cfg.batch * self.world, cfg.nbs, cfg.epochs,
                           len(self.names), self.nb, cfg.close_mosaic)
        self.accumulate = self.recipe.accumulate
        for m in self.model.modules():  # before the EMA copies the model
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = self.recipe.bn_momentum
        self.hyp.update(lr0=self.recipe.lr0, warmup_bias_lr=self.recipe.warmup_bias_lr)
        self.hyp["weight_decay"] *= cfg.batch * self.world * self.accumulate / cfg.nbs
        self.optimizer = build_optimizer(self.model, self.recipe.optimizer, self.hyp["lr0"], self.hyp["momentum"],
                                         self.hyp["weight_decay"])
        self.lf = lr_lambda(cfg.schedule, cfg.epochs, self.hyp["lrf"])
        self.ema = ModelEMA(self.model) if self.main else None
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
        if self.world > 1:
            if cfg.sync_bn:
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self._wrap_ddp()

    def _wrap_ddp(self) -> None:
        self.model = nn.parallel.DistributedDataParallel(
            unwrap(self.model), device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _start_checkpoint(self) -> dict[str, Any]:
        """The ``--weights`` checkpoint; the run's model becomes that checkpoint's model."""
        cfg = self.cfg
        if cfg.backbone_weights:
            raise ValueError("--weights (a whole detector) and --backbone-weights exclude each other: pick one")
        ckpt = read_checkpoint(cfg.weights)
        name = str(ckpt["cfg"].get("name", Path(cfg.weights).stem))
        if cfg.model is not None and name not in (cfg.model, Path(cfg.model).stem):
            raise ValueError(f"{cfg.weights}: a {name} checkpoint, but --model {cfg.model}; leave out --model to "
                             f"fine-tune it")
        self.cfg = dataclasses.replace(cfg, model=name)
        return ckpt

    def _fit_anchors(self) -> str:
        """Autoanchor on rank 0, its anchors broadcast to the others; before the EMA copies the model."""
        note = ""
        if self.main:
            found = check_anchors(self.model, self.train_set.labels, self.train_set.shapes, self.cfg.imgsz,
                                  float(self.hyp["anchor_t"]), seed=self.cfg.seed)
            note = found.message(self.cfg.imgsz, self.model.head.anchors)
        if self.world > 1:
            anchors = self.model.head.anchors.clone()
            dist.broadcast(anchors, 0)
            self.model.set_anchors(anchors)
        return note

    # -- checkpoints ---------------------------------------------------------------------------
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

    def _save(self, epoch: int, result: ValResult | None, is_best: bool) -> None:
        """last.pt every epoch (with the training state); best.pt when validation fitness improves."""
        meta = {"epoch": epoch, "imgsz": self.cfg.imgsz, "model": self.cfg.model,
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        if result is not None:
            meta.update({"fitness": result.fitness, "mAP50": result.metrics.map50, "mAP50-95": result.metrics.map})
        ckpt = make_checkpoint(self.ema.ema, self.names, meta, self._train_state(epoch))
        if is_best:  # best.pt first: a last.pt that records a new best fitness always has its best.pt
            atomic_torch_save({k: v for k, v in ckpt.items() if k != "train_state"}, self.wdir / "best.pt")
        atomic_torch_save(ckpt, self.wdir / "last.pt")

    @classmethod
    def resume(cls, target: str | Path, project: str = "runs/train") -> Trainer:
        """``target``: a last.pt, a run folder, or "auto" for the newest last.pt under ``project``."""
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
        state = {**state, "ema_model": ckpt["model"], "model_cfg": ckpt["cfg"]}
        return cls(cfg, run_dir=path.parent.parent, state=state)

    # -- the loop --------------------------------------------------------------------------------
    def _log(self, msg: str) -> None:
        if self.main:
            tqdm.write(msg)

    def _setup_run_dir(self) -> None:
        self.wdir.mkdir(parents=True, exist_ok=True)
        write_yaml(self.run_dir / "args.yaml", dataclasses.asdict(self.cfg))
        write_yaml(self.run_dir / "hyp.yaml", self.hyp_given)
        if self.cfg.plots and self.start_epoch == 0:
            from edgeyolo.data import plot_samples
            from edgeyolo.ops.plots import plot_labels

            labels = np.concatenate([lb for lb in self.train_set.labels if len(lb)] or [np.zeros((0, 5))])
            plot_labels(labels, self.run_dir / "labels.png", self.names, len(self.names))
            plot_samples(self.train_set, self.run_dir / "train_batch.png", n=16, seed=self.cfg.seed)

    def fit(self) -> Path:
        cfg = self.cfg
        if self.main:
            self._setup_run_dir()
            where = "resuming" if self.start_epoch else "training"
            self._log(f"{where} {cfg.model} on {self.data.source} ({len(self.train_set)} train images, imgsz "
                      f"{cfg.imgsz}, {cfg.epochs} epochs, device {self.device}) -> {self.run_dir}")
            if self.anchor_note:
                self._log(self.anchor_note)
            self._log(self.recipe.note)
            if self.frozen:
                self._log(f"backbone frozen for epochs {self.start_epoch + 1}-{min(cfg.freeze_backbone, cfg.epochs)}")
        rows = [r for r in read_results(self.run_dir / "results.csv") if r["epoch"] < self.start_epoch]
        nb, nw = self.nb, self.recipe.warmup_iters
        t_run = time.time()
        t_start = t_run - (rows[-1]["time"] if rows else 0.0)  # the time column keeps counting across a resume
        last_epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, cfg.epochs):
            last_epoch = epoch
            losses = self._train_epoch(epoch, nb, nw)
            lrs = [g["lr"] for g in self.optimizer.param_groups]
            stop = False
            if self.main:
                row = {"epoch": epoch, "time": time.time() - t_start, **{f"lr/pg{j}": lr for j, lr in enumerate(lrs)},
                       **dict(zip(("train/box_loss", "train/obj_loss", "train/cls_loss"), losses.tolist()))}
                result = None
                if (epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs:
                    self._recalibrate_bn(epoch)
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
                self._save(epoch, result, is_best)  # after the stop decision: last.pt says the run ended
                if stop:
                    self._log(f"early stop: no fitness improvement in {cfg.patience} validations")
            if self.world > 1:
                flag = [stop]
                dist.broadcast_object_list(flag, 0)
                stop = flag[0]
            if stop:
                break
        if self.main:
            self._finish(last_epoch + 1 - self.start_epoch, time.time() - t_run)
        return self.run_dir

    def _recalibrate_bn(self, epoch: int) -> None:
        """The EMA model's BatchNorm statistics from ``precise_bn`` training images as this epoch's
        loader gives them (train/precise_bn.py says why); a frozen backbone keeps its own."""
        cfg = self.cfg
        if cfg.precise_bn <= 0:
            return
        n_batches = math.ceil(cfg.precise_bn / cfg.batch)  # a small set is passed over more than once
        passes = math.ceil(n_batches / math.ceil(len(self.train_set) / cfg.batch))
        loaders = (build_dataloader(self.train_set, cfg.batch, cfg.workers, shuffle=True, distributed=False,
                                    seed=cfg.seed + 1000 * epoch + 1 + 100 * p) for p in range(passes))
        batches = (imgs.to(self.device).float().div_(255).contiguous(memory_format=torch.channels_last)
                   for _, (imgs, *_) in zip(range(n_batches), itertools.chain.from_iterable(loaders)))
        recalibrate_bn(self.ema.ema, batches, skip=self.ema.ema.backbone if self.frozen else None)

    def _val_loader(self) -> Any:
        """One loader for every validation: its workers persist, where a new loader would fork new
        ones each epoch (a second or more per epoch on a small set, for identical batches)."""
        if self._val_dl is None:
            batch = int(np.bincount(self.val_set.batch_index).max())  # the rect dataset's own batches
            self._val_dl = build_dataloader(self.val_set, batch, self.cfg.workers, shuffle=False, distributed=False)
        return self._val_dl

    def _train_epoch(self, epoch: int, nb: int, nw: int) -> np.ndarray:
        frozen = epoch < self.cfg.freeze_backbone
        if frozen != self.frozen:
            self.frozen = frozen
            set_frozen(unwrap(self.model).backbone, frozen)
            if self.world > 1:
                self._wrap_ddp()  # DDP only all-reduces the parameters that needed gradients when it was built
            self._log(f"epoch {epoch + 1}: backbone {'frozen' if frozen else 'unfrozen'}")
        cfg, hyp, model = self.cfg, self.hyp, self.model
        closing = epoch >= cfg.epochs - self.recipe.close_mosaic
        if closing and self.train_set.hyp["mosaic"] > 0:
            self.train_set.hyp["mosaic"] = 0.0  # the loader's workers copy the dataset at each epoch's start
            self._log(f"epoch {epoch + 1}: mosaic off for the last {cfg.epochs - epoch} epoch(s)")
        seed_everything(cfg.seed + 1000 * epoch + self.rank)
        # A fresh loader per epoch, seeded by epoch: a resumed run sees the same batches and
        # augmentations as a straight one.
        loader = build_dataloader(self.train_set, cfg.batch, cfg.workers, shuffle=True, seed=cfg.seed + 1000 * epoch,
                                  drop_last=False)
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for g in self.optimizer.param_groups:
            g["lr"] = hyp["lr0"] * self.lf(epoch)
        model.train()
        if frozen:
            unwrap(model).backbone.eval()  # BatchNorm keeps the statistics of the weights it starts from
        mloss = torch.zeros(3)
        bar = tqdm(enumerate(loader), total=len(loader), disable=not (self.main and cfg.progress),
                   bar_format="{l_bar}{bar:20}{r_bar}", leave=False)
        self.optimizer.zero_grad()
        accumulate = self.accumulate
        for i, (imgs, targets, _, _) in bar:
            ni = i + nb * epoch
            imgs = imgs.to(self.device, non_blocking=True).float().div_(255).contiguous(memory_format=torch.channels_last)
            if ni <= nw:
                accumulate = max(1, round(float(np.interp(ni, [0, nw], [1, cfg.nbs / (cfg.batch * self.world)]))))
                warmup(self.optimizer, ni, nw, self.lf(epoch), hyp["lr0"], hyp["warmup_bias_lr"],
                       hyp["warmup_momentum"], hyp["momentum"])
            if cfg.multi_scale:
                imgs = random_rescale(imgs, cfg.imgsz, int(unwrap(model).stride.max()))
            with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
                raw = model(imgs)
                loss, items = self.loss_fn([r.float() for r in raw], targets.to(self.device))
            if self.world > 1:
                loss = loss * self.world  # DDP averages gradients over ranks; YOLOv5 scales back
            self.scaler.scale(loss).backward()
            if ni - self.last_opt_step >= accumulate:
                self._step(model, ni)
            mloss = (mloss * i + items.cpu()) / (i + 1)
            if self.main and cfg.progress:
                mem = f"{torch.cuda.memory_reserved(self.device) / 2**30:.1f}G" if self.device.type == "cuda" else "cpu"
                bar.set_description(f"{epoch + 1}/{cfg.epochs} {mem} box {mloss[0]:.4f} obj {mloss[1]:.4f} "
                                    f"cls {mloss[2]:.4f} inst {targets.shape[0]:>3} {imgs.shape[-1]}px")
        if ni > self.last_opt_step:  # the epoch's last, partial accumulation (YOLOv5 drops it at the next zero_grad)
            self._step(model, ni)
        return mloss.numpy()

    def _step(self, model: nn.Module, ni: int) -> None:
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.update(model)
        self.last_opt_step = ni

    def _finish(self, epochs: int, seconds: float) -> None:
        best = self.wdir / "best.pt"
        summary = f"{epochs} epochs in {seconds / 60:.1f} min"
        if best.is_file() and self.cfg.plots:
            from edgeyolo.models.checkpoint import load_model
            from edgeyolo.ops import plots

            model, _ = load_model(best, self.device)
            result = validate(model, self._val_loader(), self.names, progress=self.cfg.progress)
            plots.plot_results(self.run_dir / "results.csv", self.run_dir / "results.png")
            plots.plot_pr_curve(result.metrics, self.run_dir / "PR_curve.png", self.names)
            plots.plot_conf_curve(result.metrics, self.run_dir / "F1_curve.png", self.names)
            plots.plot_confusion_matrix(result.confusion, self.run_dir / "confusion_matrix.png", self.names)
            self._log(result.table())
            summary += f"; best.pt mAP50 {result.metrics.map50:.3f} mAP50-95 {result.metrics.map:.3f}"
        self._log(f"{summary}. Results saved to {self.run_dir}")
