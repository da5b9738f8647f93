"""Accuracy on real images: edgeyolo and the peer a user would otherwise pick (Ultralytics yolov8n),
each trained from scratch with its defaults, on the same tiles, epochs, image size, batch and
threads, one after the other in one run on one machine.

Each real set is built with ``edgeyolo data real`` (pip fetches its archive into the cache). Each
cell trains in its own process (threads pinned with ``--threads``; Ultralytics would otherwise drop
to one thread on a 2-core machine) and is read back from the run's ``results.csv``; the peer's last
and best checkpoints are then scored again by edgeyolo's scorer (``common_scorer.py``), so that
both tools' last and best figures come from one scorer. The peer runs in
``--peer-python`` (default: this interpreter); where Ultralytics is not importable there, its cells
are skipped with the reason. Ultralytics is never a dependency of edgeyolo.

A set whose runs differ much from seed to seed (craters: 0.26-0.36 mAP@0.5 for either tool) is
judged over several seeds (``--seeds 0,1,2``): both tools train once per seed, and the report sets
their means side by side beside each seed's own pair.

Writes ``<out>/real_data.{md,json}`` and ``<out>/real_data.png`` (validation mAP@0.5:0.95 against
wall time, one panel a set), again after every cell, so an interrupted run keeps what it finished;
``--resume`` then reuses the finished cells of ``<out>/real_data.json`` (when they were trained with
the same settings) and trains only the others, which also adds seeds or sets to an earlier report
(its other finished cells stay in it).

    python benchmarks/studies/real_data.py --sets craters,nuclei --epochs 60 --peer-python /path/to/venv/bin/python
    python benchmarks/studies/real_data.py --sets craters --seeds 0,1,2 --peer-python /path/to/venv/bin/python
    python benchmarks/studies/real_data.py --sets craters --seeds 0,1,2 --resume --out DIR   # after an interruption
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from edgeyolo.bench.device import device_name, device_record
from edgeyolo.bench.studies import RESULTS
from edgeyolo.bench.studies.common_scorer import rescore_peer
from edgeyolo.bench.studies.real_report import OURS, PEER, write_report
from edgeyolo.data.real import build_real_dataset
from edgeyolo.data.synthetic import cache_dir

# The peer's training, run in its interpreter. Ultralytics resets torch's thread count to
# cpu_count - 1 when it selects the CPU; its module constant is set first so both tools get --threads.
PEER_SCRIPT = """
import sys, ultralytics.utils.torch_utils as tu
from ultralytics import YOLO
data, epochs, imgsz, batch, workers, threads, project, name, seed = sys.argv[1:10]
tu.NUM_THREADS = int(threads)
YOLO("yolov8n.yaml").train(data=data, epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), workers=int(workers),
    device="cpu", project=project, name=name, exist_ok=True, plots=False, seed=int(seed), pretrained=False, amp=False,
    verbose=False)
