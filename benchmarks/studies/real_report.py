"""The real-data benchmark's report: ``real_data.json`` (everything measured), ``real_data.md``
(edgeyolo against the peer at equal epochs and at equal wall time, per seed and, over several
seeds, their means) and ``real_data.png`` (validation mAP@0.5:0.95 against training wall time, one
panel a set).

``report["sets"][set][seed][tool]`` is one training run: its per-epoch ``curve`` and last mAPs,
or ``skipped`` / ``failed`` with the reason."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import save_figure

PEER, OURS = "yolov8n", "edgeyolo"


def at_time(curve: list[dict[str, float]], seconds: float) -> dict[str, float]:
    """The best validation mAPs a run had reached within ``seconds`` of training (0 before its first)."""
    seen = [r for r in curve if r["time"] <= seconds]
    return {"map50": max((r["map50"] for r in seen), default=0.0), "map": max((r["map"] for r in seen), default=0.0)}


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def best_epoch(curve: list[dict[str, float]]) -> dict[str, float]:
    """The epoch of best fitness (0.1 mAP@0.5 + 0.9 mAP@0.5:0.95), the one each tool's best.pt holds."""
    return max(curve, key=lambda r: 0.1 * r["map50"] + 0.9 * r["map"])


def best_maps(cell: dict[str, Any]) -> dict[str, float]:
    """A run's best.pt mAPs: under edgeyolo's scorer where the run recorded it (the peer's
    ``best_common``), else its best epoch's own."""
    best = cell.get("best_common") or best_epoch(cell["curve"])
    return {"map50": best["map50"], "map": best["map"]}


