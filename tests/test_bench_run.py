"""A real (tiny) bench run: checkpoint + random-weights sources, export through the cache, skip
reasons, mAP on the tiny synthetic set, end-to-end timing, the outputs, and the CLI."""
from __future__ import annotations

import json

import pytest

from edgeyolo.bench.device import Readers
from edgeyolo.bench.results import COLUMNS

FAKE = Readers(read_file=lambda p: None, run=lambda c: None, loadavg=lambda: (0.1, 0.1, 0.1), cpu_count=lambda: 2,
               versions=lambda: {"torch": "x"}, gpu=lambda: None)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    from edgeyolo.models import build_model
    from edgeyolo.models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    m = build_model("yolov4s-mbv3s", nc=4).eval()
    return save_checkpoint(tmp_path_factory.mktemp("w") / "small.pt", m, ["motorcycle", "car", "bus", "truck"])


def test_bench_run(tmp_path, tiny_data, ckpt):
    from edgeyolo.bench.runner import BenchOptions, run_bench
    o = BenchOptions(weights=[ckpt], models=["yolov4s-mbv3s"], formats=["pytorch", "onnx", "engine"], precisions=["fp32"],
                     sizes=[64], warmup=1, iters=3, data=tiny_data, cache_dir=tmp_path / "cache", out=tmp_path / "out",
                     end2end=True, threads=1)
    res = run_bench(o, log=lambda m: None, readers=FAKE)
    rows = {(r["source"], r["format"]): r for r in res["rows"]}
    assert len(res["rows"]) == 6
    for src in ("checkpoint", "random"):
        for fmt in ("pytorch", "onnx"):
            r = rows[(src, fmt)]
            assert r["status"] == "ok", r["reason"]
            assert r["iters"] == 3 and r["p50_ms"] > 0 and r["fps"] > 0 and r["e2e_p50_ms"] > 0
            assert r["rss_peak_mb"] > 0 and r["size_mb"] > 0 and r["gflops"] > 0 and r["mode"] == "model-only"
        assert rows[(src, "engine")]["status"] == "skipped" and "tensorrt" in rows[(src, "engine")]["reason"]
    assert rows[("checkpoint", "onnx")]["map_images"] == 8 and rows[("checkpoint", "onnx")]["map50_95"] is not None
    assert rows[("random", "onnx")]["map_note"] == "n/a (random weights)" and rows[("random", "onnx")]["map50_95"] is None
    assert rows[("checkpoint", "onnx")]["export_cached"] is False
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert data["device"]["loadavg"] == [0.1, 0.1, 0.1] and data["settings"]["iters"] == 3
    assert [tuple(c) for c in data["cells"]] == [COLUMNS] * 6
    assert (tmp_path / "out" / "pareto.png").is_file() and "| yolov4s-mbv3s |" in (tmp_path / "out" / "bench.md").read_text()

    # Second run: the ONNX export comes from the cache, and the artifact itself can be benched.
    art = rows[("checkpoint", "onnx")]["artifact"]
    o2 = BenchOptions(weights=[ckpt, art], formats=["onnx"], sizes=[64], warmup=0, iters=2, data=tiny_data,
                      cache_dir=tmp_path / "cache", out=tmp_path / "out2", threads=1, measure_map=False)
    rows2 = run_bench(o2, log=lambda m: None, readers=FAKE)["rows"]
    assert [(r["source"], r["status"], r["export_cached"]) for r in rows2] == [("checkpoint", "ok", True),
                                                                             ("artifact", "ok", None)]
    assert rows2[1]["imgsz"] == 64 and rows2[1]["precision"] == "fp32" and rows2[1]["map_note"].startswith("not measured")


