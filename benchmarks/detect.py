"""``edgeyolo detect``: a checkpoint or an exported artifact on images, a folder or a video; the
loop, drawing and file formats are the runtime's (``edgeyolo.runtime.detect``), so ``edgeyolo
detect`` on an artifact and ``edgeyolo-run detect`` on a device give the same files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class DetectOptions:
    weights: Path
    source: Path
    conf: float = 0.25
    iou: float = 0.45
    imgsz: int | None = None  # default: the artifact's size, 640 for checkpoints
    device: str = "cpu"
    save_dir: Path = Path("runs/detect/exp")
    save_txt: bool = False
    save_json: bool = False
    save_img: bool = True
    max_det: int = 300
    line_width: int | None = None


def run_detect(o: DetectOptions, log=print) -> dict:
    """Detect on every frame of ``o.source``; returns {"images", "detections", "save_dir", "records"}."""
    from edgeyolo.formats import ARTIFACT_SUFFIXES  # noqa: PLC0415
    from edgeyolo.runtime.backends import load_backend  # noqa: PLC0415
    from edgeyolo.runtime.detect import detect_source  # noqa: PLC0415
    from edgeyolo.runtime.detector import Detector  # noqa: PLC0415

    from .backends import CheckpointBackend  # noqa: PLC0415
    if not 0 <= o.conf <= 1 or not 0 <= o.iou <= 1:
        raise ValueError(f"--conf and --iou must be in [0, 1], got {o.conf}, {o.iou}")
    w = Path(o.weights)
    if not w.is_file():
        raise ValueError(f"--weights {w}: file not found")
    if w.name.endswith(ARTIFACT_SUFFIXES):
        backend = load_backend(w, o.device)
    elif w.suffix == ".pt":
        backend = CheckpointBackend(w, o.device)
    else:
        raise ValueError(f"--weights {w}: expected a .pt checkpoint or an artifact ({', '.join(ARTIFACT_SUFFIXES)})")
    if backend.info.batch and backend.info.batch != 1:
        raise ValueError(f"--weights {w.name}: exported for batch {backend.info.batch}; detect runs batch 1 "
                         "(export with --batch 1)")
    det = Detector(backend, o.conf, o.iou, o.max_det, imgsz=o.imgsz)
    return detect_source(det, o.source, o.save_dir, o.save_img, o.save_txt, o.save_json, o.line_width, log)