def comparison(cells: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """Ratios of edgeyolo to the peer: at equal epochs (each run's last epoch) and at equal wall time
    (edgeyolo's best by the time the peer finished). None when a cell did not run."""
    peer, ours = cells.get(PEER, {}), cells.get(OURS, {})
    if "curve" not in peer or "curve" not in ours:
        return None
    t_peer = peer["curve"][-1]["time"]
    same_time = at_time(ours["curve"], t_peer)

    best = {k: best_maps(ours)[k] / max(best_maps(peer)[k], 1e-9) for k in ("map50", "map")}
    return {"epochs_map50": _ratio(ours["map50"], peer["map50"]), "epochs_map": _ratio(ours["map"], peer["map"]),
            "best_map50": best["map50"], "best_map": best["map"],
            "time_map50": _ratio(same_time["map50"], peer["map50"]), "time_map": _ratio(same_time["map"], peer["map"]),
            "peer_seconds": t_peer, "ours_at_peer_time_map50": same_time["map50"],
            "ours_at_peer_time_map": same_time["map"]}


def mean_comparison(seeds: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Over the seeds where both tools ran: each tool's mean last and best mAPs, edgeyolo's mean
    best within the peer's time, and edgeyolo's means over the peer's (a ratio of means: a seed
    where both score low weighs no more than one where both score high). None when no seed did."""
    paired = {seed: cells for seed, cells in seeds.items() if comparison(cells) is not None}
    if not paired:
        return None
    mean = statistics.fmean
    tools = {tool: {k: mean(c[tool][k] for c in paired.values()) for k in ("map50", "map")} for tool in (PEER, OURS)}
    for tool in (PEER, OURS):
        tools[tool].update({f"best_{k}": mean(best_maps(c[tool])[k] for c in paired.values()) for k in ("map50", "map")})
    at_peer = {k: mean(comparison(c)[f"ours_at_peer_time_{k}"] for c in paired.values()) for k in ("map50", "map")}
    peer, ours = tools[PEER], tools[OURS]
    return {"seeds": list(paired), PEER: peer, OURS: ours,
            "epochs_map50": _ratio(ours["map50"], peer["map50"]), "epochs_map": _ratio(ours["map"], peer["map"]),
            "best_map50": _ratio(ours["best_map50"], peer["best_map50"]),
            "best_map": _ratio(ours["best_map"], peer["best_map"]),
            "time_map50": _ratio(at_peer["map50"], peer["map50"]), "time_map": _ratio(at_peer["map"], peer["map"])}


RATIOS = ("epochs_map50", "epochs_map", "best_map50", "best_map", "time_map50", "time_map")
RATIO_HEADER = ("| last epoch mAP@0.5 | last epoch mAP@0.5:0.95 | best epoch mAP@0.5 | best epoch mAP@0.5:0.95 | "
                "equal time mAP@0.5 | equal time mAP@0.5:0.95 |")


def _cell_row(name: str, seed: str, tool: str, cell: dict[str, Any]) -> str:
    if "curve" not in cell:
        return f"| {name} | {seed} | {tool} | {cell.get('skipped') or cell.get('failed')} | | | | | |"
    last = cell["curve"][-1]
    best = best_epoch(cell["curve"])
    scored = best_maps(cell)
    return (f"| {name} | {seed} | {tool} | {cell['map50']:.3f} | {cell['map']:.3f} | {scored['map50']:.3f} | "
            f"{scored['map']:.3f} ({int(best['epoch'])}) | {last['time']:.0f} | {last['time'] / len(cell['curve']):.1f} |")


def _vector_units(report: dict[str, Any]) -> str:
    """The CPU's vector units, where the host recorded them: kernels, and their rounding, differ with them."""
    units = (report.get("record") or {}).get("cpu_features")
    return f", {', '.join(units)}" if units else ""


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    seeds = ",".join(str(v) for v in s["seeds"])
    lines = [f"# Real images: edgeyolo ({s['model']}) against Ultralytics yolov8n, from scratch", "",
             f"{report['device']}{_vector_units(report)}; {s['epochs']} epochs, imgsz {s['imgsz']}, batch {s['batch']}, {s['threads']} "
             f"threads, {s['workers']} loader workers, seed{'s' if len(s['seeds']) > 1 else ''} {seeds} for both, "
             "each tool's defaults"
             + (f" (edgeyolo extra: `{' '.join(s['edgeyolo_args'])}`)" if s["edgeyolo_args"] else "")
             + f"; load average {report['load_avg_start']:.2f} at start, {report['load_avg_end']:.2f} at end. "
             "Both tools' last and best mAPs are scored by one scorer, edgeyolo's (COCOeval's for boxes), on the "
             "same validation tiles: yolov8n's last.pt and best.pt are scored again from its own validation's "
             "detections (conf 0.001; NMS IoU 0.65 edgeyolo, 0.7 Ultralytics; `common_scorer.py`), as Ultralytics' "
             "own scorer reads lower; the per-epoch curves (the plot, the equal-time search) are each tool's own. Time is training time from each run's "
             "results.csv (validation included); equal time = edgeyolo's best mAP within the peer's whole training time; "
             "best = the epoch of best fitness (0.1 mAP@0.5 + 0.9 mAP@0.5:0.95), the one each tool's best.pt holds.", "",
             "| set | seed | tool | last mAP@0.5 | last mAP@0.5:0.95 | best mAP@0.5 | best mAP@0.5:0.95 (epoch) | seconds | "
             "s/epoch |", "|---|---|---|---|---|---|---|---|---|"]
    reused = [f"{name} seed {seed} {tool}" for name, by_seed in report["sets"].items() for seed, cells in by_seed.items()
              for tool, cell in cells.items() if cell.get("reused")]
    if reused:
        lines[2:2] = [f"Resumed: {', '.join(reused)} reused from an earlier run of this report (each cell's start "
                      "time and load average are in real_data.json).", ""]
    if report.get("pending"):
        lines[2:2] = [f"**Partial report**: still to run: {', '.join(report['pending'])}.", ""]
    for name, by_seed in report["sets"].items():
        lines += [_cell_row(name, seed, tool, cell) for seed, cells in by_seed.items() for tool, cell in cells.items()]
    lines += ["", "edgeyolo / yolov8n (>= 1.00 at equal epochs and >= 0.90 at equal time is the target):", "",
              "| set | seed " + RATIO_HEADER, "|---|---|---|---|---|---|---|---|"]
    for name, by_seed in report["sets"].items():
        for seed, cells in by_seed.items():
            c = comparison(cells)
            lines.append(f"| {name} | {seed} | " + " | ".join(f"{c[k]:.2f}" if c else "n/a" for k in RATIOS) + " |")
    several = {name: mean_comparison(by_seed) for name, by_seed in report["sets"].items() if len(by_seed) > 1}
    if several:
        lines += ["", "Over the seeds: each tool's mean last-epoch mAP@0.5 / mAP@0.5:0.95, and edgeyolo's means over "
                  "yolov8n's:", "", "| set | seeds | yolov8n | edgeyolo " + RATIO_HEADER,
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, m in several.items():
            if m is None:
                lines.append(f"| {name} | no seed with both runs | | | | | | | | |")
                continue
            lines.append(f"| {name} | {','.join(m['seeds'])} | {m[PEER]['map50']:.3f} / {m[PEER]['map']:.3f} | "
                         f"{m[OURS]['map50']:.3f} / {m[OURS]['map']:.3f} | " + " | ".join(f"{m[k]:.2f}" for k in RATIOS) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(report["sets"])
    colours = {PEER: "tab:blue", OURS: "tab:orange"}
    styles = ("-", "--", ":", "-.")
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], sets):
        by_seed = report["sets"][name]
        for i, (seed, cells) in enumerate(by_seed.items()):
            for tool, cell in cells.items():
                if "curve" in cell:
                    ax.plot([r["time"] for r in cell["curve"]], [r["map"] for r in cell["curve"]],
                            color=colours.get(tool), linestyle=styles[i % len(styles)],
                            label=tool if len(by_seed) == 1 else f"{tool} seed {seed}")
        ax.set_title(name)
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("val mAP@0.5:0.95")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)


def write_report(report: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "real_data.json", json.dumps(report, indent=1))
    text = markdown(report)
    atomic_write_text(out / "real_data.md", text)
    plot(report, out / "real_data.png")
    return text
