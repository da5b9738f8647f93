"""benchmarks/studies/real_report.py: edgeyolo against the peer at equal epochs and equal time, per
seed and as means over seeds, and real_data.py's --seeds parsing."""
from __future__ import annotations

import argparse

import pytest


def _cell(times: list[float], map50: list[float], maps: list[float]) -> dict:
    curve = [{"epoch": i, "time": t, "map50": a, "map": b} for i, (t, a, b) in enumerate(zip(times, map50, maps))]
    return {"curve": curve, "map50": map50[-1], "map": maps[-1], "wall_s": times[-1]}


def _seeds() -> dict:
    """Two seeds: in seed 0 edgeyolo is slower and ends higher; in seed 1 both score half as much."""
    return {"0": {"yolov8n": _cell([10, 20, 30], [0.1, 0.2, 0.4], [0.05, 0.1, 0.2]),
                  "edgeyolo": _cell([12, 24, 36], [0.2, 0.3, 0.5], [0.1, 0.15, 0.3])},
            "1": {"yolov8n": _cell([10, 20, 30], [0.1, 0.15, 0.2], [0.02, 0.04, 0.1]),
                  "edgeyolo": _cell([9, 18, 27], [0.05, 0.1, 0.1], [0.02, 0.03, 0.05])}}


def test_comparison_at_equal_epochs_and_time():
    from edgeyolo.bench.studies.real_report import at_time, comparison
    cells = _seeds()["0"]
    assert at_time(cells["edgeyolo"]["curve"], 5) == {"map50": 0.0, "map": 0.0}  # nothing validated yet
    c = comparison(cells)
    assert c["epochs_map50"] == pytest.approx(0.5 / 0.4) and c["epochs_map"] == pytest.approx(0.3 / 0.2)
    # within the peer's 30 s edgeyolo had validated at 12 and 24 s: its best there is 0.3 / 0.15
    assert c["time_map50"] == pytest.approx(0.3 / 0.4) and c["time_map"] == pytest.approx(0.15 / 0.2)
    assert comparison({"yolov8n": {"skipped": "no ultralytics"}, "edgeyolo": cells["edgeyolo"]}) is None


def test_mean_over_seeds_is_a_ratio_of_means_over_paired_seeds():
    from edgeyolo.bench.studies.real_report import mean_comparison
    seeds = _seeds()
    m = mean_comparison(seeds)
    assert m["seeds"] == ["0", "1"]
    assert m["yolov8n"]["map50"] == pytest.approx(0.3) and m["edgeyolo"]["map50"] == pytest.approx(0.3)
    assert m["epochs_map50"] == pytest.approx(1.0)  # the mean of the per-seed ratios would be 0.875
    assert m["epochs_map"] == pytest.approx((0.3 + 0.05) / (0.2 + 0.1))
    # equal time: seed 0's 0.3 (by 30 s), seed 1's 0.1 (all of its run fits in the peer's 30 s)
    assert m["time_map50"] == pytest.approx((0.3 + 0.1) / (0.4 + 0.2))
    seeds["2"] = {"yolov8n": {"failed": "exit 1: out of memory"}, "edgeyolo": _cell([1], [0.9], [0.9])}
    assert mean_comparison(seeds)["seeds"] == ["0", "1"]  # a seed without both runs is left out
    assert mean_comparison({"2": seeds["2"]}) is None


def test_markdown_gives_each_seed_and_their_mean(tmp_path):
    from edgeyolo.bench.studies.real_report import markdown, write_report
    settings = {"model": "yolov4s-mbv3s", "epochs": 3, "imgsz": 320, "batch": 16, "threads": 2, "workers": 2,
                "seeds": [0, 1], "edgeyolo_args": []}
    report = {"device": "Test CPU", "load_avg_start": 0.1, "load_avg_end": 0.2, "settings": settings,
              "sets": {"craters": _seeds(), "nuclei": {"0": {"yolov8n": {"skipped": "Ultralytics is not importable"},
                                                           "edgeyolo": _seeds()["0"]["edgeyolo"]}}}}
    md = markdown(report)
    assert "seeds 0,1 for both" in md and md.count("Test CPU;") == 1  # no vector units recorded: none named
    assert "Test CPU, avx2, avx512f;" in markdown({**report, "record": {"cpu_features": ["avx2", "avx512f"]}})
    assert "| craters | 0 | edgeyolo | 0.500 | 0.300 |" in md and "| craters | 1 | yolov8n | 0.200 | 0.100 |" in md
    assert "| craters | 0 | 1.25 | 1.50 |" in md  # seed 0's ratios at equal epochs
    assert "| craters | 0,1 | 0.300 / 0.150 | 0.300 / 0.175 | 1.00 | 1.17 |" in md  # the means
    assert "| nuclei | 0 | yolov8n | Ultralytics is not importable |" in md and "| nuclei | 0 | n/a |" in md
    assert "| nuclei | 0,1 |" not in md and "| nuclei | no seed" not in md  # one seed: no mean row
    write_report(report, tmp_path)
    assert (tmp_path / "real_data.md").read_text() == md and (tmp_path / "real_data.png").stat().st_size > 1000


def test_seeds_argument():
    from edgeyolo.bench.studies.real_data import _seeds
    assert _seeds("0") == [0] and _seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(argparse.ArgumentTypeError, match="integers separated by commas, got '0;1'"):
        _seeds("0;1")
    with pytest.raises(argparse.ArgumentTypeError, match="repeats a seed"):
        _seeds("1,1")


