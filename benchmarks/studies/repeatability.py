"""Does a seeded training run repeat bit for bit on this machine, and with how many threads?

Trains the same short run ``--runs`` times for each ``--threads`` value (``edgeyolo train``, each
in its own process, torch's intra-op threads set by ``OMP_NUM_THREADS``) and compares every run's
raw weights in last.pt with the first run's of the same thread count, tensor by tensor, and its
results.csv row by row. Writes ``<out>/repeatability.{json,md}``.

    python benchmarks/studies/repeatability.py --data DIR/data.yaml [--epochs 12] [--runs 3] [--threads 1,2]
        [--workers 0]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from edgeyolo.bench.studies import RESULTS, write_answer


def weight_differences(a: Path, b: Path) -> dict:
    """How many of the raw model's tensors differ between two last.pt files, and by how much."""
    wa = torch.load(a, map_location="cpu", weights_only=True)["train_state"]["raw_model"]
    wb = torch.load(b, map_location="cpu", weights_only=True)["train_state"]["raw_model"]
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    largest = max((float((wa[k].double() - wb[k].double()).abs().max()) for k in differ), default=0.0)
    return {"tensors": len(wa), "differ": len(differ), "max_abs_diff": largest}


def first_differing_epoch(a: Path, b: Path) -> int | None:
    """The first epoch whose results.csv row (time aside) differs between two runs; None if none."""
    def rows(p: Path) -> list[list[str]]:
        with p.open() as f:
            return [[v.strip() for v in row] for row in csv.reader(f)][1:]
    for ra, rb in zip(rows(a), rows(b)):
        if ra[2:] != rb[2:]:  # column 0 is the epoch, column 1 its time
            return int(ra[0])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0,
                    help="loader processes (0: one; more tests the default training path)")
    ap.add_argument("--work", default="runs/repeatability")
    ap.add_argument("--out", default=str(RESULTS / "cpu-amd-epyc-avx512"))
    args = ap.parse_args()
    edgeyolo = str(Path(sys.executable).with_name("edgeyolo"))
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "settings": vars(args), "threads": {}}
    for threads in (int(t) for t in args.threads.split(",")):
        runs = []
        for i in range(args.runs):
            name = f"threads{threads}-run{i}"
            # A checkpoint every epoch, so that a time-based checkpoint schedule cannot enter the
            # comparison; one loader process by default, so that the workers' timing cannot either.
            cmd = [edgeyolo, "train", "--data", args.data, "--epochs", str(args.epochs), "--imgsz", str(args.imgsz),
                   "--batch", str(args.batch), "--workers", str(args.workers), "--save-interval", "0",
                   "--project", args.work, "--name", name, "--exist-ok"]
            t0 = time.time()
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            if done.returncode:
                raise SystemExit(f"{name}: edgeyolo train failed: {done.stderr.strip().splitlines()[-1:]}")
            runs.append({"run": Path(args.work) / name, "seconds": time.time() - t0})
            print(f"{threads} threads, run {i}: {runs[-1]['seconds']:.0f} s", flush=True)
        first = runs[0]["run"]
        result["threads"][str(threads)] = [
            {"run": i, "seconds": r["seconds"], **weight_differences(first / "weights/last.pt", r["run"] / "weights/last.pt"),
             "first_differing_epoch": first_differing_epoch(first / "results.csv", r["run"] / "results.csv")}
            for i, r in enumerate(runs[1:], start=1)]
    lines = ["# Does a seeded training run repeat on this machine?", "",
             f"{result['date']}; `edgeyolo train --data {args.data} --epochs {args.epochs} --imgsz {args.imgsz} "
             f"--batch {args.batch} --workers {args.workers} --save-interval 0`, {args.runs} runs per thread count, "
             "each against the first run of its thread count (the raw weights of last.pt, and results.csv row by "
             "row). "
             "Produced by `python benchmarks/studies/repeatability.py`.", "",
             "| threads | run | tensors that differ | largest difference | first epoch whose results differ |",
             "|---|---|---|---|---|"]
    for threads, rows in result["threads"].items():
        for r in rows:
            epoch = "-" if r["first_differing_epoch"] is None else r["first_differing_epoch"]
            lines.append(f"| {threads} | {r['run']} | {r['differ']} of {r['tensors']} | {r['max_abs_diff']:.1e} | {epoch} |")
    stem = "repeatability" if args.workers == 0 else f"repeatability-workers{args.workers}"
    write_answer(args.out, stem, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
