"""The real-data benchmark's report: ``real_data.json`` (everything measured), ``real_data.md``
(edgeyolo against the peer at equal epochs and at equal wall time) and ``real_data.png``
(validation mAP@0.5:0.95 against training wall time, one panel a set)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeyolo.atomic import atomic_write_text

PEER, OURS = "yolov8n", "edgeyolo"


def at_time(curve: list[dict[str, float]], seconds: float) -> dict[str, float]:
    """The best validation mAPs a run had reached within ``seconds`` of training (0 before its first)."""
    seen = [r for r in curve if r["time"] <= seconds]
    return {"map50": max((r["map50"] for r in seen), default=0.0), "map": max((r["map"] for r in seen), default=0.0)}


def comparison(cells: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """Ratios of edgeyolo to the peer: at equal epochs (each run's last epoch) and at equal wall time
    (edgeyolo's best by the time the peer finished). None when a cell did not run."""
    peer, ours = cells.get(PEER, {}), cells.get(OURS, {})
    if "curve" not in peer or "curve" not in ours:
        return None
    t_peer = peer["curve"][-1]["time"]
    same_time = at_time(ours["curve"], t_peer)

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("inf")

    best = {k: max(r[k] for r in ours["curve"]) / max(max(r[k] for r in peer["curve"]), 1e-9) for k in ("map50", "map")}
    return {"epochs_map50": ratio(ours["map50"], peer["map50"]), "epochs_map": ratio(ours["map"], peer["map"]),
            "best_map50": best["map50"], "best_map": best["map"],
            "time_map50": ratio(same_time["map50"], peer["map50"]), "time_map": ratio(same_time["map"], peer["map"]),
            "peer_seconds": t_peer, "ours_at_peer_time_map50": same_time["map50"],
            "ours_at_peer_time_map": same_time["map"]}


def _cell_row(name: str, tool: str, cell: dict[str, Any]) -> str:
    if "curve" not in cell:
        return f"| {name} | {tool} | {cell.get('skipped') or cell.get('failed')} | | | | | |"
    last = cell["curve"][-1]
    best = max(cell["curve"], key=lambda r: 0.1 * r["map50"] + 0.9 * r["map"])  # what best.pt holds
    return (f"| {name} | {tool} | {cell['map50']:.3f} | {cell['map']:.3f} | {best['map50']:.3f} | {best['map']:.3f} "
            f"({int(best['epoch'])}) | {last['time']:.0f} | {last['time'] / len(cell['curve']):.1f} |")


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [f"# Real images: edgeyolo ({s['model']}) against Ultralytics yolov8n, from scratch", "",
             f"{report['device']}; {s['epochs']} epochs, imgsz {s['imgsz']}, batch {s['batch']}, {s['threads']} "
             f"threads, {s['workers']} loader workers, seed {s.get('seed', 0)} for both, each tool's defaults"
             + (f" (edgeyolo extra: `{' '.join(s['edgeyolo_args'])}`)" if s["edgeyolo_args"] else "")
             + f"; load average {report['load_avg_start']:.2f} at start, {report['load_avg_end']:.2f} at end. "
             "Each tool scores its own validation (both: YOLOv5-lineage AP, 101-point, conf 0.001; NMS IoU 0.65 "
             "edgeyolo, 0.7 Ultralytics) on the same validation tiles. Time is training time from each run's "
             "results.csv (validation included); equal time = edgeyolo's best mAP within the peer's whole training time; "
             "best = the epoch of best fitness (0.1 mAP@0.5 + 0.9 mAP@0.5:0.95), the one each tool's best.pt holds.", "",
             "| set | tool | last mAP@0.5 | last mAP@0.5:0.95 | best mAP@0.5 | best mAP@0.5:0.95 (epoch) | seconds | "
             "s/epoch |", "|---|---|---|---|---|---|---|---|"]
    for name, cells in report["sets"].items():
        lines += [_cell_row(name, tool, cell) for tool, cell in cells.items()]
    lines += ["", "edgeyolo / yolov8n (>= 1.00 at equal epochs and >= 0.90 at equal time is the target):", "",
              "| set | last epoch mAP@0.5 | last epoch mAP@0.5:0.95 | best epoch mAP@0.5 | best epoch mAP@0.5:0.95 | "
              "equal time mAP@0.5 | equal time mAP@0.5:0.95 |", "|---|---|---|---|---|---|---|"]
    for name, cells in report["sets"].items():
        c = comparison(cells)
        lines.append(f"| {name} | " + (" | ".join(f"{c[k]:.2f}" for k in ("epochs_map50", "epochs_map", "best_map50", "best_map",
                                                                         "time_map50", "time_map")) if c else
                                    " | ".join(["n/a"] * 6))
                     + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(report["sets"])
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for tool, cell in report["sets"][name].items():
            if "curve" in cell:
                ax.plot([r["time"] for r in cell["curve"]], [r["map"] for r in cell["curve"]], label=tool)
        ax.set_title(name)
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("val mAP@0.5:0.95")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "real_data.json", json.dumps(report, indent=1))
    text = markdown(report)
    atomic_write_text(out / "real_data.md", text)
    plot(report, out / "real_data.png")
    return text
