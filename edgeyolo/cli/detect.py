"""``edgeyolo detect``: argument parsing only; the work is in ``edgeyolo.bench.detect.run_detect``."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("detect")
@click.option("--weights", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="checkpoint (.pt) or artifact (.onnx, .torchscript, .engine)")
@click.option("--source", required=True, type=click.Path(path_type=Path), help="image, folder of images, or video")
@click.option("--conf", default=0.25, show_default=True, type=float)
@click.option("--iou", default=0.45, show_default=True, type=float)
@click.option("--imgsz", default=None, type=int, help="default: the artifact's size, 640 for checkpoints")
@click.option("--device", default="cpu", show_default=True)
@click.option("--save-dir", default=Path("runs/detect/exp"), show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--save-txt", is_flag=True, help="YOLO txt per image (cls cx cy w h conf, normalised)")
@click.option("--save-json", is_flag=True, help="detections.json with every box")
@click.option("--nosave", is_flag=True, help="do not write the drawn images/videos")
def detect(weights, source, conf, iou, imgsz, device, save_dir, save_txt, save_json, nosave) -> None:
    """Boxes drawn and saved, with the same runtime backends as bench."""
    from edgeyolo.bench.detect import DetectOptions, run_detect  # noqa: PLC0415
    run_detect(DetectOptions(weights, source, conf, iou, imgsz, device, save_dir, save_txt, save_json, not nosave),
               log=click.echo)
