"""``edgeyolo val`` on exported files: the artifact itself is scored through its deployment
backend, and agrees with the checkpoint and with the export layer's independent mAP loop."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from runtime_helpers import export_tiny

from edgeyolo.cli import cli
from edgeyolo.data import DetectionDataset, build_dataloader
from edgeyolo.export.evaluate import evaluate_map
from edgeyolo.runtime.backends import OrtBackend
from edgeyolo.models.checkpoint import load_model
from edgeyolo.runtime.backends import load_backend
from edgeyolo.train.validate import validate, validate_artifact

IMGSZ = 96


def _loader(data, batch: int):
    ds = DetectionDataset(str(data), "val", IMGSZ, augment=False, rect=False, batch_size=batch)
    return build_dataloader(ds, batch, 0, shuffle=False, distributed=False)


@pytest.fixture(scope="module")
def weights(overfit_run):
    return overfit_run / "weights" / "best.pt"


@pytest.fixture(scope="module")
def onnx_path(weights, tmp_path_factory):
    return export_tiny(weights, tmp_path_factory.mktemp("val_onnx"))


def test_artifact_matches_checkpoint_and_export_evaluator(weights, onnx_path, overfit_data) -> None:
    art = validate_artifact(load_backend(onnx_path), _loader(overfit_data, 1), progress=False)
    model, ckpt = load_model(weights)
    ref = validate(model, _loader(overfit_data, 8), ckpt["names"], progress=False)
    assert art.n_images == ref.n_images == 48 and art.n_labels == ref.n_labels
    assert art.metrics.map > 0.3  # a trained model, so the comparison means something
    assert art.metrics.map == pytest.approx(ref.metrics.map, abs=2e-3)  # fused BN + ONNX Runtime vs eager
    assert art.metrics.map50 == pytest.approx(ref.metrics.map50, abs=2e-3)
    independent = evaluate_map(OrtBackend(onnx_path), overfit_data, IMGSZ, len(ckpt["names"]))
    assert art.metrics.map == pytest.approx(independent.map50_95, abs=1e-6)


def test_raw_heads_and_a_padded_static_batch_score_the_same(weights, onnx_path, overfit_data, tmp_path) -> None:
    base = validate_artifact(load_backend(onnx_path), _loader(overfit_data, 1), progress=False).metrics.map
    raw = export_tiny(weights, tmp_path / "raw", raw=True)
    assert validate_artifact(load_backend(raw), _loader(overfit_data, 1), progress=False).metrics.map == \
        pytest.approx(base, abs=1e-6)
    b5 = export_tiny(weights, tmp_path / "b5", batch=5)  # 48 images: the last batch of 3 is padded
    res = validate_artifact(load_backend(b5), _loader(overfit_data, 5), progress=False)
    assert res.n_images == 48 and res.metrics.map == pytest.approx(base, abs=1e-6)


def test_nms_graph_and_wrong_size_are_refused(weights, onnx_path, overfit_data, tmp_path) -> None:
    nms = export_tiny(weights, tmp_path / "nms", nms=True)
    with pytest.raises(ValueError, match=r"_nms.onnx: outputs are onnx-nms \(NMS in the graph"):
        validate_artifact(load_backend(nms), _loader(overfit_data, 1), progress=False)
    r = CliRunner().invoke(cli, ["val", "--weights", str(onnx_path), "--data", str(overfit_data), "--imgsz", "128",
                                 "--workers", "0", "--device", "cpu"])
    assert r.exit_code != 0 and f"exported for {IMGSZ} px inputs; --imgsz 128 needs a re-export" in str(r.exception)


def test_val_cli_on_an_onnx_file(onnx_path, overfit_data) -> None:
    r = CliRunner().invoke(cli, ["val", "--weights", str(onnx_path), "--data", str(overfit_data), "--workers", "0",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["class"])
    assert lines[header + 1].split()[:2] == ["all", "48"]


def test_val_batch_of_a_dynamic_engine_and_save_json_path(monkeypatch, tmp_path, capsys):
    """A dynamic engine takes at most its profile's batch (val's default 32 would not fit a
    --batch 4 engine); a --save-json under a file is refused before validating, in one line."""
    import types

    from edgeyolo.cli import main
    from edgeyolo.cli import val as val_command
    from edgeyolo.runtime.info import ModelInfo

    info = ModelInfo("m.engine", "engine", ["a"], 64, batch=None, max_batch=4)
    monkeypatch.setattr("edgeyolo.runtime.backends.load_backend", lambda path, device: types.SimpleNamespace(info=info))
    assert val_command._artifact_for_val("m.engine", "cpu", None, 32, False)[3] == 4
    assert val_command._artifact_for_val("m.engine", "cpu", None, 2, False)[3] == 2
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit):
        main(["val", "--weights", str(tmp_path / "missing.pt"), "--save-json", str(tmp_path / "afile" / "d.json"),
              "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert err == f"edgeyolo: error: --save-json {tmp_path}/afile/d.json: {tmp_path}/afile is a file, not a folder"
