"""COCO ``instances_*.json`` -> a YOLO-format subset for any list of COCO class names.

The seeds train on the vehicle subset: motorcycle, car, bus, truck, in that order (COCO category
ids 4, 3, 6, 8). Output layout, with the split named after the JSON (``instances_val2017.json``
-> ``val2017``)::

    OUT/images/val2017/*.jpg   (symlinks, hard links or copies of the COCO images)
    OUT/labels/val2017/*.txt   (``class cx cy w h`` normalised; empty for images without objects)
    OUT/data.yaml              (every split converted into OUT so far; see ``write_data_yaml``)
"""
from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml
from tqdm import tqdm

SEED_CLASSES: tuple[str, ...] = ("motorcycle", "car", "bus", "truck")
LINK_MODES = ("symlink", "hardlink", "copy")


@dataclass
class CocoConversion:
    """What :func:`convert_coco` wrote: ``images`` written, of which ``empty`` have no box,
    ``boxes`` written, ``crowd`` boxes skipped, ``bad_boxes`` (zero size) skipped, ``dropped``
    images without the classes left out, ``missing`` images absent from the image folder."""

    split: str
    yaml_path: Path
    images: int = 0
    empty: int = 0
    boxes: int = 0
    crowd: int = 0
    bad_boxes: int = 0
    dropped: int = 0
    missing: list[str] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)


def parse_classes(classes: str | Sequence[str] | None) -> list[str]:
    """``"motorcycle, car"`` or a sequence -> a list of stripped names (default: the seeds')."""
    if classes is None:
        return list(SEED_CLASSES)
    items = classes.split(",") if isinstance(classes, str) else list(classes)
    return [c.strip() for c in items if c.strip()]


def convert_coco(ann: str | os.PathLike[str], images: str | os.PathLike[str], out: str | os.PathLike[str],
                 classes: str | Sequence[str] | None = None, keep_empty: bool = True, mode: str = "symlink",
                 split: str | None = None) -> CocoConversion:
    """Convert the COCO annotation file ``ann`` (its images in ``images``) into ``out``.

    Class ids follow the order of ``classes``. Crowd boxes (``iscrowd: 1``) and boxes of zero size
    are skipped; images with none of the classes are kept as background (empty label file) unless
    ``keep_empty`` is False. Raises ``ValueError`` naming the file for unknown class names (listing
    the valid ones), a JSON that is not COCO, or an image folder with none of its images.
    """
    ann, images, out = Path(ann).expanduser().resolve(), Path(images).expanduser().resolve(), Path(out).expanduser()
    if mode not in LINK_MODES:
        raise ValueError(f"unknown image mode {mode!r} (expected one of {', '.join(LINK_MODES)})")
    if not images.is_dir():
        raise ValueError(f"{images}: image folder not found")
    coco = _read_coco(ann)
    names = parse_classes(classes)
    if not names:
        raise ValueError(f"{ann}: no class names given")
    by_name = {c["name"]: int(c["id"]) for c in coco["categories"]}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"{ann}: unknown COCO class name(s) {', '.join(unknown)}; valid names: "
                         f"{', '.join(c['name'] for c in sorted(coco['categories'], key=lambda c: c['id']))}")
    if len(set(names)) != len(names):
        raise ValueError(f"{ann}: class names repeated in {names}")
    cat_to_cls = {by_name[n]: i for i, n in enumerate(names)}
    split = split or (ann.stem.split("instances_", 1)[1] if ann.stem.startswith("instances_") else ann.stem)
    result = CocoConversion(split, out / "data.yaml", per_class={n: 0 for n in names})

    anns_by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in coco["annotations"]:
        if a.get("category_id") in cat_to_cls:
            anns_by_image[a["image_id"]].append(a)
    check_existing_names(out, names)
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    for im in tqdm(sorted(coco["images"], key=lambda x: x["id"]), desc=f"Converting {split}",
                   disable=len(coco["images"]) < 1000, leave=False):
        rows = []
        W, H = float(im["width"]), float(im["height"])
        for a in anns_by_image.get(im["id"], []):
            if a.get("iscrowd", 0):
                result.crowd += 1
                continue
            x, y, w, h = (float(v) for v in a["bbox"])  # COCO: top-left x, y, width, height in pixels
            x1, y1, x2, y2 = max(0.0, x), max(0.0, y), min(W, x + w), min(H, y + h)
            if x2 - x1 <= 0 or y2 - y1 <= 0:
                result.bad_boxes += 1
                continue
            cls = cat_to_cls[a["category_id"]]
            rows.append(f"{cls} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}\n")
            result.per_class[names[cls]] += 1
        if not rows and not keep_empty:
            result.dropped += 1
            continue
        src = images / im["file_name"]
        if not src.is_file():
            result.missing.append(im["file_name"])
            continue
        _place_image(src, img_dir / Path(im["file_name"]).name, mode)
        (lbl_dir / Path(im["file_name"]).with_suffix(".txt").name).write_text("".join(rows))
        result.images += 1
        result.empty += not rows
        result.boxes += len(rows)
    if coco["images"] and result.missing and not result.images:
        raise ValueError(f"{images}: none of the {len(result.missing)} images of {ann.name} found there")
    write_data_yaml(out, names)
    return result


