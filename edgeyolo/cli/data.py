"""``edgeyolo data``: check a dataset, convert COCO, generate the synthetic set, show samples.

``check`` also fits a model's anchors to the labels: this module composes the model configs and
the data package, which itself knows no model.

Bad input raises a one-line ``ValueError`` naming the file; ``edgeyolo.cli.main`` prints it as
``edgeyolo: error: ...`` and exits 1.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgeyolo.data.config import SPLITS

if TYPE_CHECKING:
    from edgeyolo.data.scan import SplitScan


@click.group()
def data() -> None:
    """Datasets: check labels, convert COCO, generate the synthetic set, show what the model sees."""


@data.command()
@click.option("--data", "data_yaml", required=True, type=click.Path(dir_okay=False), help="Ultralytics data YAML.")
@click.option("--no-cache", is_flag=True, help="Rescan every file instead of reading the label cache.")
@click.option("--model", default="yolov4s-mbv3s", show_default=True, help="Model whose anchors are fitted.")
@click.option("--imgsz", type=click.IntRange(min=32), default=640, show_default=True, help="Training size.")
@click.option("--anchor-t", type=click.FloatRange(min=1, min_open=True), default=4.0, show_default=True,
              help="The loss's anchor ratio threshold (hyp anchor_t).")
def check(data_yaml: str, no_cache: bool, model: str, imgsz: int, anchor_t: float) -> None:
    """Check every image and label: print each problem with file and line, per-class counts, and how
    well the model's anchors fit the training boxes at --imgsz.

    Exits non-zero when a split has no usable image."""
    from edgeyolo.data.config import load_data_config
    from edgeyolo.data.scan import scan_split

    cfg = load_data_config(data_yaml)
    scans = [scan_split(cfg, s, use_cache=not no_cache, log=False) for s in SPLITS if cfg.sources(s)]
    for scan in scans:
        click.echo(scan.summary())
        for p in scan.problems:
            click.echo(f"  {p}")
    width = max(len(n) for n in [*cfg.names, "class"])
    header = f"{'class':<{width}}" + "".join(f"  {s.split + ' images':>14}  {s.split + ' boxes':>13}" for s in scans)
    click.echo("\n" + header)
    counts = [scan.class_counts(cfg.nc) for scan in scans]
    for c, name in enumerate(cfg.names):
        click.echo(f"{name:<{width}}" + "".join(f"  {int(im[c]):>14}  {int(bx[c]):>13}" for im, bx in counts))
    empty = [scan.split for scan in scans if not scan.im_files]
    if empty:
        raise ValueError(f"{cfg.source}: no usable image in split {', '.join(empty)}")
    train = next((scan for scan in scans if scan.split == "train"), None)
    if train is not None:
        click.echo("\n" + _anchor_fit_line(train, model, imgsz, anchor_t))
    n_problems = sum(len(s.problems) for s in scans)
    click.echo(f"\n{n_problems} problem(s) found" if n_problems else "\nno problems found")


def _anchor_fit_line(train: SplitScan, model: str, imgsz: int, thr: float) -> str:
    """One line: the best possible recall of the model config's anchors on the training boxes."""
    import numpy as np

    from edgeyolo.models.builder import load_config
    from edgeyolo.ops.anchors import anchor_fit, label_sizes

    anchors = np.array(load_config(model)["anchors"], dtype=np.float64).reshape(-1, 2)
    fit = anchor_fit(label_sizes(train.labels, np.array(train.shapes).reshape(-1, 2), imgsz), anchors, thr)
    problem = fit.problem()
    verdict = f"edgeyolo train will evolve new ones (autoanchor: {problem})" if problem else "they fit"
    return (f"anchors of {model} at {imgsz} px: best possible recall {fit.bpr:.4f} of the train boxes, "
            f"{fit.aat:.2f} anchors per box, {fit.one_match:.1%} match at most one (anchor_t {thr:g}): {verdict}")


@data.command()
@click.option("--ann", required=True, type=click.Path(dir_okay=False), help="COCO instances_*.json.")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="Folder of that JSON's images.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output dataset folder.")
@click.option("--classes", default="motorcycle,car,bus,truck", show_default=True,
              help="Comma-separated COCO class names; class ids follow this order.")
@click.option("--drop-empty", is_flag=True, help="Leave out images with none of the classes.")
@click.option("--mode", type=click.Choice(["symlink", "hardlink", "copy"]), default="symlink", show_default=True,
              help="How images are placed in the output.")
