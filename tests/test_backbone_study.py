"""The backbone study (benchmarks/studies/backbone_study.py): run states and resume, training time across a
resume, and one real end-to-end study of the tiny model (train, compare, bench, study.md), rerun
without retraining."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from edgeyolo.bench.studies.backbone_study import main, run_state, study_table, train_command, train_seconds
from edgeyolo.models.checkpoint import FORMAT, VERSION

from conftest import NO_AUG


def _last_pt(run: Path, epoch: int, epochs: int, imgsz: int) -> None:
    (run / "weights").mkdir(parents=True)
    torch.save({"format": FORMAT, "version": VERSION, "model": {}, "cfg": {}, "names": ["a"],
                "train_state": {"epoch": epoch, "args": {"epochs": epochs, "imgsz": imgsz}}},
               run / "weights" / "last.pt")


def test_run_state_new_partial_done_and_a_foreign_protocol(tmp_path: Path) -> None:
    assert run_state(tmp_path / "none", 10, 160) == "new"
    _last_pt(tmp_path / "half", epoch=4, epochs=10, imgsz=160)
    assert run_state(tmp_path / "half", 10, 160) == "partial"
    _last_pt(tmp_path / "full", epoch=9, epochs=10, imgsz=160)
    assert run_state(tmp_path / "full", 10, 160) == "done"
    with pytest.raises(ValueError, match=r"full: trained with --epochs 10 --imgsz 160, the study asks for 20 / 160"):
        run_state(tmp_path / "full", 20, 160)


def test_train_command_resumes_a_partial_run_and_passes_the_protocol(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "yolov4s-mbv2"
    assert train_command("yolov4s-mbv2", run, "partial", 10, 160, None)[-2:] == ["--resume", str(run)]
    cmd = train_command("yolov4s-mbv2", run, "new", 10, 160, "d.yaml", ["--batch", "8"])
    assert cmd[:4] == [sys.executable, "-m", "edgeyolo.cli", "train"]
    assert cmd[-1] == "--exist-ok"
    args = dict(zip(cmd[4:-1:2], cmd[5:-1:2]))
    assert args["--model"] == "yolov4s-mbv2" and args["--project"] == str(run.parent) and args["--name"] == run.name
    assert (args["--epochs"], args["--imgsz"], args["--data"], args["--batch"]) == ("10", "160", "d.yaml", "8")


def test_train_seconds_adds_the_segments_of_a_resumed_run() -> None:
    assert train_seconds([10.0, 20.0, 30.0]) == 30.0
    assert train_seconds([10.0, 20.0, 5.0, 12.0]) == 32.0  # resumed after 20 s: the clock restarted
    assert train_seconds([]) == 0.0


def test_study_table_orders_by_onnx_latency_and_names_sizes(tmp_path: Path) -> None:
    runs = {}
    for name, m in (("slow", 0.6), ("fast", 0.5)):
        run = runs[name] = tmp_path / name
        (run / "weights").mkdir(parents=True)
        (run / "results.csv").write_text("epoch,time\n0,60\n1,120\n0,30\n")  # resumed once: 2.5 min
        torch.save({"format": FORMAT, "version": VERSION, "model": {}, "cfg": {}, "names": ["a"],
                    "meta": {"mAP50": m + 0.3, "mAP50-95": m}}, run / "weights" / "best.pt")
    cell = lambda model, fmt, sz, ms: {"model": model, "format": fmt, "precision": "fp32", "imgsz": sz,  # noqa: E731
                                       "status": "ok", "p50_ms": ms, "map50_95": 40.0, "gflops": sz / 100}
    cells = [cell("slow", "onnx", 160, 20.0), cell("fast", "onnx", 160, 10.0), cell("slow", "onnx", 320, 50.0),
             cell("fast", "pytorch", 320, 99.0), {"model": "fast", "format": "onnx", "precision": "fp32",
                                                  "imgsz": 320, "status": "skipped"}]
    lines = study_table(runs, cells).splitlines()
    assert lines[0] == ("| model | train min | best val mAP50 / 50-95 | GFLOPs@160 | pytorch fp32 320 ms / mAP50-95 | "
                        "onnx fp32 160 ms / mAP50-95 | onnx fp32 320 ms / mAP50-95 |")
    assert lines[2] == "| fast | 2.5 | 0.800 / 0.500 | 1.60 | 99.0 / 40.00 | 10.0 / 40.00 | - |"
    assert lines[3].startswith("| slow | 2.5 | 0.900 / 0.600 | 1.60 | - | 20.0 / 40.00 | 50.0 / 40.00 |")


def test_study_end_to_end_then_rerun_without_training(tmp_path: Path, tiny_data: Path, tiny_model: str) -> None:
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text(yaml.safe_dump(NO_AUG))
    runs, out = tmp_path / "runs", tmp_path / "out"
    argv = ["--models", tiny_model, "--epochs", "1", "--imgsz", "96", "--data", str(tiny_data), "--runs", str(runs),
            "--formats", "pytorch,onnx", "--int8", "off", "--warmup", "0", "--iters", "2", "--threads", "1", "--passes", "2",
            "--out", str(out), "--batch", "4", "--workers", "0", "--hyp", str(hyp)]  # the last three go to train
    main(argv)
    run = runs / "tiny-yolo"
    assert (run / "weights" / "best.pt").is_file() and (out / "compare.png").is_file()
    cells = json.loads((out / "bench.json").read_text())["cells"]
    assert {(c["model"], c["format"], c["precision"], c["status"]) for c in cells} == {
        ("tiny-yolo", "pytorch", "fp32", "ok"), ("tiny-yolo", "onnx", "fp32", "ok")}
    assert all(c["imgsz"] == 96 and c["map50_95"] is not None for c in cells)
    assert all(c["notes"][-1].startswith("latency: median of 2 passes, p50 ") for c in cells)
    study = (out / "study.md").read_text().splitlines()
    assert study[-3] == "| model | train min | best val mAP50 / 50-95 | GFLOPs@96 | pytorch fp32 ms / mAP50-95 | " \
                        "onnx fp32 ms / mAP50-95 |"
    row = study[-1].split(" | ")
    onnx = next(c for c in cells if c["format"] == "onnx")
    lo, hi = (float(v) for v in onnx["notes"][-1].split("p50 ")[1].removesuffix(" ms").split("-"))
    m = re.fullmatch(r"(\d+\.\d) \((\d+\.\d)-(\d+\.\d)\) / (\d+\.\d\d) \|", row[-1])
    assert row[0] == "| tiny-yolo" and m, row[-1]
    assert (m[1], m[4]) == (f"{onnx['p50_ms']:.1f}", f"{onnx['map50_95']:.2f}")
    # the note keeps 2 decimals, the table 1: compare the range to within that rounding
    assert abs(float(m[2]) - lo) <= 0.051 and abs(float(m[3]) - hi) <= 0.051
    assert lo - 0.005 <= onnx["p50_ms"] <= hi + 0.005  # the median lies in the range (the note's 2 decimals)

    stamp = (run / "weights" / "last.pt").stat().st_mtime_ns
    main(argv)  # finished: reused, not retrained
    assert (run / "weights" / "last.pt").stat().st_mtime_ns == stamp
    with pytest.raises(SystemExit, match="trained with --epochs 1 --imgsz 96, the study asks for 2 / 96"):
        main([*argv[:2], "--epochs", "2", *argv[4:]])
    with pytest.raises(SystemExit, match="--models: unknown yolov9"):
        main(["--models", "yolov9", "--out", str(out)])
