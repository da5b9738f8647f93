"""One builder for every model: YAML config -> YOLO.

A config has ``nc``, ``depth_multiple``, ``width_multiple``, ``activation``, ``anchors``, a
``backbone`` and a ``head``, each a list of ``[from, number, module, args]`` rows as in
PyTorch_YOLOv4. ``from`` is -1 (the previous row), a negative offset, a non-negative row index
*within the same section*, or a backbone tap name (``P3``, ``P4``, ``P5``). The backbone names
its taps in ``taps: {P3: row, P4: row, P5: row}``; the head reads their channels from the built
rows, never from hand-typed numbers. ``head`` may name a shared head file (``head-NAME.yaml``) whose
keys the model file overrides. Channels of a row always come from the row it reads (PyTorch_YOLOv4
u5 reads the row before an absolute index; that defect is not reproduced).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import yaml

from .detect import Detect
from .graph import RowGraph
from .registry import MULTI_INPUT, RowSpec, get_row_builder
from .summary import runnable
from .yolo import YOLO, FeatureInfo, RowInfo
from .zoo import config_dir, resolve_name

_SYMBOLS = {"None": None}


def load_config(model: str | Path | dict[str, Any]) -> dict[str, Any]:
    """A zoo name, a YAML path or a config dict -> a resolved config dict (head file merged in,
    scale of the name applied, ``name`` set)."""
    if isinstance(model, dict):
        cfg = copy.deepcopy(model)
    else:
        zoo = resolve_name(str(model))
        path = zoo[1] if zoo else Path(model)
        if not path.is_file():
            raise ValueError(f"{model}: not a model name (see `edgeyolo info --list`) nor a YAML file")
        cfg = _read_yaml(path)
        cfg.setdefault("name", zoo[0] if zoo else path.stem)
        if zoo:
            cfg["depth_multiple"], cfg["width_multiple"] = zoo[2]
    if isinstance(cfg.get("head"), str):
        shared = _read_yaml(config_dir() / f"head-{cfg['head']}.yaml")
        cfg = {**shared, **cfg, "head": shared["head"]}
    for key in ("backbone", "head", "anchors"):
        if key not in cfg:
            raise ValueError(f"model config {cfg.get('name', model)!r} has no {key!r}")
    return cfg


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a model YAML must be a mapping")
    return data


def _resolve_sources(f: Any, i: int, section: str, taps: dict[str, int] | None) -> list[int]:
    """YAML ``from`` -> RowGraph sources: local row indices, or ``-1 - k`` for input ``k`` (tap k)."""
    out = []
    for s in f if isinstance(f, list) else [f]:
        if isinstance(s, str):
            if taps is None or s not in taps:
                raise ValueError(f"{section} row {i}: unknown source {s!r}; taps: {sorted(taps or {})}")
            out.append(-1 - list(taps).index(s))
        elif s < 0:
            if i + s < 0:
                if section == "backbone" and i + s == -1:
                    out.append(-1)  # the image
                    continue
                raise ValueError(f"{section} row {i}: from {s} reaches before the first row")
            out.append(i + s)
        else:
            if s >= i:
                raise ValueError(f"{section} row {i}: from {s} is not an earlier row")
            out.append(int(s))
    return out


def _build_section(rows: list, section: str, offset: int, in_ch: list[int], taps: dict[str, int] | None,
                   cfg: dict[str, Any]) -> tuple[RowGraph, list[int], list[RowInfo]]:
    """Build one section's rows; returns the graph (outputs set later), each row's channels and
    the table rows."""
    gd, gw = float(cfg.get("depth_multiple", 1.0)), float(cfg.get("width_multiple", 1.0))
    act = str(cfg.get("activation", "mish"))
    layers, sources, multi, infos, ch = [], [], [], [], []
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 4):
            raise ValueError(f"{section} row {i}: expected [from, number, module, args], got {row!r}")
        f, n, name, args = row
        src = _resolve_sources(f, i, section, taps)
        args = [_SYMBOLS.get(a, a) if isinstance(a, str) else a for a in args]
        spec = RowSpec([ch[j] if j >= 0 else in_ch[-1 - j] for j in src], args, int(n), gd, gw, act)
        built = get_row_builder(name)(spec)
        shown_from = [offset + j if j >= 0 else (list(taps)[-1 - j] if taps else -1) for j in src]
        layers.append(built.module)
        sources.append(src)
        multi.append(name in MULTI_INPUT)
        ch.append(built.c_out)
        infos.append(RowInfo(offset + i, section, _fmt_from(f, shown_from), built.n, name, built.shown_args, built.module))
    return RowGraph(layers, sources, multi, []), ch, infos


def _fmt_from(f: Any, shown: list) -> str:
    if isinstance(f, list):
        return str([s if isinstance(s, str) else (-1 if s == -1 else g) for s, g in zip(f, shown)])
    return str(f if (isinstance(f, str) or f == -1) else shown[0])


@torch.no_grad()
def _probe_strides(model: YOLO, size: int = 64) -> tuple[list[int], list[int]]:
    """Strides of the backbone taps and of the neck outputs, from one forward of a zero image."""
    with runnable(model):
        p = next(model.parameters())
        taps = model.backbone(torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype))
        outs = model.neck(*taps)
    return [size // t.shape[-2] for t in taps], [size // o.shape[-2] for o in outs]


def build_model(model: str | Path | dict[str, Any], nc: int | None = None, device: str | torch.device | None = None) -> YOLO:
    """Build a YOLO from a zoo name (``yolov4s-mbv3s``), a YAML path or a config dict.

    ``nc`` overrides the config's class count. ``device="meta"`` builds without allocating or
    initialising weights (instant even for the X models): enough for shapes, counts and FLOPs. Weights are initialised as PyTorch_YOLOv4 does
    (Detect's prior biases at 640; BN settings per block, see ``blocks.conv.BN_KW``).
    """
    if device is not None:
        with torch.device(device):
            return build_model(model, nc)
    cfg = load_config(model)
    if nc is not None:
        cfg["nc"] = int(nc)
    if int(cfg.get("nc", 80)) < 1:
        raise ValueError(f"nc must be >= 1, got {cfg['nc']}")
    bb = cfg["backbone"]
    bb_rows, taps = (bb["layers"], bb.get("taps")) if isinstance(bb, dict) else (bb, cfg.get("taps"))
    if not taps:
        raise ValueError(f"model {cfg.get('name')!r}: the backbone declares no taps (P3, P4, P5)")
    taps = {str(k): int(v) for k, v in taps.items()}

    backbone, bb_ch, bb_infos = _build_section(bb_rows, "backbone", 0, [3], None, cfg)
    for name, row in taps.items():
        if not 0 <= row < len(bb_ch):
            raise ValueError(f"tap {name} = row {row} is outside the backbone's {len(bb_ch)} rows")
    backbone.outputs = list(taps.values())
    tap_ch = [bb_ch[r] for r in taps.values()]

    head_rows = cfg["head"]
    if not head_rows or head_rows[-1][2] != "Detect":
        raise ValueError(f"model {cfg.get('name')!r}: the head's last row must be Detect")
    neck_rows, det_row = head_rows[:-1], head_rows[-1]
    neck, neck_ch, neck_infos = _build_section(neck_rows, "neck", len(bb_rows), tap_ch, taps, cfg)
    det_src = _resolve_sources(det_row[0], len(neck_rows), "head", None)
    neck.outputs = det_src
    det_ch = [neck_ch[j] for j in det_src]
    head = Detect(int(cfg.get("nc", 80)), cfg["anchors"], det_ch)
    det_info = RowInfo(len(bb_rows) + len(neck_rows), "head", str([len(bb_rows) + j for j in det_src]), 1,
                       "Detect", [head.nc, cfg["anchors"], det_ch], head)

    yolo = YOLO(backbone, neck, head, cfg, [], bb_infos + neck_infos + [det_info])
    tap_strides, strides = _probe_strides(yolo)
    yolo.feature_info = [FeatureInfo(n, r, c, s) for (n, r), c, s in zip(taps.items(), tap_ch, tap_strides)]
    head.stride.copy_(torch.tensor(strides, dtype=torch.float32, device=head.stride.device))
    head.init_biases(strides)
    return yolo
