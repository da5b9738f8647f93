"""What a training run is asked for (``TrainConfig``: the ``edgeyolo train`` options, saved as
args.yaml and in last.pt so that a resume rebuilds the same run), with the defaults that depend
on the data: QUICK for the built-in synthetic set, DEFAULT for a user's data."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

# Defaults of a run on the built-in synthetic set: sized so that a 2-core CPU trains the default
# edge model to mAP@0.5 >= 0.7 in under 10 minutes (see README, measured there).
QUICK = {"imgsz": 160, "epochs": 10, "optimizer": "AdamW", "nbs": 16,
         "hyp": str(Path(__file__).with_name("hyp.quick.yaml"))}
DEFAULT = {"imgsz": 640, "epochs": 300, "optimizer": "auto", "nbs": 64, "hyp": None}


DEFAULT_MODEL = "yolov4s-mbv3s"


@dataclass
class TrainConfig:
    model: str | None = DEFAULT_MODEL  # None: DEFAULT_MODEL, or the model of ``weights``
    data: str | None = None  # None: the built-in synthetic set
    # None below: QUICK (synthetic data) or DEFAULT (user data) values
    epochs: int | None = None
    imgsz: int | None = None
    batch: int = 16  # per process
    nbs: int | None = None  # nominal batch: gradients accumulate to it
    device: str = ""  # "" = cuda:LOCAL_RANK if available, else cpu
    workers: int = 2
    backbone_weights: str | None = None
    weights: str | None = None  # an edgeyolo checkpoint to start from (fine-tuning)
    freeze_backbone: int = 0  # epochs with the backbone's weights and BN statistics fixed
    hyp: str | None = None
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    seed: int = 0
    optimizer: str | None = None  # SGD, Adam, AdamW or auto (by run length: train/recipe.py)
    schedule: str = "cosine"
    patience: int = 100  # validations without fitness improvement before stopping (YOLOv5, Ultralytics: 100)
    val_interval: int = 1  # validate every N epochs (and always after the last)
    save_interval: float = 30.0  # seconds between writes of last.pt (and best.pt); 0: every epoch
    multi_scale: bool = False
    close_mosaic: int | None = None  # final epochs without mosaic; None: by run length
    precise_bn: int = 0  # training images the EMA model's BatchNorm statistics are re-estimated on before validating
    autoanchor: str = "check"  # check, evolve or off (train/autoanchor.py); a bool in older runs' args
    sync_bn: bool = False
    cache: bool | None = None  # None: decoded images in RAM when they fit (DetectionDataset's budget)
    plots: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.autoanchor, bool):  # args of a run saved before the modes: on was u5's check
            self.autoanchor = "check" if self.autoanchor else "off"
        if self.autoanchor not in ("check", "evolve", "off"):
            raise ValueError(f"autoanchor must be check, evolve or off, got {self.autoanchor!r}")

    def resolved(self) -> TrainConfig:
        base = QUICK if self.data is None else DEFAULT
        filled = {k: v for k, v in base.items() if getattr(self, k) is None}
        if self.model is None and not self.weights:
            filled["model"] = DEFAULT_MODEL
        for k in ("data", "hyp", "model", "weights", "backbone_weights"):  # files: absolute, so that a
            v = filled.get(k, getattr(self, k))  # resume from another folder finds them (args are saved)
            if isinstance(v, str) and Path(v).is_file():
                filled[k] = str(Path(v).resolve())
        return dataclasses.replace(self, **filled)
