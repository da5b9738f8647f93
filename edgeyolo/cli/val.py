"""``edgeyolo val``: score a checkpoint or an exported model on a split; the metrics are
``edgeyolo.train.validate``'s."""
from __future__ import annotations

from pathlib import Path

import click


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
    from edgeyolo.formats import ARTIFACT_SUFFIXES
    from edgeyolo.train.distributed import select_device

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
            from edgeyolo.train.validate import validate_artifact
            result = validate_artifact(backend, loader, conf, iou, save_json=save_json)
        else:
            from edgeyolo.train.validate import validate
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
