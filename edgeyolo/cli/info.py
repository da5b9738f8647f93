"""``edgeyolo info``: the seeds' model table, per-part params/GFLOPs, the model list, and what a
checkpoint or exported model holds."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("--model", "model_name", default=None, help="Model name or YAML path.  [default: yolov4s-mbv3s]")
@click.option("--weights", default=None, type=click.Path(dir_okay=False),
              help="A checkpoint (.pt): its classes, training, anchors and layer table; or an exported model "
                   "(.onnx, .torchscript, .engine): what it declares.")
@click.option("--nc", type=click.IntRange(min=1), default=None, help="Number of classes (default: the config's).")
@click.option("--imgsz", type=int, default=None, help="Square input size for GFLOPs (default: 640, a checkpoint's "
              "training size).")
@click.option("--backbone-weights", type=click.Path(dir_okay=False), default=None,
              help="Local ImageNet checkpoint to load into the backbone (torchvision, Cadene, timm-legacy).")
@click.option("--list", "list_models", is_flag=True, help="List every model with params and GFLOPs.")
def info(model_name: str | None, weights: str | None, nc: int | None, imgsz: int | None, backbone_weights: str | None,
         list_models: bool) -> None:
    """Print a model's layer table, part breakdown and summary (or a checkpoint's / artifact's contents)."""
    from edgeyolo.models.builder import build_model
    from edgeyolo.models.summary import count_params, describe, part_stats
    from edgeyolo.models.zoo import model_names

    if weights:
        if model_name or nc or backbone_weights or list_models:
            raise ValueError("--weights describes that file: leave out --model, --nc, --backbone-weights and --list")
        click.echo(_weights_info(Path(weights), imgsz))
        return
    model_name, imgsz = model_name or "yolov4s-mbv3s", imgsz or 640
    if list_models:
        click.echo(f"{'model':<22}{'layers':>8}{'params':>14}{f'GFLOPs@{imgsz}':>14}")
        for name in model_names():
            m = build_model(name, nc=nc, device="meta")
            tensors, params = count_params(m)
            click.echo(f"{name:<22}{tensors:>8}{params:>14,}{sum(s.gflops for s in part_stats(m, imgsz)):>14.1f}")
        return
    # Without weights to load, a meta-device model gives the same table and counts, instantly.
    model = build_model(model_name, nc=nc, device=None if backbone_weights else "meta")
    if backbone_weights:
        from edgeyolo.models.pretrained import load_backbone_weights

        n = load_backbone_weights(model, backbone_weights)
        click.echo(f"loaded {n} tensors from {backbone_weights} into the {model.cfg['name']} backbone")
    click.echo(describe(model, imgsz))


def _weights_info(path: Path, imgsz: int | None) -> str:
    """A checkpoint: header (classes, training, anchors, resumable) and the layer table; an
    exported model: what the runtime reads from it."""
    from edgeyolo.formats import ARTIFACT_SUFFIXES
    from edgeyolo.runtime.backends import load_backend

    if path.name.lower().endswith(ARTIFACT_SUFFIXES):
        return load_backend(path).info.describe()
    from edgeyolo.models.checkpoint import load_model
    from edgeyolo.models.summary import describe

    model, ckpt = load_model(path)
    meta: dict[str, Any] = ckpt["meta"]
    names = ckpt["names"]
    lines = [f"{path}: {model.cfg.get('name')}, {len(names)} classes ({', '.join(names)})"]
    if "epoch" in meta:
        scores = (f"; val mAP50 {meta['mAP50']:.3f}, mAP50-95 {meta['mAP50-95']:.3f}" if "mAP50" in meta else "")
        lines.append(f"trained: epoch {int(meta['epoch']) + 1} at {meta.get('imgsz')} px, {meta.get('date', '')}{scores}")
    levels = [" ".join(f"{w:g},{h:g}" for w, h in level.tolist()) for level in model.head.anchors]
    lines.append("anchors (px): " + " | ".join(f"P{3 + i} {a}" for i, a in enumerate(levels)))
    state = ckpt.get("train_state")
    if state:
        done, total = int(state["epoch"]) + 1, int(state["args"]["epochs"])
        end = ("stopped early" if state.get("stopped_early") else "finished" if done >= total else
               f"resume: edgeyolo train --resume {path}")
        lines.append(f"training state: {done}/{total} epochs ({end})")
    lines += ["", describe(model, imgsz or int(meta.get("imgsz") or 640))]
    return "\n".join(lines)
