"""What a run of a given length gets: the optimizer and its learning rate, the optimizer steps per
batch (accumulation to the nominal batch), the warm-up length, when mosaic stops, how fast
BatchNorm's running statistics follow the weights and how many updates the weights' EMA averages.

YOLOv5's scratch recipe (SGD at 0.01, accumulation to 64 images, at least 100 warm-up iterations,
mosaic to the end) assumes COCO-sized runs of hundreds of thousands of iterations. A user's set of
a few hundred images at 60 epochs gets a few hundred iterations: accumulation leaves one optimizer
step an epoch, the warm-up takes half the run, and SGD barely moves in that. The rules below keep
the long-run recipe for long runs and give short ones enough full-rate optimizer steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .ema import DECAY as EMA_DECAY, TAU as EMA_TAU

# Over this many nominal-batch iterations, SGD (YOLOv5's long-run choice); under it, AdamW, which
# converges in far fewer steps. The same threshold as Ultralytics' optimizer=auto.
SGD_ITERATIONS = 10_000
MIN_STEPS_PER_EPOCH = 4  # accumulation never leaves fewer optimizer steps than this per epoch
MAX_WARMUP_SHARE = 0.2  # the warm-up never takes more than this share of the run's iterations
# The last share of epochs can train on whole images (what validation sees), as Ultralytics'
# close_mosaic does; off by default: on the real crater set, with the short-run BatchNorm momentum,
# validation mAP fell from ~0.13 to ~0.03 the epoch mosaic stopped (benchmarks/results/cpu-amd-epyc/
# real_data.png, where it ran for the last 6 of 60 epochs). --close-mosaic N still asks for it.
CLOSE_MOSAIC_SHARE = 0.0
CLOSE_MOSAIC_MAX = 10
# BatchNorm running statistics follow the batches with this momentum. YOLOv5's 0.03 (a window of
# ~33 steps) suits long SGD runs; in a short AdamW run every weight moves by about the rate at each
# step, and statistics 33 steps old no longer describe the network that is validated: a model that
# had fitted four real tiles scored mAP@0.5 0.008 on them. 0.1 (PyTorch's default) tracks it.
BN_MOMENTUM_LONG, BN_MOMENTUM_SHORT = 0.03, 0.1
# The weights' EMA (validated and saved): ModelEMA's defaults are YOLOv5's decay 0.9999 (an average
# over ~10,000 updates), ramped in as 1 - exp(-updates / 2000). A run of a few hundred updates
# never gets past the ramp (the crater set's 180 updates end at decay 0.09), so its EMA is just the
# last weights and the saved model moves with every step's noise. The average is capped at this
# share of the run's optimizer updates instead.
EMA_SHARE = 0.05
# --precise-bn N re-estimates the validated (EMA) model's BatchNorm statistics before each validation
# on N training images letterboxed as validation letterboxes them; off by default. It removes a
# long run's mid-run collapse: a 300-epoch run on the real nuclei set validated at mAP@0.5 0.18-0.20
# for epochs 44-48 with the running statistics, its same weights at 0.83-0.87 re-estimated (without
# it the run recovers by epoch 79, given the patience, and ends level with yolov8n). But at the end of
# 60-epoch runs the running statistics (of mosaic batches, which the weights were trained under)
# score higher: craters 0.354 / 0.153 against 0.267 / 0.101, nuclei 0.867 / 0.491 against 0.840 / 0.403.
# From 64 mosaic images the estimate swings with the draw (0.01 at nuclei epoch 9 against 0.14); from
# tiles letterboxed square, without the grey that validation puts around them, validation floods.
# benchmarks/results/cpu-amd-epyc-avx2/bn_statistics.md and recipe-trials/.


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    lr0: float
    warmup_bias_lr: float
    accumulate: int
    warmup_iters: int  # -1: no warm-up
    close_mosaic: int  # final epochs without mosaic
    bn_momentum: float  # BatchNorm running-statistics momentum
    precise_bn: int  # training images the BatchNorm statistics are re-estimated on before validating (0: off)
    ema_decay: float  # the weights' EMA: final decay and ramp time constant (optimizer updates)
    ema_tau: float
    note: str  # one line saying what was chosen, for the run's log


def auto_optimizer(n_images: int, batch: int, nbs: int, epochs: int, nc: int) -> tuple[str, float]:
    """(name, lr0) by run length: SGD at YOLOv5's 0.01 for long runs, else AdamW at
    0.002 * 5 / (4 + nc) (Ultralytics' fitted rate: fewer classes, a larger step)."""
    iterations = math.ceil(n_images / max(batch, nbs)) * epochs
    if iterations > SGD_ITERATIONS:
        return "SGD", 0.01
    return "AdamW", round(0.002 * 5 / (4 + nc), 6)


def accumulation(nbs: int, batch: int, batches_per_epoch: int) -> int:
    """Batches summed per optimizer step: to the nominal batch, but never fewer than
    ``MIN_STEPS_PER_EPOCH`` steps an epoch (a small set would otherwise step once an epoch)."""
    nominal = max(round(nbs / batch), 1)
    return max(1, min(nominal, batches_per_epoch // MIN_STEPS_PER_EPOCH))


def warmup_iterations(warmup_epochs: float, batches_per_epoch: int, epochs: int) -> int:
    """YOLOv5's warm-up (``warmup_epochs`` of batches, at least 100), capped at
    ``MAX_WARMUP_SHARE`` of the run so that a short run trains mostly at full rate; -1 for none."""
    if warmup_epochs <= 0:
        return -1
    total = batches_per_epoch * epochs
    return max(1, min(max(round(warmup_epochs * batches_per_epoch), 100), round(MAX_WARMUP_SHARE * total)))


def close_mosaic_epochs(epochs: int) -> int:
    """Final epochs trained without mosaic by default: ``CLOSE_MOSAIC_SHARE`` of the run, at most 10."""
    return min(CLOSE_MOSAIC_MAX, int(epochs * CLOSE_MOSAIC_SHARE))


def ema_settings(updates: int) -> tuple[float, float]:
    """(decay, tau) of the weights' EMA for a run of ``updates`` optimizer steps: YOLOv5's
    (0.9999, 2000) for runs of 40,000 updates and more; a shorter run averages over its last
    ``EMA_SHARE`` of updates (decay 1 - 1 / horizon), ramped in over as many."""
    horizon = max(EMA_SHARE * updates, 1.0)
    return min(EMA_DECAY, 1.0 - 1.0 / horizon), min(EMA_TAU, horizon)


def plan(hyp: dict[str, float], optimizer: str, n_images: int, batch: int, nbs: int, epochs: int, nc: int,
         batches_per_epoch: int, close_mosaic: int | None, precise_bn: int = 0) -> Recipe:
    """The recipe for a run; ``optimizer`` "auto" picks by run length (then the fitted lr0 replaces
    the hyp's, which is SGD's), a name keeps the hyp's lr0. ``close_mosaic`` None: by run length."""
    lr0, bias_lr = float(hyp["lr0"]), float(hyp["warmup_bias_lr"])
    name = optimizer
    if optimizer == "auto":
        name, lr0 = auto_optimizer(n_images, batch, nbs, epochs, nc)
    if name != "SGD":
        # A bias warm-up from 0.1 is SGD's: under Adam every step moves a weight by about the rate,
        # so 0.1 throws the detection biases (their prior) far off in the first steps.
        bias_lr = min(bias_lr, lr0)
    acc = accumulation(nbs, batch, batches_per_epoch)
    nw = warmup_iterations(float(hyp["warmup_epochs"]), batches_per_epoch, epochs)
    closing = close_mosaic_epochs(epochs) if close_mosaic is None else min(close_mosaic, epochs)
    long_run = auto_optimizer(n_images, batch, nbs, epochs, nc)[0] == "SGD"
    bn_momentum = BN_MOMENTUM_LONG if long_run else BN_MOMENTUM_SHORT
    precise_bn = min(precise_bn, n_images)  # not augmented: a second pass over an image adds nothing
    ema_decay, ema_tau = ema_settings(math.ceil(batches_per_epoch / acc) * epochs)
    note = (f"recipe: {name} lr0 {lr0:g}{' (auto, by run length)' if optimizer == 'auto' else ''}, "
            f"{acc} batch(es) per optimizer step, warm-up {max(nw, 0)} iterations, "
            f"mosaic off for the last {closing} epoch(s), BatchNorm momentum {bn_momentum:g}"
            + (f", statistics re-estimated on {precise_bn} training images before validating" if precise_bn else "")
            + f", EMA decay {ema_decay:.4g} (ramp {ema_tau:g} updates)")
    return Recipe(name, lr0, bias_lr, acc, nw, closing, bn_momentum, precise_bn, ema_decay, ema_tau, note)