"""


def _curve(csv_path: Path, map50: str, map95: str) -> list[dict[str, float]]:
    """Per-epoch rows of a results.csv: epoch, cumulative seconds, mAP@0.5, mAP@0.5:0.95."""
    with csv_path.open() as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f, skipinitialspace=True)]
    return [{"epoch": float(r["epoch"]), "time": float(r["time"]), "map50": float(r[map50]), "map": float(r[map95])}
            for r in rows]


def train_edgeyolo(data: Path, args: argparse.Namespace, run: Path, seed: int) -> dict:
    cmd = [sys.executable, "-m", "edgeyolo.cli", "train", "--model", args.model, "--data", str(data), "--epochs",
           str(args.epochs), "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--workers", str(args.workers),
           "--project", str(run.parent), "--name", run.name, "--exist-ok", "--device", "cpu", "--seed", str(seed),
           *args.edgeyolo_args]
    return _run_cell(cmd, run / "results.csv", "metrics/mAP50", "metrics/mAP50-95", args.threads)


def train_peer(data: Path, args: argparse.Namespace, run: Path, seed: int) -> dict:
    check = subprocess.run([args.peer_python, "-c", "import ultralytics; print(ultralytics.__version__)"],
                           capture_output=True, text=True)
    if check.returncode:
        return {"skipped": f"Ultralytics is not importable in {args.peer_python}"}
    cmd = [args.peer_python, "-c", PEER_SCRIPT, str(data), str(args.epochs), str(args.imgsz), str(args.batch),
           str(args.workers), str(args.threads), str(run.parent), run.name, str(seed)]
    cell = _run_cell(cmd, run / "results.csv", "metrics/mAP50(B)", "metrics/mAP50-95(B)", args.threads)
    if "curve" in cell:
        # Ultralytics' own scorer is not COCOeval and reads lower on these sets (0.577 against 0.603
        # mAP@0.5:0.95 for one nuclei checkpoint): its last and best checkpoints are scored again
        # by edgeyolo's scorer, so both tools' figures come from one scorer
        last, best = rescore_peer(args.peer_python, [run / "weights" / "last.pt", run / "weights" / "best.pt"], data,
                                  args.imgsz, args.batch)
        cell.update({"own": {"map50": cell["map50"], "map": cell["map"]}, **last, "best_common": best})
    return {**cell, "version": check.stdout.strip()}


def _run_cell(cmd: list[str], results: Path, map50: str, map95: str, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode or not results.is_file():
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        return {"failed": f"exit {done.returncode}: {tail}"}
    curve = _curve(results, map50, map95)
    last = curve[-1]
    return {"wall_s": round(wall, 1), "curve": curve, "map50": last["map50"], "map": last["map"],
            "best_map": max(r["map"] for r in curve)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="craters,nuclei,buildings,nuclei-ngio")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", default="yolov4s-mbv3s")
    ap.add_argument("--seeds", type=_seeds, default=[0],
                    help="both tools' seeds, comma-separated (0,1,2): each seed trains both; the report gives their means")
    ap.add_argument("--peer-python", default=sys.executable)
    ap.add_argument("--edgeyolo-args", nargs=argparse.REMAINDER, default=[],
                    help="extra `edgeyolo train` arguments (last on the line); the defaults are what is judged")
    ap.add_argument("--work", default=str(cache_dir() / "real-bench"), help="datasets and runs")
    ap.add_argument("--out", default=None, help="results folder (default benchmarks/results/<host>)")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished cells of <out>/real_data.json trained with the same settings")
    args = ap.parse_args()
    out = Path(args.out or RESULTS / "cpu")
    work = Path(args.work)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "resume")}
    try:
        done = finished_cells(out / "real_data.json", settings) if args.resume else {}
    except ValueError as e:
        raise SystemExit(f"real_data: {e}") from None
    record = device_record(threads=args.threads)
    report = {"device": device_name(record), "record": record, "load_avg_start": os.getloadavg()[0],
              "settings": settings, "sets": {}}
    for (name, seed, tool), cell in done.items():  # the earlier report's finished cells all stay in it
        report["sets"].setdefault(name, {}).setdefault(seed, {})[tool] = {**cell, "reused": True}
    names = args.sets.split(",")
    todo = [(name, str(seed), tool) for name in names for seed in args.seeds for tool in (PEER, OURS)]
    for name in names:
        data = work / "data" / name
        if not (data / "data.yaml").is_file() and any(k not in done for k in todo if k[0] == name):
            print(build_real_dataset(name, data, force=True).summary(), flush=True)
        for seed in args.seeds:
            cells = report["sets"].setdefault(name, {}).setdefault(str(seed), {})
            for tool in (PEER, OURS):
                key = (name, str(seed), tool)
                if key in done:
                    print(f"{name} seed {seed}: {tool}: reused from {out / 'real_data.json'}", flush=True)
                else:
                    print(f"{name} seed {seed}: training {tool} ...", flush=True)
                    started = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_avg_at_start": os.getloadavg()[0]}
                    train = train_peer if tool == PEER else train_edgeyolo
                    cells[tool] = {**train(data / "data.yaml", args, work / "runs" / f"{name}-{tool}-s{seed}", seed),
                                   **started}
                    print(f"{name} seed {seed}: {tool}: {_short(cells[tool])}", flush=True)
                todo.remove(key)
                # written after every cell: an interrupted run keeps what it finished (--resume goes on)
                report.update(load_avg_end=os.getloadavg()[0], pending=[" ".join(k) for k in todo])
                text = write_report(report, out)
    print(text)


# What decides a cell's result: a resumed run reuses a finished cell only when these are the same
CELL_SETTINGS = ("model", "epochs", "imgsz", "batch", "workers", "threads", "edgeyolo_args")


def finished_cells(path: Path, settings: dict) -> dict[tuple[str, str, str], dict]:
    """The cells of an earlier report that trained to the end, keyed ``(set, seed, tool)``; none
    when there is no report. ``ValueError`` names the setting when the report was made otherwise."""
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text())
        made = old["settings"]
        sets = old["sets"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a real_data report ({type(e).__name__}: {e})") from None
    for k in CELL_SETTINGS:
        if made.get(k) != settings[k]:
            raise ValueError(f"{path} was made with {k} {made.get(k)!r}, not {settings[k]!r}: "
                             "resume with those settings or write to another --out")
    return {(name, seed, tool): cell for name, by_seed in sets.items() for seed, cells in by_seed.items()
            for tool, cell in cells.items() if "curve" in cell}


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers separated by commas, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds repeats a seed: {text!r}")
    return seeds


def _short(cell: dict) -> str:
    if "curve" not in cell:
        return cell.get("skipped") or cell.get("failed", "?")
    return f"mAP50 {cell['map50']:.3f} mAP50-95 {cell['map']:.3f} in {cell['wall_s']:.0f} s"


if __name__ == "__main__":
    main()
