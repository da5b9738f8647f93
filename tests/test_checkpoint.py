"""Checkpoints: state_dict + config + names, atomic writes, weights_only loads, clear errors."""
from __future__ import annotations

import pytest
import torch

from edgeyolo.models import build_model
from edgeyolo.models.checkpoint import load_model, read_checkpoint, save_checkpoint


def test_roundtrip_rebuilds_identical_model(tmp_path):
    model = build_model("yolov4s-mbv3s", nc=2).eval()
    path = save_checkpoint(tmp_path / "w" / "last.pt", model, ["cat", "dog"], meta={"epoch": 3})
    assert not list(path.parent.glob(".*tmp"))  # no temp file left behind
    loaded, ckpt = load_model(path)
    assert ckpt["names"] == ["cat", "dog"] and ckpt["meta"]["epoch"] == 3
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # weights_only=True must be able to read it: no pickled modules inside
    torch.load(path, weights_only=True)


def test_names_must_match_nc(tmp_path):
    with pytest.raises(ValueError, match="1 class names for a model with nc=2"):
        save_checkpoint(tmp_path / "a.pt", build_model("yolov4s-mbv3s", nc=2), ["x"])


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="nope.pt: checkpoint not found"):
        read_checkpoint(tmp_path / "nope.pt")
    good = save_checkpoint(tmp_path / "good.pt", build_model("yolov4s-mbv3s", nc=1), ["a"])
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated.pt: not a readable checkpoint \(truncated, or not a torch zip"):
        read_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"epoch": 1, "state": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=r"foreign.pt: not an edgeyolo checkpoint \(found \['epoch', 'state'\]\)"):
        read_checkpoint(foreign)
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module: refused by weights_only
    with pytest.raises(ValueError, match="module.pt: not a readable checkpoint"):
        read_checkpoint(pickled)


def test_info_describes_a_checkpoint_and_an_artifact(overfit_run, tmp_path, capsys):
    from edgeyolo.cli import main
    from edgeyolo.models.summary import count_params
    from runtime_helpers import export_tiny

    last = overfit_run / "weights" / "last.pt"
    main(["info", "--weights", str(last)])
    out = capsys.readouterr().out.splitlines()
    ckpt = read_checkpoint(last)
    assert out[0] == f"{last}: tiny-yolo, 4 classes (motorcycle, car, bus, truck)"
    assert out[1].startswith(f"trained: epoch 30 at 96 px, {ckpt['meta']['date']}; val mAP50 {ckpt['meta']['mAP50']:.3f}")
    anchors = ckpt["model"]["head.anchors"]
    assert out[2] == "anchors (px): " + " | ".join(
        f"P{3 + i} " + " ".join(f"{w:g},{h:g}" for w, h in level.tolist()) for i, level in enumerate(anchors))
    assert out[3] == "training state: 30/30 epochs (finished)"
    _, params = count_params(load_model(last)[0])
    assert f"({params:,} parameters)" in out[-1] and "GFLOPs" in out[-1]

    main(["info", "--weights", str(export_tiny(overfit_run / "weights" / "best.pt", tmp_path / "onnx"))])
    text = capsys.readouterr().out
    assert "    format: onnx" in text and "     names: ['motorcycle', 'car', 'bus', 'truck']" in text
    with pytest.raises(SystemExit):
        main(["info", "--weights", str(last), "--model", "yolov4s-mbv2"])
    assert "--weights describes that file: leave out --model" in capsys.readouterr().err
