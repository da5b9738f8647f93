"""Which cell to ship: the front as a list, the most accurate cell within a latency budget, the
fastest cell at an accuracy floor (checked against brute force), and `bench --choose`."""
from __future__ import annotations

import random

import pytest

from edgeyolo.bench.choose import fastest_above, front_rows, ship_section, within_budget
from edgeyolo.bench.results import empty_row, write_json
from edgeyolo.bench.results import write_outputs
from edgeyolo.cli import main


def _row(model: str, fmt: str, prec: str, ms: float | None, m: float | None, status: str = "ok") -> dict:
    return empty_row(model=model, source="checkpoint", format=fmt, precision=prec, imgsz=160, batch=1, device="cpu",
                     status=status, reason="", p50_ms=ms, map50_95=m, notes=[])


ROWS = [_row("mbv2", "onnx", "int8", 2.6, 73.9), _row("mbv2", "onnx", "fp32", 4.5, 73.8),
        _row("csp", "onnx", "int8", 5.1, 75.9), _row("r50", "onnx", "int8", 6.6, 78.1),
        _row("rx50", "onnx", "fp32", 18.2, 78.2), _row("ser50", "onnx", "int8", 8.1, 79.0),
        _row("random", "onnx", "fp32", 1.0, None), _row("broken", "engine", "fp16", None, None, "skipped")]


def test_front_budget_and_floor_by_hand():
    assert [r["model"] for r in front_rows(ROWS)] == ["mbv2", "csp", "r50", "ser50"]
    assert within_budget(ROWS, 5.0)["model"] == "mbv2"  # the random-weights cell (1 ms) has no mAP
    assert within_budget(ROWS, 8.1)["model"] == "ser50"  # the budget is inclusive
    assert within_budget(ROWS, 0.5) is None
    assert fastest_above(ROWS, 78.15)["model"] == "ser50"  # rx50 (78.2) is slower
    assert fastest_above(ROWS, 75.0)["model"] == "csp" and fastest_above(ROWS, 99) is None


def test_choices_match_brute_force_and_lie_on_the_front():
    rng = random.Random(0)
    for _ in range(200):
        rows = [_row(f"m{i}", "onnx", "fp32", round(rng.uniform(1, 20), 1), round(rng.uniform(50, 80), 1))
                for i in range(rng.randint(1, 12))]
        front = [id(r) for r in front_rows(rows)]
        budget, floor = rng.uniform(1, 20), rng.uniform(50, 80)
        fits = [r for r in rows if r["p50_ms"] <= budget]
        got = within_budget(rows, budget)
        if fits:
            best = max(r["map50_95"] for r in fits)
            assert got["map50_95"] == best and got["p50_ms"] == min(r["p50_ms"] for r in fits if r["map50_95"] == best)
            assert id(got) in front
        else:
            assert got is None
        above = [r for r in rows if r["map50_95"] >= floor]
        got = fastest_above(rows, floor)
        if above:
            fastest = min(r["p50_ms"] for r in above)
            assert got["p50_ms"] == fastest
            assert got["map50_95"] == max(r["map50_95"] for r in above if r["p50_ms"] == fastest)
            assert id(got) in front
        else:
            assert got is None


def test_errors_and_empty():
    with pytest.raises(ValueError, match="--budget-ms must be > 0"):
        within_budget(ROWS, 0)
    with pytest.raises(ValueError, match=r"in percent as the tables print it \(e.g. 70\), in \(1, 100\]; got 0.7"):
        fastest_above(ROWS, 0.7)
    assert ship_section(ROWS[-2:]) == ""  # random weights and a skipped cell: nothing to choose from


def test_section_in_bench_md_and_choose_cli(tmp_path, capsys):
    sett = {"iters": 5, "warmup": 2, "threads": 2, "mode_text": "model-only latency",
            "choose": {"budget_ms": 6.0, "min_map": 79.0}}
    res = write_outputs(ROWS, {"cpu": "Test CPU", "threads": 2, "versions": {}}, sett, tmp_path / "run")
    md = (tmp_path / "run" / "bench.md").read_text()
    assert md == res["markdown"] and "## Which to ship" in md
    assert "1. mbv2 onnx int8 160 px: 2.6 ms p50, mAP@0.5:0.95 73.90" in md
    assert "Within 6 ms p50: **csp onnx int8 160 px** (5.1 ms p50, mAP@0.5:0.95 75.90)." in md
    assert "At mAP@0.5:0.95 >= 79: **ser50 onnx int8 160 px** (8.1 ms p50, mAP@0.5:0.95 79.00)." in md

    main(["bench", "--choose", str(tmp_path / "run" / "bench.json"), "--budget-ms", "1"])
    out = capsys.readouterr().out
    assert "4. ser50 onnx int8 160 px" in out
    assert "Within 1 ms p50: no cell; the fastest is mbv2 onnx int8 160 px (2.6 ms p50" in out

    write_json(ROWS[-2:], {"cpu": "x"}, {}, tmp_path / "random.json", "random")
    with pytest.raises(SystemExit):
        main(["bench", "--choose", str(tmp_path / "random.json")])
    assert "random.json: no cell has both a latency and an mAP (random weights?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--min-map", "0.5", "--models", "yolov4s-mbv3s"])  # refused before any bench work
    assert "--min-map is mAP@0.5:0.95 in percent" in capsys.readouterr().err
