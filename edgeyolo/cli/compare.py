"""``edgeyolo compare``: training runs side by side (``edgeyolo.train.compare``)."""
from __future__ import annotations

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", default="runs/compare", show_default=True, help="Folder for compare.png and compare.md.")
@click.option("--imgsz", type=int, default=640, show_default=True, help="Image size for the GFLOPs column.")
def compare(runs: tuple[str, ...], out: str, imgsz: int) -> None:
    """Compare training runs: loss, mAP, P/R and LR curves, and a table of final/best figures."""
    from edgeyolo.train.compare import compare_runs

    table, png = compare_runs([*runs], out, imgsz)
    click.echo(table)
    click.echo(f"figure: {png}")
