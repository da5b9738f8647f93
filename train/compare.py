"""The seeds' comparison of backbones: one line per run on each training curve, and a table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from edgeyolo.atomic import atomic_path, atomic_write_text
from edgeyolo.models import build_model
from edgeyolo.models.summary import count_params, part_stats
from edgeyolo.runs import read_results

PANELS = [("train/box_loss", "val/box_loss"), ("train/obj_loss", "val/obj_loss"), ("train/cls_loss", "val/cls_loss"),
          ("metrics/mAP50",), ("metrics/mAP50-95",), ("metrics/precision",), ("metrics/recall",), ("lr/pg1",)]


def _load_run(run: Path) -> tuple[str, list[dict[str, float]], dict]:
    rows = read_results(run / "results.csv")
    if not rows:
        raise ValueError(f"{run}: no results.csv rows (not an edgeyolo training run, or no epoch finished)")
    args_file = run / "args.yaml"
    args = yaml.safe_load(args_file.read_text()) if args_file.is_file() else {}
    return run.name, rows, args


def _architecture(run: Path, args: dict) -> tuple[str, object]:
    """(model name, what builds it): the config saved in the run's checkpoint (a fine-tuned run, or a
    YAML that has moved since, has no buildable name in args.yaml), else args' model if it builds."""
    from edgeyolo.models.checkpoint import read_checkpoint  # noqa: PLC0415
    for ckpt in (run / "weights" / "last.pt", run / "weights" / "best.pt"):
        if ckpt.is_file():
            try:
                cfg = read_checkpoint(ckpt)["cfg"]
                return str(cfg.get("name", args.get("model", "?"))), cfg
            except ValueError:
                continue
    from edgeyolo.models.builder import load_config  # noqa: PLC0415
    name = str(args.get("model", "?"))
    try:
        return name, load_config(name)  # resolves the name or YAML without building the model twice
    except ValueError:
        return name, None


def compare_runs(runs: list[str | Path], out: str | Path, imgsz: int = 640) -> tuple[str, Path]:
    """Plot every run's curves into ``out/compare.png`` and write ``out/compare.md``; returns the
    Markdown table and the PNG path."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend needed
    from matplotlib.lines import Line2D

    loaded = [_load_run(Path(r)) for r in runs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(20, 9), tight_layout=True)
    axes = fig.subplots(2, 4).ravel()
    for ax, cols in zip(axes, PANELS):
        for k, (name, rows, _) in enumerate(loaded):
            epochs = np.array([r["epoch"] + 1 for r in rows])
            for col, style in zip(cols, ("-", "--")):  # one colour per run in every panel; val dashed
                y = np.array([r.get(col, np.nan) for r in rows])
                ok = np.isfinite(y)  # runs validated every N epochs have NaN metrics in between
                ax.plot(epochs[ok], y[ok], style, color=f"C{k % 10}", marker="." if ok.sum() < 30 else None)
        if len(cols) == 2:  # losses: the first epochs' validation spikes would flatten the rest linearly
            ax.set_yscale("log")
        ax.set_title(" / ".join(cols) + (" (log)" if len(cols) == 2 else ""))
        ax.set_xlabel("epoch")
    handles = [Line2D([], [], color=f"C{k % 10}", label=name) for k, (name, _, _) in enumerate(loaded)]
    handles += [Line2D([], [], color="0.4", ls=ls, label=what) for ls, what in (("-", "train"), ("--", "val"))]
    axes[0].legend(handles=handles, fontsize=7)
    png = out / "compare.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=120)

    lines = ["| run | model | params | GFLOPs@%d | epochs | final mAP50 | final mAP50-95 | best mAP50 | best mAP50-95 |"
             % imgsz, "|---|---|---|---|---|---|---|---|---|"]
    for (name, rows, args), run in zip(loaded, runs):
        model_name, arch = _architecture(Path(run), args)
        params = gflops = "?"
        if arch is not None:
            m = build_model(arch, nc=int(args.get("nc", 0)) or _nc(rows, args), device="meta")
            params = f"{count_params(m)[1]:,}"
            gflops = f"{sum(s.gflops for s in part_stats(m, imgsz)):.1f}"
        validated = [r for r in rows if np.isfinite(r.get("metrics/mAP50", np.nan))] or rows
        last = validated[-1]
        best = max(validated, key=lambda r: 0.1 * r["metrics/mAP50"] + 0.9 * r["metrics/mAP50-95"])
        lines.append(f"| {name} | {model_name} | {params} | {gflops} | {len(rows)} | {last['metrics/mAP50']:.3f} | "
                     f"{last['metrics/mAP50-95']:.3f} | {best['metrics/mAP50']:.3f} | {best['metrics/mAP50-95']:.3f} |")
    table = "\n".join(lines)
    atomic_write_text(out / "compare.md", table + "\n")
    return table, png


def _nc(rows: list[dict[str, float]], args: dict) -> int:
    """The class count of a run, from its data YAML (4 for the synthetic set)."""
    data = args.get("data")
    if data and Path(data).is_file():
        names = yaml.safe_load(Path(data).read_text()).get("names", [])
        return len(names) or 4
    return 4
