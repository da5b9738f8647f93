"""``edgeyolo train``, ``edgeyolo val`` and ``edgeyolo compare``."""
from __future__ import annotations

from pathlib import Path

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
@click.option("--patience", type=click.IntRange(min=1), default=50, show_default=True,
              help="Stop after this many validations without a fitness improvement (epochs, with --val-interval 1).")
@click.option("--val-interval", type=click.IntRange(min=1), default=1, show_default=True,
              help="Validate every N epochs (always after the last).")
@click.option("--multi-scale", is_flag=True, help="Random image size in [0.5, 1.5] x imgsz per batch.")
@click.option("--close-mosaic", type=click.IntRange(min=0), default=None, metavar="EPOCHS",
              help="Train the last EPOCHS epochs without mosaic, on whole images as validation sees them. "
                   "Default: 0 (on the real crater set, validation mAP fell the epoch mosaic stopped).")
@click.option("--autoanchor/--no-autoanchor", default=True, show_default=True,
              help="Check the anchors against the training labels at --imgsz and evolve new ones when under 98 % "
                   "of the targets can match one (u5's autoanchor).")
@click.option("--precise-bn", type=click.IntRange(min=0), default=0, show_default=True, metavar="IMAGES",
              help="Re-estimate the BatchNorm statistics of the validated (EMA) model on this many training images "
                   "before each validation (0: off; short runs already get a faster BatchNorm momentum).")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm under torchrun.")
@click.option("--cache/--no-cache", default=None, help="Keep decoded images in RAM (default: on for synthetic data).")
def train(resume: str | None, **kwargs: object) -> None:
    """Train a model (torchrun --nproc_per_node N edgeyolo train ... for data-parallel training)."""
    from .config import TrainConfig
    from .trainer import Trainer

    trainer = Trainer.resume(resume, str(kwargs["project"])) if resume else Trainer(TrainConfig(**kwargs))
    trainer.fit()


@click.command()
@click.option("--weights", required=True,
              help="Checkpoint (.pt) written by edgeyolo train, or an exported artifact (.onnx, .torchscript, .engine) "
                   "run by its deployment backend.")
@click.option("--data", default=None, help="Data YAML. Default: the built-in synthetic set.")
@click.option("--split", default="val", show_default=True)
@click.option("--imgsz", type=int, default=None, help="Default: the checkpoint's training size, or the artifact's.")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="An artifact exported with a fixed batch uses that batch.")
@click.option("--conf", type=click.FloatRange(0, 1), default=0.001, show_default=True)
@click.option("--iou", type=click.FloatRange(0, 1), default=0.65, show_default=True)
@click.option("--device", default="", help="cpu, cuda:0, ...")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--half", is_flag=True, help="FP16 inference (CUDA; checkpoints only: an artifact's precision is fixed).")
@click.option("--save-json", default=None, help="Write COCO-format detections to this file.")
@click.option("--rect/--no-rect", default=True, show_default=True,
              help="Aspect-ratio batches padded half a stride (YOLOv5's val protocol), or --no-rect: every image "
                   "letterboxed to the square imgsz, as an exported model with a fixed input sees it (artifacts always).")
def val(weights: str, data: str | None, split: str, imgsz: int | None, batch: int, conf: float, iou: float,
        device: str, workers: int, half: bool, save_json: str | None, rect: bool = True) -> None:
    """Validate a checkpoint or an exported model: P, R, mAP@0.5, mAP@0.5:0.95 overall and per class, and speed."""
    import torch

    from edgeyolo.data import DetectionDataset, build_dataloader, synthetic_data_yaml
    from edgeyolo.runtime.backends import SUFFIXES as ARTIFACT_SUFFIXES

    from .distributed import select_device

    dev = select_device(device, -1)
    if half and dev.type != "cuda":
        raise ValueError("--half needs a CUDA device")
    if save_json:  # before the run, not after it: a bad path would otherwise lose the whole validation
        parent = Path(save_json).parent
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--save-json {save_json}: {parent} is a file, not a folder")
        parent.mkdir(parents=True, exist_ok=True)
    artifact = Path(weights).name.lower().endswith(ARTIFACT_SUFFIXES)
    if artifact:
        backend, names, imgsz, batch = _artifact_for_val(weights, str(dev), imgsz, batch, half)
        rect = False  # a fixed input shape: every image letterboxed to the square size it was exported at
    else:
        from edgeyolo.models.checkpoint import load_model
        model, ckpt = load_model(weights, dev)
        model = model.half() if half else model
        names, imgsz = list(ckpt["names"]), imgsz or int(ckpt["meta"].get("imgsz", 640))
    dataset = DetectionDataset(data or str(synthetic_data_yaml()), split, imgsz, augment=False, rect=rect,
                               batch_size=batch)
    if dataset.names != names:
        click.echo(f"warning: data names {dataset.names} differ from the model's {names}", err=True)
    loader = build_dataloader(dataset, batch, workers, shuffle=False, distributed=False)
    with torch.inference_mode():
        if artifact:
            from .validate import validate_artifact
            result = validate_artifact(backend, loader, conf, iou, save_json=save_json)
        else:
            from .validate import validate
            result = validate(model, loader, names, conf, iou, half=half, save_json=save_json)
    click.echo(result.table())
    if save_json:
        click.echo(f"detections written to {save_json}")


def _artifact_for_val(path: str, device: str, imgsz: int | None, batch: int, half: bool) -> tuple:
    """(backend, names, imgsz, batch) for validating an exported file; the file fixes size and batch."""
    from edgeyolo.runtime.backends import load_backend
    if half:
        raise ValueError(f"{path}: --half applies to checkpoints; an exported model's precision was fixed at export")
    backend = load_backend(path, device)
    info = backend.info
    if imgsz and info.imgsz and imgsz != info.imgsz:
        raise ValueError(f"{path}: exported for {info.imgsz} px inputs; --imgsz {imgsz} needs a re-export")
    # a static batch is the file's; a dynamic engine takes up to its profile's largest batch
    return backend, list(info.names), imgsz or info.imgsz or 640, info.batch or min(batch, info.max_batch or batch)


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", default="runs/compare", show_default=True, help="Folder for compare.png and compare.md.")
@click.option("--imgsz", type=int, default=640, show_default=True, help="Image size for the GFLOPs column.")
def compare(runs: tuple[str, ...], out: str, imgsz: int) -> None:
    """Compare training runs: loss, mAP, P/R and LR curves, and a table of final/best figures."""
    from .compare import compare_runs

    table, png = compare_runs([*runs], out, imgsz)
    click.echo(table)
    click.echo(f"figure: {png}")
