"""``edgeyolo info``: the seeds' model table, per-part params/GFLOPs, and the model list."""
from __future__ import annotations

import click


@click.command()
@click.option("--model", "model_name", default="yolov4s-mbv3s", show_default=True, help="Model name or YAML path.")
@click.option("--nc", type=click.IntRange(min=1), default=None, help="Number of classes (default: the config's).")
@click.option("--imgsz", type=int, default=640, show_default=True, help="Square input size for GFLOPs.")
@click.option("--backbone-weights", type=click.Path(dir_okay=False), default=None,
              help="Local ImageNet checkpoint to load into the backbone (torchvision, Cadene, timm-legacy).")
@click.option("--list", "list_models", is_flag=True, help="List every model with params and GFLOPs.")
def info(model_name: str, nc: int | None, imgsz: int, backbone_weights: str | None, list_models: bool) -> None:
    """Print a model's layer table, part breakdown and summary."""
    from .builder import build_model
    from .summary import count_params, describe, part_stats
    from .zoo import model_names

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
        from .pretrained import load_backbone_weights

        n = load_backbone_weights(model, backbone_weights)
        click.echo(f"loaded {n} tensors from {backbone_weights} into the {model.cfg['name']} backbone")
    click.echo(describe(model, imgsz))