def _read_coco(ann: Path) -> dict[str, Any]:
    if not ann.is_file():
        raise ValueError(f"{ann}: annotation file not found")
    try:
        coco = json.loads(ann.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{ann}: not valid JSON ({e})") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError(f"{ann}: not a COCO instances file (needs images, annotations and categories lists)")
    return coco


def _place_image(src: Path, dst: Path, mode: str) -> None:
    """Link or copy ``src`` to ``dst``; a link that cannot be made (other filesystem, no
    permission) falls back to a copy. A ``dst`` that is ``src`` itself (converting in place, YOLOv5's
    ``coco/images/val2017`` layout) is left alone: unlinking it would delete the image."""
    if not dst.is_symlink() and dst.exists() and dst.resolve() == src.resolve():
        return
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        if mode == "symlink":
            dst.symlink_to(src)
            return
        if mode == "hardlink":
            os.link(src, dst)
            return
    except OSError:
        pass
    shutil.copy2(src, dst)


def write_data_yaml(out: Path, names: list[str]) -> Path:
    """(Re)write ``out/data.yaml`` for every split folder in ``out/images``: ``train`` is the one
    named like train, ``val`` the one named like val (a lone split serves as both). Refuses to mix
    class lists: an existing YAML with other names raises ``ValueError``."""
    path = out / "data.yaml"
    check_existing_names(out, names)
    splits = sorted(p.name for p in (out / "images").iterdir() if p.is_dir())
    train = [s for s in splits if "train" in s] or splits
    # not a train split again: COCO 2014's trainval35k is training data, minival2014 the val split
    val = [s for s in splits if "val" in s and s not in train] or [s for s in splits if s not in train] or train
    test = [s for s in splits if "test" in s and s not in train + val]
    data: dict[str, Any] = {"train": _one_or_list(train), "val": _one_or_list(val)}
    if test:
        data["test"] = _one_or_list(test)
    data["names"] = names
    text = ("# Written by `edgeyolo data coco`. No 'path' key: splits are relative to this file's folder.\n"
            + yaml.safe_dump(data, sort_keys=False))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def check_existing_names(out: Path, names: list[str]) -> None:
    """Raise ``ValueError`` when ``out/data.yaml`` exists with another class list."""
    path = out / "data.yaml"
    if path.is_file():
        old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        old_names = old.get("names") if isinstance(old, dict) else None
        old_names = [old_names[k] for k in sorted(old_names)] if isinstance(old_names, dict) else old_names
        if old_names and list(old_names) != names:
            raise ValueError(f"{path}: already holds classes {list(old_names)}, not {names}; use another --out")


def _one_or_list(splits: list[str]) -> str | list[str]:
    paths = [f"images/{s}" for s in splits]
    return paths[0] if len(paths) == 1 else paths
