"""Bench outputs: the CSV/JSON schema, the Markdown table, --compare, and the Pareto front."""
from __future__ import annotations

import csv
import json
import math

import pytest

from edgeyolo.bench.pareto import LABEL_ALL_UP_TO, _draw_scored, pareto_front, plot_pareto
from edgeyolo.bench.results import (COLUMNS, compare_table, empty_row, markdown_table, median_of_passes, read_json, validate_rows,
                                    write_csv, write_json)
from edgeyolo.bench.results import write_outputs

DEVICE = {"cpu": "Test CPU", "threads": 2, "cpu_count": 2, "gpu": None, "jetson": None, "loadavg": [1.0, 1.0, 1.0],
          "versions": {"torch": "2.4.0", "onnxruntime": "1.18.0"}, "warnings": []}


def _rows():
    ok = empty_row(model="m1", source="random", format="onnx", precision="fp32", imgsz=320, batch=1, device="cpu",
                   status="ok", reason="", mode="model-only", warmup=2, iters=5, p50_ms=10.0, p90_ms=11.0, p99_ms=12.0,
                   mean_ms=10.5, std_ms=0.5, fps=95.2, rss_peak_mb=500.0, size_mb=20.0, gflops=2.3,
                   map_note="n/a (random weights)", notes=["onnxruntime CPUExecutionProvider"])
    ok2 = empty_row(model="m2", source="checkpoint", format="pytorch", precision="fp32", imgsz=320, batch=1, device="cpu",
                    status="ok", reason="", mode="model-only", warmup=2, iters=5, p50_ms=30.0, p90_ms=31.0, p99_ms=32.0,
                    mean_ms=30.5, std_ms=0.5, fps=32.8, map50_95=40.0, map50=70.0, map_images=160, notes=[])
    skip = empty_row(model="m1", source="random", format="engine", precision="fp16", imgsz=320, batch=1, device="cpu",
                     status="skipped", reason="needs tensorrt, a CUDA GPU", notes=[])
    return [ok, ok2, skip]


def test_schema_csv_json(tmp_path):
    rows = _rows()
    validate_rows(rows)
    with pytest.raises(KeyError):
        empty_row(latency=1)
    with pytest.raises(ValueError, match="status"):
        validate_rows([{**rows[0], "status": "maybe"}])
    write_csv(rows, tmp_path / "bench.csv")
    with open(tmp_path / "bench.csv") as f:
        r = list(csv.DictReader(f))
    assert tuple(r[0]) == COLUMNS and len(r) == 3
    assert r[0]["p50_ms"] == "10.0" and r[0]["map50_95"] == "" and r[0]["notes"] == "onnxruntime CPUExecutionProvider"
    assert r[2]["status"] == "skipped" and "tensorrt" in r[2]["reason"]
    write_json(rows, DEVICE, {"iters": 5}, tmp_path / "bench.json", "t")
    data = read_json(tmp_path / "bench.json")
    assert data["schema"] == 1 and data["columns"] == list(COLUMNS) and data["device"]["cpu"] == "Test CPU"
    assert [tuple(c) for c in data["cells"]] == [COLUMNS] * 3


def test_markdown_table():
    md = markdown_table(_rows())
    lines = md.splitlines()
    assert lines[0].startswith("| model | format | prec |") and "mAP50-95" in lines[0]
    assert lines[2].startswith("| m1 | onnx | fp32 | 320 | 1 | 10.00 |")  # fastest first
    assert "n/a (random weights)" in lines[2] and "| 40.00 | 70.00 |" in lines[3]
    assert "- m1 engine fp16 320: skipped: needs tensorrt, a CUDA GPU" in md


def test_compare(tmp_path):
    a = {"device": DEVICE, "cells": _rows()}
    b_rows = [dict(r) for r in _rows()]
    b_rows[0]["p50_ms"] = 5.0
    b = {"device": {**DEVICE, "cpu": "Other CPU"}, "cells": b_rows}
    out = compare_table(a, b, "a.json", "b.json")
    assert "A = a.json: CPU Test CPU" in out and "B = b.json: CPU Other CPU" in out
    assert "| m1 | onnx | fp32 | 320 | 1 | 10.00 | 5.00 | 0.50x |" in out
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a bench.json"):
        read_json(tmp_path / "x.json")
    with pytest.raises(ValueError, match="not found"):
        read_json(tmp_path / "missing.json")