def test_cli_errors_and_compare(tmp_path, capsys):
    from edgeyolo.bench.results import empty_row, write_json
    from edgeyolo.cli import main
    for args, msg in ((["bench", "--models", "yolov4s-mbv3s", "--formats", "tflite"], "--formats: unknown tflite"),
                      (["bench", "--models", "yolov4s-mbv3s", "--imgsz", "300"], "--imgsz: '300'"),
                      (["bench", "--formats", "onnx"], "nothing to bench"),
                      (["bench", "--weights", str(tmp_path / "no.pt")], "file not found"),
                      (["bench", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")], "not found")):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 1
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    row = empty_row(model="m", source="random", format="onnx", precision="fp32", imgsz=320, batch=1, device="cpu",
                    status="ok", reason="", p50_ms=10.0, fps=100.0, notes=[])
    dev = {"cpu": "X", "threads": 2, "versions": {}, "warnings": []}
    write_json([row], dev, {}, tmp_path / "a.json")
    write_json([{**row, "p50_ms": 20.0}], {**dev, "cpu": "Y"}, {}, tmp_path / "b.json")
    main(["bench", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert "| m | onnx | fp32 | 320 | 1 | 10.00 | 20.00 | 2.00x |" in capsys.readouterr().out
    main(["bench", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "cmp")])
    assert "| m | onnx | fp32 | 320 | 1 | 10.00 | 20.00 | 2.00x |" in (tmp_path / "cmp" / "compare.md").read_text()


def test_int8_auto_cells(tmp_path, tiny_data, tiny_model):
    """--int8 auto reaches the export for trained weights only (random ones have no mAP to protect),
    and is part of the export cache key. The checkpoint is the tiny model: its per-layer sensitivity
    scan opens one session per conv, a few instead of yolov4s-mbv3s's ~100."""
    import torch

    from edgeyolo.bench.artifacts import ExportSpec, content_key
    from edgeyolo.bench.runner import BenchOptions, run_bench
    from edgeyolo.models import build_model
    from edgeyolo.models.checkpoint import save_checkpoint
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_model, nc=4).eval(), ["motorcycle", "car", "bus", "truck"])
    on, auto = (ExportSpec("onnx", "int8", 64, 1, str(tiny_data), 8, "minmax", "ort", m) for m in ("on", "auto"))
    assert content_key(ckpt, on) != content_key(ckpt, auto)
    o = BenchOptions(weights=[ckpt], models=["yolov4s-mbv3s"], formats=["onnx"], precisions=["int8"], sizes=[64],
                     warmup=0, iters=1, data=tiny_data, calib_images=8, int8_mode="auto", cache_dir=tmp_path / "cache",
                     out=tmp_path / "out", threads=1)
    rows = {r["source"]: r for r in run_bench(o, log=lambda m: None, readers=FAKE)["rows"]}
    assert rows["checkpoint"]["status"] == rows["random"]["status"] == "ok"
    assert any("--int8 auto" in n for n in rows["checkpoint"]["notes"])
    assert not any("--int8 auto" in n for n in rows["random"]["notes"])
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "exports").glob("*/bench-artifact.json")]
    assert sorted(m["int8_mode"] for m in metas) == ["auto", "on"]


def test_export_cache_key_follows_the_code(tmp_path, ckpt, monkeypatch):
    """An edit to the export or model code (or another library version) changes every cache key, so
    the cache never serves an artifact the current code would not write."""
    from edgeyolo.bench import artifacts
    src = tmp_path / "pkg"
    (src / "sub").mkdir(parents=True)
    (src / "a.py").write_text("x = 1\n")
    (src / "sub" / "m.yaml").write_text("depth: 1\n")
    (src / "notes.txt").write_text("ignored")
    before = artifacts.source_digest([src])
    (src / "notes.txt").write_text("still ignored")
    assert artifacts.source_digest([src]) == before
    (src / "sub" / "m.yaml").write_text("depth: 2\n")
    assert artifacts.source_digest([src]) != before
    spec = artifacts.ExportSpec("onnx", "fp32", 64, 1)
    key = artifacts.content_key(ckpt, spec)
    assert len(artifacts.producer_digest()) == 16 and artifacts.content_key(ckpt, spec) == key  # stable
    monkeypatch.setattr(artifacts, "producer_digest", lambda: "0" * 16)
    assert artifacts.content_key(ckpt, spec) != key
