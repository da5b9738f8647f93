"""The bench results schema: one row per cell, written as ``bench.csv``, ``bench.json`` (rows plus
the device record and settings) and a Markdown table; and ``--compare`` of two JSON files.

``COLUMNS`` is the schema: the CSV header in this order, the keys of every JSON row. A row that was
not run has ``status`` ``skipped`` (with ``reason``) or ``error`` and empty measurements.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from edgeyolo.atomic import atomic_path, atomic_write_text

if TYPE_CHECKING:
    from .matrix import Source
    from .runner import BenchOptions

SCHEMA_VERSION = 1
COLUMNS: tuple[str, ...] = (
    "model", "source", "format", "precision", "imgsz", "batch", "device", "status", "reason",
    "mode", "warmup", "iters", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "fps",
    "e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_mean_ms", "e2e_fps",
    "rss_peak_mb", "gpu_mem_peak_mb", "size_mb", "gflops",
    "map50_95", "map50", "map_images", "map_note",
    "power_w", "energy_mj_per_frame", "load1", "export_cached", "artifact", "notes",
)
STATUSES = ("ok", "skipped", "error")


def empty_row(**values: Any) -> dict[str, Any]:
    """A row with every column, None where not given; unknown keys are a programming error."""
    bad = set(values) - set(COLUMNS)
    if bad:
        raise KeyError(f"not bench columns: {sorted(bad)}")
    row = dict.fromkeys(COLUMNS)
    row.update(values)
    return row


TIMING_COLUMNS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "fps",
                  "e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_mean_ms", "e2e_fps")


def timed_by_cell(passes: Sequence[Sequence[dict[str, Any]]]) -> dict[tuple, list[dict[str, Any]]]:
    """(model, format, precision, size, batch) -> the rows of the passes that timed that cell."""
    timed: dict[tuple, list[dict[str, Any]]] = {}
    for rows in passes:
        for r in rows:
            if r["status"] == "ok" and r["p50_ms"] is not None:
                timed.setdefault((r["model"], r["format"], r["precision"], r["imgsz"], r["batch"]), []).append(r)
    return timed


def median_of_passes(passes: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The first pass's rows with every timing column replaced by its median over the passes that
    timed the same cell (:func:`timed_by_cell`), and a note giving the p50 range. On a shared CPU
    one pass's latency of a millisecond-scale model moves by tens of percent between runs while its
    iterations agree; repeating whole passes samples that and the median resists it."""
    timed = timed_by_cell(passes)
    out = []
    for r in passes[0]:
        runs = timed.get((r["model"], r["format"], r["precision"], r["imgsz"], r["batch"]), [])
        r = dict(r)
        if r["status"] == "ok" and len(runs) > 1:
            for col in TIMING_COLUMNS:
                vals = [x[col] for x in runs if x[col] is not None]
                if vals:
                    r[col] = statistics.median(vals)
            p50 = [x["p50_ms"] for x in runs]
            r["notes"] = [*r["notes"], f"latency: median of {len(runs)} passes, p50 {min(p50):.2f}-{max(p50):.2f} ms"]
        out.append(r)
    return out


def validate_rows(rows: Sequence[dict[str, Any]], where: str = "bench rows") -> None:
    for i, r in enumerate(rows):
        if tuple(r) != COLUMNS:
            raise ValueError(f"{where}: row {i} does not have the bench columns (schema {SCHEMA_VERSION})")
        if r["status"] not in STATUSES:
            raise ValueError(f"{where}: row {i} has status {r['status']!r}, expected one of {STATUSES}")


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in rows:
            w.writerow({k: "; ".join(v) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})
    return path