@pytest.mark.parametrize("points, front", [
    ([], []),
    ([(10, 30)], [0]),
    ([(10, 30), (20, 40), (15, 20), (30, 35), (5, 10)], [4, 0, 1]),  # sorted by latency
    ([(10, 30), (10, 35)], [1]),  # same latency: the more accurate one
    ([(10, 30), (12, 30)], [0]),  # same accuracy: the faster one
    ([(10, 30), (10, 30)], [0, 1]),  # exact duplicates are equally good
    ([(10, math.nan), (20, 5)], [1]),  # NaN never on the front
    ([(1, 1), (2, 2), (3, 3)], [0, 1, 2]),  # all on the front
    ([(3, 1), (2, 2), (1, 3)], [2]),  # one dominates all
])
def test_pareto_front(points, front):
    assert pareto_front(points) == front


def test_pareto_front_brute_force():
    import random
    rnd = random.Random(0)
    for _ in range(50):
        pts = [(rnd.randint(1, 8), rnd.randint(1, 8)) for _ in range(rnd.randint(1, 12))]
        dominated = {i for i, p in enumerate(pts) for q in pts
                     if q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1])}
        assert set(pareto_front(pts)) == set(range(len(pts))) - dominated


def test_outputs_and_plot(tmp_path):
    res = write_outputs(_rows(), DEVICE, {"iters": 5, "warmup": 2, "threads": 2, "mode_text": "model-only latency"},
                        tmp_path / "run")
    for f in ("bench.csv", "bench.json", "bench.md", "pareto.png"):
        assert (tmp_path / "run" / f).stat().st_size > 0
    assert (tmp_path / "run" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "# edgeyolo bench: Test CPU (2 threads)" in res["markdown"]
    assert json.loads((tmp_path / "run" / "bench.json").read_text())["name"] == "run"
    assert plot_pareto([], tmp_path / "none.png") is None


def _cell(model: str, fmt: str, prec: str, ms: float, m: float) -> dict:
    return {"model": model, "format": fmt, "precision": prec, "imgsz": 160, "p50_ms": ms, "map50_95": m}


def test_pareto_labels_every_point_of_a_small_matrix_and_only_the_front_of_a_study():
    from matplotlib.figure import Figure
    few = [_cell("a", "onnx", "fp32", 10, 50), _cell("a", "onnx", "int8", 8, 49), _cell("a", "pytorch", "fp32", 30, 50)]
    ax = Figure().add_subplot(1, 1, 1)
    assert _draw_scored(ax, few, "p50_ms", "map50_95") == ["a onnx int8 160", "a onnx fp32 160", "a pytorch fp32 160"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Pareto front", "onnx fp32", "onnx int8", "pytorch fp32"]  # one model: no colour legend

    study = [_cell(f"m{i}", f, "fp32", 10.0 * (i + 1) + (f == "pytorch") * 30, 40.0 + 3 * i - (i == 2) * 10)
             for i in range(5) for f in ("onnx", "pytorch")]
    assert len(study) > LABEL_ALL_UP_TO
    ax = Figure().add_subplot(1, 1, 1)
    drawn = _draw_scored(ax, study, "p50_ms", "map50_95")
    assert drawn == ["m0 onnx fp32 160", "m1 onnx fp32 160", "m3 onnx fp32 160", "m4 onnx fp32 160"]  # m2 dominated
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    box = [t.get_text() for t in ax.texts if t.get_text().startswith("Pareto front")]
    assert box and box[0].splitlines()[1] == "1  m0 onnx fp32 160: 10 ms, 40.00"
    assert legend[0] == "Pareto front (numbered)" and legend[1:6] == ["m0", "m1", "m2", "m3", "m4"]


def test_median_of_passes_takes_each_timing_column_over_the_passes():
    first = _rows()
    second, third = _rows(), _rows()
    for rows, p50 in ((second, 30.0), (third, 20.0)):
        rows[0].update(p50_ms=p50, fps=1000 / p50)
    third[1].update(status="error", p50_ms=None)  # m2 failed in the third pass: the median of the two that ran
    merged = median_of_passes([first, second, third])
    assert merged[0]["p50_ms"] == 20.0 and merged[0]["fps"] == pytest.approx(50.0)
    assert merged[0]["p90_ms"] == 11.0  # the same in every pass
    assert merged[0]["notes"][-1] == "latency: median of 3 passes, p50 10.00-30.00 ms"
    assert merged[1]["p50_ms"] == 30.0 and merged[1]["notes"][-1] == "latency: median of 2 passes, p50 30.00-30.00 ms"
    assert merged[2] == first[2]  # skipped: as it was
    assert first[0]["p50_ms"] == 10.0 and len(first[0]["notes"]) == 1  # the passes are not modified
    assert median_of_passes([first]) == first  # one pass: nothing to take the median of
    validate_rows(merged)
