"""The Ultralytics data YAML variants and their errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeyolo.data import load_data_config
from edgeyolo.data.config import img2label_path


def _img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((16, 16, 3), np.uint8))
    return path


@pytest.fixture()
def ds(tmp_path: Path) -> Path:
    for split in ("train", "val"):
        for i in range(2):
            _img(tmp_path / "images" / split / f"{i}.png")
    return tmp_path


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_names_list_and_folders(ds: Path) -> None:
    cfg = load_data_config(_yaml(ds / "d.yaml", "train: images/train\nval: images/val\nnames: [car, bus]\n"))
    assert cfg.names == ["car", "bus"] and cfg.nc == 2
    assert cfg.root == ds.resolve() and cfg.yaml_path == (ds / "d.yaml").resolve()
    assert cfg.train == [ds.resolve() / "images/train"] and cfg.test == []
    assert [p.name for p in cfg.image_files("val")] == ["0.png", "1.png"]


def test_names_map_path_key_and_test_split(ds: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("elsewhere")
    text = f"path: {ds}\ntrain: images/train\nval: images/val\ntest: images/val\nnames:\n  1: bus\n  0: car\n"
    cfg = load_data_config(_yaml(other / "d.yaml", text))
    assert cfg.names == ["car", "bus"] and cfg.root == ds.resolve()
    assert len(cfg.image_files("test")) == 2
    # a relative ``path`` is relative to the YAML's folder
    (ds / "cfg").mkdir()
    cfg = load_data_config(_yaml(ds / "cfg" / "d.yaml", "path: ..\ntrain: images/train\nval: images/val\nnc: 3\n"))
    assert cfg.root == ds.resolve() and cfg.names == ["class0", "class1", "class2"]


def test_txt_lists_and_lists_of_sources(ds: Path) -> None:
    (ds / "train.txt").write_text("./images/train/0.png\n\n# comment\nimages/val/1.png\n" + f"{ds / 'images/val/0.png'}\n")
    cfg = load_data_config(_yaml(ds / "d.yaml", "train: [train.txt, images/train]\nval: [images/val]\nnames: [a]\n"))
    files = cfg.image_files("train")
    assert files == [ds.resolve() / p for p in ("images/train/0.png", "images/val/1.png", "images/val/0.png",
                                                "images/train/1.png")]  # source order, duplicates removed


def test_dict_config(ds: Path) -> None:
    cfg = load_data_config({"path": str(ds), "train": "images/train", "val": "images/val", "names": {0: "x"}})
    assert cfg.yaml_path is None and cfg.names == ["x"] and len(cfg.image_files("train")) == 2


@pytest.mark.parametrize("text, message", [
    ("train: images/train\nnames: [a]\n", "missing 'val'"),
    ("train: images/train\nval: images/nope\nnames: [a]\n", "val source"),
    ("train: images/train\nval: images/val\n", "missing 'names'"),
    ("train: images/train\nval: images/val\nnames: {0: a, 2: b}\n", "ids must be 0..1 without gaps"),
    ("train: images/train\nval: images/val\nnames: [a, a]\n", "duplicate class names ['a']"),
    ("train: images/train\nval: images/val\nnames: [a, b]\nnc: 3\n", "nc is 3 but 'names' has 2"),
    ("train: images/train\nval: images/val\nnames: car\n", "'names' must be a list"),
    ("[1, 2]\n", "must be a mapping"),
    ("train: [unclosed\n", "invalid YAML"),
])
def test_errors_name_the_file(ds: Path, text: str, message: str) -> None:
    path = _yaml(ds / "bad.yaml", text)
    with pytest.raises(ValueError) as e:
        load_data_config(path)
    assert message in str(e.value) and str(path.resolve()) in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_yaml(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data YAML not found"):
        load_data_config(tmp_path / "nope.yaml")


def test_img2label_path() -> None:
    assert img2label_path(Path("/d/images/train/a.b.jpg")) == Path("/d/labels/train/a.b.txt")
    assert img2label_path(Path("/images/d/images/x.png")) == Path("/images/d/labels/x.txt")  # last one swapped
    assert img2label_path(Path("/d/pics/x.png")) == Path("/d/pics/x.txt")
