"""benchmarks/studies/val_sizes.py: one checkpoint validated at several input sizes, its detections
scored by edgeyolo's scorer."""
from __future__ import annotations

import pytest


def test_sizes_must_be_increasing_multiples_of_the_stride() -> None:
    from edgeyolo.bench.studies.val_sizes import parse_sizes
    assert parse_sizes("256,320,384") == [256, 320, 384]
    for bad in ("320,300", "384,320", "320,320", "0", "-32"):
        with pytest.raises(ValueError, match="increasing positive multiples of 32"):
            parse_sizes(bad)
    with pytest.raises(ValueError, match="comma-separated integers"):
        parse_sizes("320;384")


def test_sweep_scores_each_size_as_edgeyolo_val_does(overfit_run, overfit_data, tmp_path) -> None:
    from edgeyolo.bench.studies.common_scorer import edgeyolo_json
    from edgeyolo.bench.studies.val_sizes import report, sweep
    weights = str(overfit_run / "weights" / "best.pt")
    result = sweep(str(overfit_data), [96, 128], edgeyolo=weights, batch=8)
    rows = result["edgeyolo"]
    assert [r["imgsz"] for r in rows] == [96, 128]
    assert 0.3 < rows[0]["map50"] <= 1.0 and rows[0]["map"] <= rows[0]["map75"] <= rows[0]["map50"]
    for row in rows:  # the JSON round trip and the one scorer agree with the run's own validation
        _, own = edgeyolo_json(weights, str(overfit_data), row["imgsz"], 8, tmp_path / f"{row['imgsz']}.json")
        assert own == f"{row['map50']:.3f} / {row['map']:.3f}"
    text = report(result, str(overfit_data), "synth")
    assert f"| 128 | {rows[1]['map50']:.3f} / {rows[1]['map75']:.3f} / {rows[1]['map']:.3f} |" in text
    mean = (rows[0]["map"] + rows[1]["map"]) / 2
    assert text.splitlines()[-1].startswith("| mean | ") and text.splitlines()[-1].endswith(f" / {mean:.3f} |")
    with pytest.raises(ValueError, match="needs --peer-python"):
        sweep(str(overfit_data), [96], peer="yolov8n.pt")


def test_report_gives_the_ratio_at_each_size_and_over_the_sizes() -> None:
    from edgeyolo.bench.studies.val_sizes import report
    rows = lambda *maps: [{"imgsz": s, "map50": 2 * m, "map75": m, "map": m} for s, m in zip((320, 384), maps)]
    text = report({"edgeyolo": rows(0.30, 0.36), "yolov8n": rows(0.40, 0.30)}, "d.yaml", "x")
    assert "| 320 | 0.75 / 0.75 |" in text and "| 384 | 1.20 / 1.20 |" in text
    assert "| mean | 0.660 / 0.330 / 0.330 | 0.700 / 0.350 / 0.350 |" in text
    assert text.rstrip().endswith("| mean | 0.94 / 0.94 |")  # 0.33 / 0.35, not the mean of the ratios