def write_json(rows: Sequence[dict[str, Any]], device: dict[str, Any], settings: dict[str, Any], path: Path,
               name: str = "") -> Path:
    data = {"schema": SCHEMA_VERSION, "name": name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device, "settings": settings, "columns": list(COLUMNS), "cells": list(rows)}
    return atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--compare {path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--compare {path}: not JSON ({e.msg})") from None
    if not isinstance(data, dict) or "cells" not in data or "device" not in data:
        raise ValueError(f"--compare {path}: not a bench.json (no cells/device)")
    return data


def _f(v: Any, nd: int = 2) -> str:
    if v is None or v == "":
        return ""
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _map(r: dict[str, Any]) -> tuple[str, str]:
    if r.get("map50_95") is None:
        return (r.get("map_note") or "", "")
    return _f(r["map50_95"]), _f(r["map50"])


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The run cells as a table (sorted fastest first), then the skipped/failed cells with why."""
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["p50_ms"] or 0.0)
    e2e = any(r.get("e2e_p50_ms") is not None for r in ok)
    head = ["model", "format", "prec", "imgsz", "batch", "p50 ms", "p90 ms", "p99 ms", "mean ms", "FPS"]
    head += ["e2e p50 ms", "e2e FPS"] if e2e else []
    head += ["RSS MB", "GPU MB", "size MB", "GFLOPs", "mAP50-95", "mAP50", "W", "mJ/frame"]
    body: list[list[str]] = []
    for r in ok:
        m, m50 = _map(r)
        cells = [r["model"], r["format"], r["precision"], r["imgsz"], r["batch"], _f(r["p50_ms"]), _f(r["p90_ms"]),
                 _f(r["p99_ms"]), _f(r["mean_ms"]), _f(r["fps"], 1)]
        cells += [_f(r["e2e_p50_ms"]), _f(r["e2e_fps"], 1)] if e2e else []
        cells += [_f(r["rss_peak_mb"], 0), _f(r["gpu_mem_peak_mb"], 0), _f(r["size_mb"], 1), _f(r["gflops"], 2), m, m50,
                  _f(r["power_w"]), _f(r["energy_mj_per_frame"])]
        body.append([str(c) for c in cells])
    keep = [j for j in range(len(head)) if j < 10 or any(row[j] for row in body)]  # drop all-empty columns (GPU, power on a CPU)
    lines = ["| " + " | ".join(head[j] for j in keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(row[j] for j in keep) + " |" for row in body]
    others = [r for r in rows if r["status"] != "ok"]
    if others:
        lines += ["", "Not run:", ""]
        lines += [f"- {r['model']} {r['format']} {r['precision']} {r['imgsz']}: {r['status']}: {r['reason']}" for r in others]
    return "\n".join(lines)


def device_line(device: dict[str, Any]) -> str:
    """One line naming the device for report headers."""
    v = device.get("versions") or {}
    parts = [f"CPU {device.get('cpu')} ({device.get('threads')} threads)"]
    if device.get("gpu"):
        parts.append(f"GPU {device['gpu']['name']}")
    j = device.get("jetson")
    if j:
        pm = (j.get("nvpmodel") or {}).get("name")
        parts.append(f"{j.get('model')} L4T {j.get('l4t')} JetPack {j.get('jetpack')} nvpmodel {pm} "
                     f"jetson_clocks {'on' if j.get('jetson_clocks') else 'off'}")
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "onnxruntime", "tensorrt", "cuda", "cudnn") if v.get(k))
    parts.append(libs)
    if device.get("loadavg"):
        parts.append(f"load average {tuple(device['loadavg'])}")
    return "; ".join(parts)


def markdown_report(rows: Sequence[dict[str, Any]], device: dict[str, Any], settings: dict[str, Any], title: str) -> str:
    s = settings
    lines = [f"# {title}", "", device_line(device), "",
             f"{s.get('mode_text', '')}; warm-up {s.get('warmup')}, {s.get('iters')} timed iterations, "
             f"{s.get('threads')} threads. {s.get('weights_note', '')}".strip(), ""]
    for w in device.get("warnings") or []:
        lines.append(f"> warning: {w}")
    if device.get("warnings"):
        lines.append("")
    lines.append(markdown_table(rows))
    return "\n".join(lines) + "\n"


def compare_table(a: dict[str, Any], b: dict[str, Any], a_name: str = "A", b_name: str = "B") -> str:
    """Cells of two bench.json side by side, joined on (model, format, precision, imgsz, batch):
    p50 latency, B/A ratio, and mAP of each. Cells in only one file are listed with blanks."""
    def key(r: dict[str, Any]) -> tuple:
        return (r["model"], r["format"], r["precision"], r["imgsz"], r["batch"])
    ra = {key(r): r for r in a["cells"] if r.get("status") == "ok"}
    rb = {key(r): r for r in b["cells"] if r.get("status") == "ok"}
    keys = list(ra) + [k for k in rb if k not in ra]
    lines = [f"A = {a_name}: {device_line(a['device'])}", f"B = {b_name}: {device_line(b['device'])}", "",
             "| model | format | prec | imgsz | batch | A p50 ms | B p50 ms | B/A | A FPS | B FPS | A mAP50-95 | B mAP50-95 |",
             "|" + "---|" * 12]
    for k in keys:
        x, y = ra.get(k, {}), rb.get(k, {})
        pa, pb = x.get("p50_ms"), y.get("p50_ms")
        ratio = f"{pb / pa:.2f}x" if pa and pb else ""
        lines.append("| " + " | ".join(str(v) for v in (*k, _f(pa), _f(pb), ratio, _f(x.get("fps"), 1), _f(y.get("fps"), 1),
                                                         _map(x)[0] if x else "", _map(y)[0] if y else "")) + " |")
    return "\n".join(lines) + "\n"


def settings(o: BenchOptions, data: Path, sources: list[Source]) -> dict[str, Any]:
    """The run's settings as bench.json records them and bench.md states them."""
    random = any(s.kind == "random" for s in sources)
    mode = "model-only latency" + (" and end-to-end (letterbox, inference, decode, NMS, box scaling)" if o.end2end else "")
    return {"formats": o.formats, "precisions": o.precisions, "imgsz": o.sizes, "batch": o.batch, "device": o.device,
            "warmup": o.warmup, "iters": o.iters, "end2end": o.end2end, "threads": o.threads, "data": str(data),
            "map": {"conf": 0.001, "iou": 0.65, "split": "val", "max_images": o.map_images},
            "e2e_nms": {"conf": o.conf, "iou": o.iou}, "calib": {"images": o.calib_images, "method": o.calib_method, "int8": o.int8_mode},
            "mode_text": mode, "weights_note": "Random weights: mAP n/a." if random else "",
            "cudnn_benchmark": o.device.startswith("cuda"), "command": o.command,
            "choose": {"budget_ms": o.budget_ms, "min_map": o.min_map}}


def write_outputs(rows: list[dict[str, Any]], device: dict[str, Any], sett: dict[str, Any], out: Path) -> dict[str, Any]:
    """bench.csv, bench.json, bench.md (with the ship section when a budget or floor was asked) and
    pareto.png in ``out``; returns {"dir", "rows", "device", "settings", "markdown"}."""
    from .choose import ship_section  # noqa: PLC0415
    from .device import device_name  # noqa: PLC0415
    from .pareto import plot_pareto  # noqa: PLC0415
    validate_rows(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "bench.csv")
    write_json(rows, device, sett, out / "bench.json", out.name)
    choose = sett.get("choose") or {}
    md = markdown_report(rows, device, sett, f"edgeyolo bench: {device_name(device)}")
    ship = ship_section(rows, choose.get("budget_ms"), choose.get("min_map"))
    md += f"\n{ship}" if ship else ""
    atomic_write_text(out / "bench.md", md)
    plot_pareto([r for r in rows if r["status"] == "ok"], out / "pareto.png", title=device_name(device))
    return {"dir": out, "rows": rows, "device": device, "settings": sett, "markdown": md}
