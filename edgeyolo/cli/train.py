"""``edgeyolo train``: the options of a run; the work is in ``edgeyolo.train.trainer``."""
from __future__ import annotations

import click


@click.command()
@click.option("--model", default=None,
              help="Model name (edgeyolo info --list) or YAML. Default: yolov4s-mbv3s, or the model of --weights.")
@click.option("--data", default=None, help="Data YAML (Ultralytics form). Default: the built-in synthetic set.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Default: 10 on the synthetic set, else 300.")
@click.option("--imgsz", type=click.IntRange(min=32), default=None, help="Default: 160 on the synthetic set, else 640.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Batch size per process.")
@click.option("--nbs", type=click.IntRange(min=1), default=None,
              help="Nominal batch: gradients accumulate to it. Default: 16 on the synthetic set, else 64.")
@click.option("--device", default="", help="cpu, cuda:0, ... (default: CUDA if available).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--backbone-weights", default=None, help="Local ImageNet checkpoint for the backbone.")
@click.option("--weights", default=None,
              help="Fine-tune: start from an edgeyolo checkpoint (its model, anchors and every weight that fits; the "
                   "class outputs start afresh when --data has another class count).")
@click.option("--freeze-backbone", type=click.IntRange(min=0), default=0, show_default=True, metavar="EPOCHS",
              help="Keep the backbone's weights and BatchNorm statistics fixed for the first EPOCHS epochs while the "
                   "neck and head learn (fine-tuning; >= --epochs: the whole run).")
@click.option("--hyp", default=None, help="Hyperparameter YAML (any subset of train/hyp.scratch.yaml). "
              "Default: hyp.quick.yaml on the synthetic set, else the scratch defaults.")
@click.option("--project", default="runs/train", show_default=True)
@click.option("--name", default="exp", show_default=True)
@click.option("--exist-ok", is_flag=True, help="Reuse project/name instead of incrementing it.")
@click.option("--resume", default=None, is_flag=False, flag_value="auto",
              help="Continue a run: a last.pt, a run folder, or nothing for the newest run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--optimizer", type=click.Choice(["SGD", "Adam", "AdamW", "auto"]), default=None,
              help="Default: AdamW on the synthetic set, else auto: SGD (Nesterov, the hyp's lr0) for runs of over "
                   "10,000 nominal-batch iterations, AdamW at 0.002 * 5 / (4 + classes) for shorter ones.")
@click.option("--schedule", type=click.Choice(["cosine", "linear"]), default="cosine", show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=100, show_default=True,
              help="Stop after this many validations without a fitness improvement (epochs, with --val-interval 1; "
                   "YOLOv5's and Ultralytics' 100).")
@click.option("--val-interval", type=click.IntRange(min=1), default=1, show_default=True,
              help="Validate every N epochs (always after the last).")
@click.option("--save-interval", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="SECONDS",
              help="Write last.pt (the resumable state) and a new best.pt after the first epoch, then at most every "
                   "SECONDS, and after the last epoch (0: every epoch). A run of short epochs on a small set would "
                   "otherwise spend a tenth of its time writing them; an interrupted run resumes from the last write.")
@click.option("--multi-scale", is_flag=True, help="Random image size in [0.5, 1.5] x imgsz per batch.")
@click.option("--close-mosaic", type=click.IntRange(min=0), default=None, metavar="EPOCHS",
              help="Train the last EPOCHS epochs without mosaic, on whole images as validation sees them. "
                   "Default: 0 (on the real crater set, validation mAP fell the epoch mosaic stopped).")
@click.option("--autoanchor", type=click.Choice(["check", "evolve", "off"]), default="check", show_default=True,
              help="Fit the anchors to the training labels at --imgsz before a new run. check: evolve new ones when "
                   "under 98 % of the boxes can match an anchor (u5's autoanchor) or over 5 % match only one (small "
                   "objects under COCO's anchors); evolve: evolve them for every run, kept when they fit more "
                   "closely; off: the config's.")
@click.option("--no-autoanchor", is_flag=True, help="The same as --autoanchor off.")
@click.option("--precise-bn", type=click.IntRange(min=0), default=0, show_default=True, metavar="IMAGES",
              help="Re-estimate the BatchNorm statistics of the validated (EMA) model on this many training images, "
                   "letterboxed as validation does, before each validation (0: off). Steadies long runs whose "
                   "validation collapses mid-run; 60-epoch runs ended lower with it.")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm under torchrun.")
@click.option("--cache/--no-cache", default=None, help="Keep decoded images in RAM (default: when they take at most a fifth of the free memory, up to 4 GiB).")
def train(resume: str | None, **kwargs: object) -> None:
    """Train a model (torchrun --nproc_per_node N edgeyolo train ... for data-parallel training)."""
    from edgeyolo.train.config import TrainConfig
    from edgeyolo.train.trainer import Trainer

    if kwargs.pop("no_autoanchor"):
        kwargs["autoanchor"] = "off"
    trainer = Trainer.resume(resume, str(kwargs["project"])) if resume else Trainer(TrainConfig(**kwargs))
    trainer.fit()