def test_peer_figures_rescored_by_one_scorer_are_what_is_compared():
    from edgeyolo.bench.studies.real_report import comparison, markdown
    cells = _seeds()["0"]
    peer = cells["yolov8n"]
    # as real_data.py records a peer run: last mAPs re-scored (own kept aside), best.pt re-scored
    peer.update({"own": {"map50": peer["map50"], "map": peer["map"]}, "map50": 0.5, "map": 0.25,
                 "best_common": {"map50": 0.6, "map": 0.3}})
    c = comparison(cells)
    assert c["epochs_map50"] == pytest.approx(0.5 / 0.5) and c["epochs_map"] == pytest.approx(0.3 / 0.25)
    assert c["best_map50"] == pytest.approx(0.5 / 0.6) and c["best_map"] == pytest.approx(0.3 / 0.3)
    assert c["time_map"] == pytest.approx(0.15 / 0.25)
    settings = {"model": "m", "epochs": 3, "imgsz": 320, "batch": 16, "threads": 2, "workers": 2, "seeds": [0],
                "edgeyolo_args": []}
    md = markdown({"device": "Test CPU", "load_avg_start": 0.1, "load_avg_end": 0.2, "settings": settings,
                   "sets": {"craters": {"0": cells}}})
    assert "| craters | 0 | yolov8n | 0.500 | 0.250 | 0.600 | 0.300 (2) |" in md
    assert "one scorer" in md


def test_best_is_the_epoch_best_pt_holds_not_each_metric_maximum():
    from edgeyolo.bench.studies.real_report import best_maps
    # epoch 0 has the higher mAP@0.5, epoch 1 the higher fitness (0.1 mAP@0.5 + 0.9 mAP@0.5:0.95)
    cell = _cell([1, 2], [0.6, 0.5], [0.1, 0.2])
    assert best_maps(cell) == {"map50": 0.5, "map": 0.2}
    assert best_maps({**cell, "best_common": {"map50": 0.55, "map": 0.25}}) == {"map50": 0.55, "map": 0.25}


def _fake_training(monkeypatch, calls: list, fail_on: tuple | None = None):
    """real_data's two trainers replaced by ones that log their cell and return a finished run."""
    from edgeyolo.bench.studies import real_data

    def fake(tool):
        def train(data, args, run, seed):
            if (run.name, tool) == fail_on:
                raise KeyboardInterrupt
            calls.append(run.name)
            return _cell([10.0, 20.0], [0.1, 0.2 + 0.1 * (tool == "edgeyolo")], [0.05, 0.1])
        return train
    monkeypatch.setattr(real_data, "train_peer", fake("yolov8n"))
    monkeypatch.setattr(real_data, "train_edgeyolo", fake("edgeyolo"))
    return real_data


def _bench(monkeypatch, real_data, tmp_path, *extra: str) -> None:
    for name in ("a", "b"):  # the sets exist, so nothing is fetched
        (tmp_path / "work" / "data" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "work" / "data" / name / "data.yaml").write_text("names: [x]\n")
    monkeypatch.setattr("sys.argv", ["real_data.py", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
                                     "--epochs", "2", "--threads", "1", *extra])
    real_data.main()


def test_an_interrupted_benchmark_keeps_its_cells_and_resume_trains_only_the_rest(monkeypatch, tmp_path):
    import json
    calls: list = []
    real_data = _fake_training(monkeypatch, calls, fail_on=("b-edgeyolo-s0", "edgeyolo"))
    with pytest.raises(KeyboardInterrupt):
        _bench(monkeypatch, real_data, tmp_path, "--sets", "a,b")
    assert calls == ["a-yolov8n-s0", "a-edgeyolo-s0", "b-yolov8n-s0"]
    md = (tmp_path / "out" / "real_data.md").read_text()
    assert "**Partial report**: still to run: b 0 edgeyolo." in md and "| a | 0 | 1.50 |" in md
    saved = json.loads((tmp_path / "out" / "real_data.json").read_text())
    assert saved["pending"] == ["b 0 edgeyolo"] and "started" in saved["sets"]["a"]["0"]["edgeyolo"]

    calls.clear()
    real_data = _fake_training(monkeypatch, calls)
    _bench(monkeypatch, real_data, tmp_path, "--sets", "a,b", "--resume")
    assert calls == ["b-edgeyolo-s0"]  # only the cell the interruption lost
    md = (tmp_path / "out" / "real_data.md").read_text()
    assert "Partial" not in md and "| b | 0 | 1.50 |" in md
    assert "Resumed: a seed 0 yolov8n, a seed 0 edgeyolo, b seed 0 yolov8n reused" in md

    calls.clear()  # another seed of one set: the other set's cells stay in the report
    _bench(monkeypatch, real_data, tmp_path, "--sets", "a", "--seeds", "0,1", "--resume")
    assert calls == ["a-yolov8n-s1", "a-edgeyolo-s1"]
    saved = json.loads((tmp_path / "out" / "real_data.json").read_text())
    assert set(saved["sets"]) == {"a", "b"} and set(saved["sets"]["a"]) == {"0", "1"} and saved["pending"] == []


def test_resume_refuses_a_report_made_with_other_settings(monkeypatch, tmp_path):
    calls: list = []
    real_data = _fake_training(monkeypatch, calls)
    _bench(monkeypatch, real_data, tmp_path, "--sets", "a")
    with pytest.raises(SystemExit, match=r"real_data\.json was made with epochs 2, not 3: resume with those settings"):
        _bench(monkeypatch, real_data, tmp_path, "--sets", "a", "--resume", "--epochs", "3")
    (tmp_path / "out" / "real_data.json").write_text("{not json")
    with pytest.raises(SystemExit, match=r"real_data\.json: not a real_data report \(JSONDecodeError"):
        _bench(monkeypatch, real_data, tmp_path, "--sets", "a", "--resume")
    assert calls == ["a-yolov8n-s0", "a-edgeyolo-s0"]
