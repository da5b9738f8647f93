"""The dataset description: an Ultralytics data YAML read into a :class:`DataConfig`.

Accepted forms (what Ultralytics/YOLOv5 accept, so users move between the tools)::

    path: ../datasets/coco      # optional; relative to the YAML's folder; default: the YAML's folder
    train: images/train2017     # a folder of images, a .txt file of image paths, or a list of either
    val: [images/val2017, extra.txt]
    test:                       # optional
    names: [motorcycle, car]    # or {0: motorcycle, 1: car}; or only ``nc: 2`` (names class0, ...)

Labels live in the ``labels/`` twin of each ``images/`` folder (see :func:`img2label_path`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

IMG_FORMATS = frozenset({"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm"})
SPLITS = ("train", "val", "test")


@dataclass
class DataConfig:
    """A resolved data YAML. ``train``/``val``/``test`` are lists of absolute sources (image
    folders, image-list .txt files or single images); :meth:`image_files` expands them."""

    root: Path
    train: list[Path]
    val: list[Path]
    test: list[Path] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    nc: int = 0
    yaml_path: Path | None = None

    @property
    def source(self) -> str:
        """What to name in messages: the YAML file, or the root for a dict config."""
        return str(self.yaml_path) if self.yaml_path else f"data config (root {self.root})"

    def sources(self, split: str) -> list[Path]:
        if split not in SPLITS:
            raise ValueError(f"{self.source}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        return list(getattr(self, split))

    def image_files(self, split: str) -> list[Path]:
        """Every image of ``split``, sorted and de-duplicated, in source order."""
        files: list[Path] = []
        for src in self.sources(split):
            files.extend(list_images(src))
        return list(dict.fromkeys(files))


def load_data_config(path_or_dict: str | os.PathLike[str] | dict[str, Any] | DataConfig) -> DataConfig:
    """Read a data YAML (or an already-parsed dict) into a :class:`DataConfig`.

    Raises a one-line ``ValueError`` naming the file and the problem: unreadable YAML, missing
    ``train``/``val``, bad ``names``, or a source that does not exist.
    """
    if isinstance(path_or_dict, DataConfig):
        return path_or_dict
    yaml_path: Path | None = None
    if isinstance(path_or_dict, dict):
        data, where, base = dict(path_or_dict), "data config", Path.cwd()
    else:
        yaml_path = Path(path_or_dict).expanduser().resolve()
        where, base = str(yaml_path), yaml_path.parent
        if not yaml_path.is_file():
            raise ValueError(f"{yaml_path}: data YAML not found")
        try:
            data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ValueError(f"{yaml_path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{yaml_path}: a data YAML must be a mapping with train, val and names")

    root = Path(os.path.expanduser(str(data["path"]))) if data.get("path") else base
    root = (root if root.is_absolute() else base / root).resolve()
    splits: dict[str, list[Path]] = {}
    for split in SPLITS:
        value = data.get(split)
        if value in (None, "", []):
            if split != "test":
                raise ValueError(f"{where}: missing {split!r} (a folder of images, a .txt list, or a list of either)")
            splits[split] = []
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        resolved = []
        for item in items:
            if not isinstance(item, (str, os.PathLike)):
                raise ValueError(f"{where}: {split!r} entries must be paths, got {item!r}")
            p = Path(os.path.expanduser(str(item)))
            p = (p if p.is_absolute() else root / p).resolve()
            if not p.exists():
                raise ValueError(f"{where}: {split} source {p} does not exist")
            resolved.append(p)
        splits[split] = resolved
    names = _parse_names(data, where)
    return DataConfig(root=root, train=splits["train"], val=splits["val"], test=splits["test"],
                      names=names, nc=len(names), yaml_path=yaml_path)


def _parse_names(data: dict[str, Any], where: str) -> list[str]:
    """``names`` as a list or an {id: name} map with ids 0..nc-1; ``nc`` alone gives class0..."""
    raw, nc = data.get("names"), data.get("nc")
    if raw is None:
        if isinstance(nc, int) and nc > 0:
            return [f"class{i}" for i in range(nc)]
        raise ValueError(f"{where}: missing 'names' (a list of class names or an id->name map)")
    if isinstance(raw, dict):
        try:
            by_id = {int(k): str(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            raise ValueError(f"{where}: 'names' map keys must be integer class ids, got {list(raw)}") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise ValueError(f"{where}: 'names' ids must be 0..{len(by_id) - 1} without gaps, got {sorted(by_id)}")
        names = [by_id[i] for i in range(len(by_id))]
    elif isinstance(raw, (list, tuple)):
        names = [str(n) for n in raw]
    else:
        raise ValueError(f"{where}: 'names' must be a list or an id->name map, got {type(raw).__name__}")
    if not names:
        raise ValueError(f"{where}: 'names' is empty")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{where}: duplicate class names {dup}")
    if nc is not None and nc != len(names):
        raise ValueError(f"{where}: nc is {nc} but 'names' has {len(names)} entries")
    return names


def list_images(source: Path) -> list[Path]:
    """A source -> image paths: a folder (searched recursively, sorted), a .txt list (relative
    lines are relative to the list's folder, as in YOLOv5's ``./images/...`` lists) or one image."""
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS and p.is_file())
    if source.suffix.lower() == ".txt":
        out = []
        for line in source.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                p = Path(os.path.expanduser(line))
                out.append((p if p.is_absolute() else source.parent / p).resolve())
        return out
    if source.suffix[1:].lower() in IMG_FORMATS:
        return [source]
    raise ValueError(f"{source}: not an image folder, a .txt image list or an image")


def img2label_path(img: Path) -> Path:
    """``.../images/x/a.jpg`` -> ``.../labels/x/a.txt`` (the last ``images`` folder is swapped,
    as in YOLOv5); an image outside any ``images`` folder has its label beside it."""
    parts = list(img.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")