@click.option("--split", default=None, help="Split folder name (default from the JSON name, e.g. val2017).")
def coco(ann: str, images: str, out: str, classes: str, drop_empty: bool, mode: str, split: str | None) -> None:
    """Write a YOLO-format subset of a COCO annotation file, and its data YAML."""
    from edgeyolo.data.coco import convert_coco

    r = convert_coco(ann, images, out, classes, keep_empty=not drop_empty, mode=mode, split=split)
    click.echo(f"{r.split}: {r.images} images ({r.empty} without objects), {r.boxes} boxes; skipped "
               f"{r.crowd} crowd and {r.bad_boxes} zero-size boxes; left out {r.dropped} images without the classes")
    click.echo("per class: " + ", ".join(f"{k} {v}" for k, v in r.per_class.items()))
    if r.missing:
        click.echo(f"warning: {len(r.missing)} images not found in {images} (first: {r.missing[0]})", err=True)
    click.echo(f"wrote {r.yaml_path}")


@data.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder (must not exist).")
@click.option("--train", "n_train", default=800, show_default=True, help="Training images.")
@click.option("--val", "n_val", default=160, show_default=True, help="Validation images.")
@click.option("--imgsz", default=320, show_default=True, help="Long image side in pixels.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same files).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def synth(out: str, n_train: int, n_val: int, imgsz: int, seed: int, force: bool) -> None:
    """Generate the deterministic synthetic detection set (motorcycle, car, bus, truck)."""
    from edgeyolo.data.synthetic import generate_synthetic

    click.echo(f"wrote {generate_synthetic(out, n_train, n_val, imgsz, seed, force=force)}")


@data.command()
@click.option("--data", "data_yaml", default=None, type=click.Path(dir_okay=False),
              help="Ultralytics data YAML (default: the built-in synthetic set).")
@click.option("--split", type=click.Choice(list(SPLITS)), default="train", show_default=True)
@click.option("--augment", is_flag=True, help="Show training augmentation (mosaic, affine, HSV, flips).")
@click.option("--imgsz", default=640, show_default=True, help="Image size fed to the model.")
@click.option("-n", "--num", default=16, show_default=True, help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="Seed for the augmentation draws.")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="PNG to write (default runs/data/<split>[_augment].png).")
def show(data_yaml: str | None, split: str, augment: bool, imgsz: int, num: int, seed: int, out: str | None) -> None:
    """Write a PNG grid of images with their boxes and class names."""
    from edgeyolo.data.config import load_data_config
    from edgeyolo.data.dataset import DetectionDataset
    from edgeyolo.data.show import plot_samples
    from edgeyolo.data.synthetic import synthetic_data_yaml

    cfg = load_data_config(data_yaml or synthetic_data_yaml())
    if not cfg.sources(split):
        raise ValueError(f"{cfg.source}: has no {split!r} split")
    ds = DetectionDataset(cfg, split, imgsz, augment=augment)
    path = plot_samples(ds, Path(out or f"runs/data/{split}{'_augment' if augment else ''}.png"), n=num, seed=seed)
    click.echo(f"wrote {path}")


@data.command()
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output dataset folder.")
@click.option("--tile", type=click.IntRange(min=32), default=None, help="Tile side in px (default: the set's).")
@click.option("--overlap", type=click.FloatRange(0, 0.9), default=None,
              help="Share of a training tile repeated by its neighbours (default: the set's).")
@click.option("--val-fraction", type=click.FloatRange(0.05, 0.5), default=0.25, show_default=True,
              help="Share of each scene's rows (the bottom band) kept for validation.")
@click.option("--archive", default=None, type=click.Path(dir_okay=False),
              help="The package archive, already downloaded (default: pip downloads it into the cache).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def real(name: str, out: str, tile: int | None, overlap: float | None, val_fraction: float, archive: str | None,
         force: bool) -> None:
    """Build a tiled dataset from real labelled images that pip can fetch.

    NAME is one of: craters (Mars, pycda), buildings (aerial, solaris), nuclei (microscopy, stardist),
    nuclei-ngio (microscopy, ngio), cars-smoke (5 cars, sahi: a smoke test)."""
    from edgeyolo.data.real import build_real_dataset

    click.echo(build_real_dataset(name, out, tile, overlap, val_fraction, archive, force).summary())
