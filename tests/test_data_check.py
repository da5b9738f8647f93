"""Label checking: every bad-input case is reported with file and line, skipped or dropped, and
cached; ``edgeyolo data check`` prints the report and fails on a split with no usable image."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeyolo.cli import main
from edgeyolo.data import DetectionDataset, load_data_config, scan_split

GOOD = "0 0.5 0.5 0.25 0.25\n"


def _write(root: Path, split: str, name: str, label: str | None, img: bytes | None = None) -> Path:
    """An image ``images/split/name.jpg`` (a 64x48 JPEG unless ``img`` bytes are given) and its
    label file (none when ``label`` is None)."""
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    path = root / "images" / split / f"{name}.jpg"
    if img is None:
        img = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    path.write_bytes(img)
    if label is not None:
        (root / "labels" / split / f"{name}.txt").write_text(label)
    return path


def _yaml(root: Path) -> Path:
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [car, bus, truck]\n")
    return root / "data.yaml"


@pytest.fixture()
def bad_set(tmp_path: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    jpg = cv2.imencode(".jpg", noise)[1].tobytes()  # noise: most bytes are pixel data, past the header
    _write(tmp_path, "train", "good", GOOD + "1 0.2 0.2 0.1 0.1\n")
    _write(tmp_path, "train", "nolabel", None)
    _write(tmp_path, "train", "unreadable", GOOD, img=b"this is not an image")
    _write(tmp_path, "train", "truncated", GOOD, img=jpg[: len(jpg) * 3 // 4])  # a download cut short
    _write(tmp_path, "train", "rows", "\n".join([
        "0 0.5 0.5 0.2 0.2",  # 1 ok
        "3 0.5 0.5 0.2 0.2",  # 2 class outside names
        "0 1.2 0.5 0.2 0.2",  # 3 outside [0, 1]
        "0 0.5 0.5 0 0.2",  # 4 zero size
        "0 0.5 0.5 -0.1 0.2",  # 5 negative size
        "0 0.5 0.5 0.2 0.2",  # 6 duplicate of 1
        "car 0.5 0.5 0.2 0.2",  # 7 not numbers
        "0 0.5 0.5 0.2",  # 8 four values
        "1.5 0.5 0.5 0.2 0.2",  # 9 class not an integer
        "2 0.95 0.5 0.1 0.2",  # 10 right edge 1.0, ok
        "2 0.999 0.5 0.004 0.2",  # 11 right edge 1.001, within tolerance: clipped
        "2 0.9 0.5 0.4 0.2",  # 12 right edge 1.1: outside
        "1 0.1 0.1 0.3 0.1 0.3 0.3",  # 13 polygon: box 0.1..0.3
    ]) + "\n")
    _write(tmp_path, "val", "v", GOOD)
    return tmp_path


def test_problems_reported_with_file_and_line(bad_set: Path) -> None:
    cfg = load_data_config(_yaml(bad_set))
    scan = scan_split(cfg, "train", log=False)
    assert sorted(Path(f).stem for f in scan.im_files) == ["good", "nolabel", "rows"]
    assert scan.n_found == 5 and scan.n_missing_labels == 1
    rows = str(bad_set / "labels/train/rows.txt")
    got = {(Path(p.file).name, p.line): (p.message, p.action) for p in scan.problems}
    expected = {
        ("unreadable.jpg", 0): ("unreadable image", "skipped image"),
        ("truncated.jpg", 0): ("truncated JPEG", "skipped image"),
        ("rows.txt", 2): ("class id 3 outside names (0..2)", "dropped row"),
        ("rows.txt", 3): ("coordinates outside [0, 1]", "dropped row"),
        ("rows.txt", 4): ("zero or negative size (w=0, h=0.2)", "dropped row"),
        ("rows.txt", 5): ("zero or negative size (w=-0.1, h=0.2)", "dropped row"),
        ("rows.txt", 6): ("duplicate of line 1", "dropped row"),
        ("rows.txt", 7): ("not numbers", "dropped row"),
        ("rows.txt", 8): ("expected 5 values 'class cx cy w h', got 4", "dropped row"),
        ("rows.txt", 9): ("class id 1.5 outside names", "dropped row"),
        ("rows.txt", 12): ("coordinates outside [0, 1]", "dropped row"),
    }
    assert set(got) == set(expected)
    for key, (msg, action) in expected.items():
        assert msg in got[key][0] and got[key][1] == action, (key, got[key])
    assert any(str(p) == f"{rows}:6: duplicate of line 1 (dropped row)" for p in scan.problems)
    labels = scan.labels[[Path(f).stem for f in scan.im_files].index("rows")]
    np.testing.assert_allclose(labels, [[0, 0.5, 0.5, 0.2, 0.2], [2, 0.95, 0.5, 0.1, 0.2],
                                        [2, 0.9985, 0.5, 0.003, 0.2], [1, 0.2, 0.2, 0.2, 0.2]], atol=1e-6)


def test_cache_reused_then_invalidated(bad_set: Path) -> None:
    cfg = load_data_config(_yaml(bad_set))
    first = scan_split(cfg, "train", log=False)
    assert not first.from_cache and first.cache_path == bad_set / "labels/train.edgeyolo.cache"
    assert [p.name for p in (bad_set / "labels").iterdir() if "tmp" in p.name] == []  # atomic write left nothing
    second = scan_split(cfg, "train", log=False)
    assert second.from_cache and second.problems == first.problems
    assert [lb.tolist() for lb in second.labels] == [lb.tolist() for lb in first.labels]
    label = bad_set / "labels/train/good.txt"
    label.write_text(GOOD)  # changed label file -> rescan
    os.utime(label, ns=(1, 1))
    third = scan_split(cfg, "train", log=False)
    assert not third.from_cache and len(third.labels[[Path(f).stem for f in third.im_files].index("good")]) == 1
    (bad_set / "labels/train.edgeyolo.cache").write_text("{ damaged")  # damaged cache -> rescan, never a crash
    assert not scan_split(cfg, "train", log=False).from_cache


def test_cache_leaves_other_tools_cache_alone(bad_set: Path) -> None:
    """Ultralytics and YOLOv5 keep a pickle at labels/train.cache: ours lives beside it, theirs is
    never read or rewritten, and our own JSON left there by an earlier version is removed."""
    cfg = load_data_config(_yaml(bad_set))
    theirs = bad_set / "labels/train.cache"
    theirs.write_bytes(b"\x93NUMPY pickled cache of another tool")
    scan = scan_split(cfg, "train", log=False)
    assert scan.cache_path == bad_set / "labels/train.edgeyolo.cache"
    assert theirs.read_bytes() == b"\x93NUMPY pickled cache of another tool"
    ours_before = scan.cache_path.read_bytes()
    theirs.write_bytes(ours_before)  # what an earlier edgeyolo left at the other tools' path
    assert scan_split(cfg, "train", log=False).from_cache and not theirs.exists()


def test_dataset_skips_bad_files_and_logs_once(bad_set: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="edgeyolo.data"):
        ds = DetectionDataset(_yaml(bad_set), "train", 64, augment=False)
    assert len(ds) == 3 and len(ds.report) == 11
    assert caplog.text.count("truncated JPEG") == 1 and "train: 11 data problems" in caplog.text
    for i in range(len(ds)):
        img, labels, path, shapes = ds[i]
        assert img.shape == (3, 64, 64) and len(labels) == len(ds.labels[i])
    # an image broken after the check becomes a grey image without boxes, not a crash
    Path(ds.im_files[0]).write_bytes(b"broken later")
    img, labels, _, _ = ds[0]
    assert img.shape == (3, 64, 64) and len(labels) == 0


def test_split_without_usable_image(tmp_path: Path) -> None:
    _write(tmp_path, "train", "a", GOOD)
    _write(tmp_path, "val", "b", GOOD, img=b"garbage")
    with pytest.raises(ValueError, match=r"split 'val' has no usable image \(1 images found, all unusable"):
        DetectionDataset(_yaml(tmp_path), "val", 64, augment=False)


def test_cli_check_report_counts_and_exit(bad_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "check", "--data", str(_yaml(bad_set))])
    out = capsys.readouterr().out
    assert "train: 5 images, 3 usable (1 without labels), 2 skipped, 6 boxes, 9 rows dropped" in out
    assert f"{bad_set / 'labels/train/rows.txt'}:2: class id 3 outside names (0..2) (dropped row)" in out
    assert f"{bad_set / 'images/train/truncated.jpg'}: truncated JPEG" in out
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.split()[:1] in (["car"], ["bus"], ["truck"])}
    assert lines == {"car": ["2", "2", "1", "1"], "bus": ["2", "2", "0", "0"], "truck": ["1", "2", "0", "0"]}
    # a split with no usable image: the report is printed, then exit 1 with a one-line error
    (bad_set / "images/val/v.jpg").write_bytes(b"garbage")
    with pytest.raises(SystemExit) as e:
        main(["data", "check", "--data", str(bad_set / "data.yaml")])
    captured = capsys.readouterr()
    assert e.value.code == 1 and "val: 1 images, 0 usable" in captured.out
    assert captured.err.strip() == f"edgeyolo: error: {bad_set / 'data.yaml'}: no usable image in split val"


def test_images_readers_accept_are_kept(tmp_path: Path) -> None:
    """A JPEG with bytes after its end-of-image marker, a BOM before the first label row, and an
    image over PIL's decompression-bomb limit (a large aerial tile) are all usable data."""
    from edgeyolo.data.labels import check_image

    jpg = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    _write(tmp_path, "train", "padded", GOOD, img=jpg + b"\x00" * 16)
    _write(tmp_path, "train", "bom", "\ufeff" + GOOD + "1 0.2 0.2 0.1 0.1\n")
    _write(tmp_path, "val", "v", GOOD)
    scan = scan_split(load_data_config(_yaml(tmp_path)), "train", use_cache=False, log=False)
    assert scan.problems == [] and len(scan.im_files) == 2
    assert sorted(len(lb) for lb in scan.labels) == [1, 2]

    big = tmp_path / "tile.png"  # 13000 x 14000: PIL refuses to open it by default (> 2 x 89 Mpx)
    from PIL import Image
    Image.new("L", (14000, 13000)).save(big, compress_level=1)
    limit = Image.MAX_IMAGE_PIXELS
    assert check_image(big) == ((13000, 14000), None)
    assert Image.MAX_IMAGE_PIXELS == limit  # PIL's guard is back for everything else


def test_mosaic_refuses_an_odd_size(tmp_path: Path) -> None:
    _write(tmp_path, "train", "a", GOOD)
    _write(tmp_path, "val", "v", GOOD)
    with pytest.raises(ValueError, match="imgsz 97: mosaic augmentation needs an even image size"):
        DetectionDataset(_yaml(tmp_path), "train", 97, augment=True)
    assert len(DetectionDataset(_yaml(tmp_path), "train", 97, augment=True, hyp={"mosaic": 0.0})) == 1
