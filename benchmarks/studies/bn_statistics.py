"""Whether a checkpoint's validation score is its weights' or its BatchNorm statistics': each
checkpoint validated as saved (EMA weights, running statistics), with its raw weights, and with the
EMA weights' statistics re-estimated on training images (``recalibrate_bn``): from 64 augmented
(mosaic) images, from every training image letterboxed square without augmentation, and from every
training image as validation letterboxes it (rect batch shapes, half a stride of grey around).

    python benchmarks/studies/bn_statistics.py --data real/nuclei/data.yaml runs/train/exp/weights/last.pt ...

Checkpoints of every epoch come from ``edgeyolo train ... --save-interval 0`` (copy last.pt as the
run goes). Prints one line a checkpoint.
"""
from __future__ import annotations

import argparse
import copy
import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from edgeyolo.data import DetectionDataset, build_dataloader
from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import read_checkpoint
from edgeyolo.train.hyp import load_hyp
from edgeyolo.train.precise_bn import recalibrate_bn
from edgeyolo.train.validate import validate


def _batches(ds: DetectionDataset, n: int, batch: int = 16, seed: int = 1) -> Iterator[torch.Tensor]:
    dl = build_dataloader(ds, batch, 0, shuffle=not ds.rect, distributed=False, seed=seed)
    for _, (imgs, *_) in zip(range(n), itertools.cycle(dl)):
        yield imgs.float().div_(255)


def saved_weights(ck: dict) -> list[tuple[str, dict]]:
    """The state dicts a checkpoint holds, labelled: the validated EMA weights ("as saved"), and in
    a resumable last.pt the trained weights before the EMA, with their own running statistics."""
    out = [("as saved", ck["model"])]
    if "raw_model" in ck.get("train_state", {}):
        out.append(("raw weights", ck["train_state"]["raw_model"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    args = ap.parse_args()
    torch.set_num_threads(2)
    val = DetectionDataset(args.data, "val", args.imgsz, augment=False, rect=True, batch_size=32)
    vdl = build_dataloader(val, int(np.bincount(val.batch_index).max()), 0, shuffle=False, distributed=False)
    square = DetectionDataset(args.data, "val", args.imgsz, augment=False)  # as a fixed-size engine sees it
    sdl = build_dataloader(square, 16, 0, shuffle=False, distributed=False)
    mosaic = DetectionDataset(args.data, "train", args.imgsz, augment=True, hyp=load_hyp())
    plain = DetectionDataset(args.data, "train", args.imgsz, augment=False)
    as_val = mosaic.validation_view(range(len(mosaic)), 16)  # what the trainer re-estimates on

    def score(model: nn.Module) -> str:
        m = validate(model, vdl, val.names, progress=False).metrics
        q = validate(model, sdl, val.names, progress=False).metrics
        return f"{m.map50:.3f}/{m.map:.3f} (square {q.map50:.3f}/{q.map:.3f})"

    for path in args.checkpoints:
        ck = read_checkpoint(path)
        state = ck.get("train_state", {})

        def build(weights: dict) -> nn.Module:
            model = build_model(ck["cfg"], nc=len(ck["names"]))
            model.load_state_dict(weights, strict=False)
            return model.eval()

        (_, saved), *raw = saved_weights(ck)
        ema = build(saved)
        epoch = state.get("epoch", ck.get("meta", {}).get("epoch"))  # best.pt keeps no training state
        line = [f"{path} (epoch {epoch})", f"as saved {score(ema)}"]
        line += [f"{label} {score(build(weights))}" for label, weights in raw]
        on_mosaic = copy.deepcopy(ema)
        recalibrate_bn(on_mosaic, _batches(mosaic, 4))
        line.append(f"statistics from 64 mosaic images {score(on_mosaic)}")
        on_plain = copy.deepcopy(ema)
        recalibrate_bn(on_plain, _batches(plain, -(-len(plain) // 16)))
        line.append(f"from the {len(plain)} training images letterboxed square {score(on_plain)}")
        on_val = copy.deepcopy(ema)
        recalibrate_bn(on_val, _batches(as_val, -(-len(as_val) // 16)))
        line.append(f"letterboxed as validation does {score(on_val)}")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
