"""``edgeyolo bench``'s run: build the matrix, export what is missing (cached), time each cell,
measure memory, size and mAP, and write bench.csv / bench.json / bench.md / pareto.png.

``edgeyolo.cli.bench`` only parses arguments into :class:`BenchOptions`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeyolo.runs import increment_path
from edgeyolo.runtime.latency import measure

from .artifacts import ExportSpec, cached_export, default_cache_dir, random_checkpoint
from .device import Readers, device_record
from .harness import peak_rss_mb, reset_peak_rss, timer_for
from .matrix import Cell, Machine, Source
from .results import empty_row, settings, write_outputs
from .sources import make_sources, plan

RANDOM_MAP_NOTE = "n/a (random weights)"


@dataclass
class BenchOptions:
    weights: list[Path] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=lambda: ["pytorch", "torchscript", "onnx"])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    sizes: list[int] = field(default_factory=lambda: [320])
    batch: int = 1
    device: str = "cpu"
    data: Path | None = None  # default: the built-in synthetic val set
    warmup: int = 10
    iters: int = 50
    end2end: bool = False
    out: Path | None = None  # default runs/bench/NAME
    name: str = "exp"
    cache_dir: Path | None = None
    threads: int | None = None
    nc: int = 4  # class count of --models' random-weights models
    measure_map: bool = True
    map_images: int | None = None  # None = the whole split, so runs compare on the same images
    calib_images: int = 128
    calib_method: str = "minmax"
    int8_mode: str = "on"  # "auto": export --int8 auto for trained weights (random ones have no mAP to protect)
    conf: float = 0.25  # end-to-end NMS settings (detect's defaults)
    iou: float = 0.45
    command: str = ""
    budget_ms: float | None = None  # answer "the most accurate cell within this p50" in bench.md
    min_map: float | None = None  # answer "the fastest cell at this mAP@0.5:0.95 (percent)"




class CellRunner:
    """Runs one cell at a time; keeps what cells share (random checkpoints, GFLOPs, test image)."""

    def __init__(self, o: BenchOptions, data: Path, cache_dir: Path, log: Callable[[str], None], power: Any = None):
        self.o, self.data, self.cache_dir, self.log, self.power = o, data, cache_dir, log, power
        self._ckpt: dict[Source, Path] = {}
        self._gflops: dict[tuple[Path, int], float | None] = {}
        self._image: np.ndarray | None = None

    def checkpoint(self, s: Source) -> Path:
        if s not in self._ckpt:
            self._ckpt[s] = s.path if s.kind == "checkpoint" else random_checkpoint(s.name, s.nc, self.cache_dir)
        return self._ckpt[s]

    def gflops(self, ckpt: Path, imgsz: int) -> float | None:
        if (ckpt, imgsz) not in self._gflops:
            from edgeyolo.models import build_model  # noqa: PLC0415
            from edgeyolo.models.checkpoint import read_checkpoint  # noqa: PLC0415
            from edgeyolo.models.summary import part_stats  # noqa: PLC0415
            ck = read_checkpoint(ckpt)
            meta = build_model(ck["cfg"], nc=len(ck["names"]), device="meta")
            self._gflops[(ckpt, imgsz)] = round(sum(p.gflops for p in part_stats(meta, imgsz)), 3)
        return self._gflops[(ckpt, imgsz)]

    def image(self) -> np.ndarray:
        """A real validation image for the end-to-end loop (pre-processing cost depends on its size)."""
        if self._image is None:
            import cv2  # noqa: PLC0415

            from edgeyolo.data import load_data_config  # noqa: PLC0415
            files = load_data_config(self.data).image_files("val")
            if not files:
                raise ValueError(f"--data {self.data}: no val images for --end2end")
            self._image = cv2.imread(str(files[0]))
        return self._image

    def run(self, cell: Cell) -> dict[str, Any]:
        o, s = self.o, cell.source
        row = empty_row(model=s.name, source=s.kind, format=cell.format, precision=cell.precision, imgsz=cell.imgsz,
                        batch=cell.batch, device=o.device, status="skipped", reason=cell.skip, notes=list(cell.notes))
        if cell.skip:
            return row
        try:
            self._measure(cell, row)
            row["status"], row["reason"] = "ok", ""
        except Exception as e:  # noqa: BLE001 - one failing cell must not lose the matrix; the reason is kept
            if os.environ.get("EDGEYOLO_DEBUG"):
                raise
            row["status"], row["reason"] = "error", f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
        finally:
            row["load1"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        return row

    def _measure(self, cell: Cell, row: dict[str, Any]) -> None:
        from edgeyolo.runtime.backends import TorchModuleBackend, load_backend  # noqa: PLC0415

        from .backends import CheckpointBackend, backend_notes, model_only_call  # noqa: PLC0415
        o, s = self.o, cell.source
        cuda = o.device.startswith("cuda")
        if cuda:
            import torch  # noqa: PLC0415
            torch.cuda.reset_peak_memory_stats()
        if s.kind == "artifact":
            art, cached = s.path, None
        elif cell.format == "pytorch":
            art, cached = self.checkpoint(s), None
        else:
            int8_mode = o.int8_mode if cell.precision == "int8" and s.kind == "checkpoint" else "on"
            spec = ExportSpec(cell.format, cell.precision, cell.imgsz, cell.batch,
                              str(self.data) if cell.precision == "int8" else None,
                              o.calib_images if cell.precision == "int8" else 0,
                              o.calib_method if cell.precision == "int8" else "",
                              # ONNX cells run on ONNX Runtime: the graph prepared for it (export --target ort)
                              "ort" if cell.format == "onnx" else None, int8_mode)
            art, cached = cached_export(self.checkpoint(s), spec, self.cache_dir, self.log)
            if cell.precision == "int8":
                row["notes"].append(f"Q/DQ INT8{' (--int8 auto)' if int8_mode == 'auto' else ''}, {o.calib_method} "
                                    f"calibration on {o.calib_images} images of {Path(self.data).name}")
        reset_peak_rss()  # after any export (calibration is not the model's footprint): load + warm-up + timed loops
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice, once per cell
            backend = (CheckpointBackend(art, o.device, half=cell.precision == "fp16") if cell.format == "pytorch"
                       else load_backend(art, o.device, o.threads))
        row["notes"] += backend_notes(backend)
        row["artifact"], row["export_cached"] = str(art), cached
        row["size_mb"] = round((_weights_bytes(art) if str(art).endswith(".pt") else Path(art).stat().st_size) / 2**20, 2)
        if s.kind != "artifact":
            row["gflops"] = self.gflops(self.checkpoint(s), cell.imgsz)
        x = np.random.default_rng(0).random((cell.batch, 3, cell.imgsz, cell.imgsz), dtype=np.float32)
        power = self.power
        # CUDA events time the torch stream; ORT/TensorRT runners sync their own work before returning,
        # so for them the host clock (with a device sync around the interval) is the right timer.
        timer = timer_for(o.device, cuda_events=isinstance(backend, TorchModuleBackend))
        st = measure(model_only_call(backend, x), o.warmup, o.iters, cell.batch, "model-only", timer,
                     on_start=power.start if power else None, on_stop=power.stop if power else None)
        row.update(mode="model-only", warmup=st.warmup, iters=st.iters, p50_ms=st.p50_ms, p90_ms=st.p90_ms,
                   p99_ms=st.p99_ms, mean_ms=st.mean_ms, std_ms=st.std_ms, fps=st.fps)
        if power is not None:
            pr = power.result(st.wall_s, st.iters * cell.batch)
            row["power_w"] = pr.mean_w
            row["energy_mj_per_frame"] = pr.as_dict()["energy_mj_per_frame"]
        if o.end2end:
            from edgeyolo.runtime.detector import Detector  # noqa: PLC0415
            pred = Detector(backend, o.conf, o.iou, imgsz=cell.imgsz)
            imgs = [self.image()] * cell.batch
            e2e = measure(lambda: pred(imgs), max(1, o.warmup // 2), o.iters, cell.batch, "end-to-end",
                          timer_for(o.device, cuda_events=False))
            row.update(e2e_p50_ms=e2e.p50_ms, e2e_p90_ms=e2e.p90_ms, e2e_p99_ms=e2e.p99_ms, e2e_mean_ms=e2e.mean_ms,
                       e2e_fps=e2e.fps)
        row["rss_peak_mb"] = peak_rss_mb()
        if cuda:
            import torch  # noqa: PLC0415
            row["gpu_mem_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            row["notes"].append("GPU memory: torch allocator peak (TensorRT/ORT allocations not seen)")
        self._map(cell, backend, row)

    def _map(self, cell: Cell, backend: Any, row: dict[str, Any]) -> None:
        o = self.o
        if cell.source.kind == "random":
            row["map_note"] = RANDOM_MAP_NOTE
            return
        if not o.measure_map:
            row["map_note"] = "not measured (--no-map)"
            return
        if cell.format != "pytorch" and cell.batch != 1:
            row["map_note"] = "n/a (static batch > 1 artifact; bench it at batch 1 for mAP)"
            return
        from edgeyolo.export.evaluate import evaluate_map  # noqa: PLC0415
        m = evaluate_map(backend, self.data, cell.imgsz, backend.info.nc, "val", o.map_images)
        row.update(map50_95=round(m.map50_95 * 100, 3), map50=round(m.map50 * 100, 3), map_images=m.images)


def _weights_bytes(checkpoint: str | Path) -> int:
    """A checkpoint's deployable size: its weights, not the training state a last.pt also holds."""
    from edgeyolo.models.checkpoint import read_checkpoint  # noqa: PLC0415
    return sum(v.numel() * v.element_size() for v in read_checkpoint(checkpoint)["model"].values())


def run_bench(o: BenchOptions, log: Callable[[str], None] | None = None, readers: Readers | None = None,
              cells: list[Cell] | None = None) -> dict[str, Any]:
    """Run the matrix and write the outputs; returns {"dir", "rows", "device", "settings", "markdown"}.

    ``cells`` replaces the full (source x format x precision x size) product when a script wants
    a sparser matrix (``run_cpu.py``: INT8 for two models only)."""
    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415
    if o.warmup < 0 or o.iters < 1:
        raise ValueError(f"--warmup must be >= 0 and --iters >= 1, got {o.warmup}, {o.iters}")
    if o.device != "cpu" and not o.device.startswith("cuda"):
        raise ValueError(f"--device must be cpu or cuda[:N], got {o.device!r}")
    log = log or (lambda m: tqdm.write(m, file=sys.stderr))
    t_start = time.perf_counter()
    threads = o.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    o.threads = threads
    if o.device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_device(torch.device(o.device))
        # every cell has one fixed input shape: let cuDNN time its algorithms during warm-up and keep
        # the fastest, as TensorRT picks tactics at build (off, eager/TorchScript get its heuristics)
        torch.backends.cudnn.benchmark = True
    if o.data is None:
        from edgeyolo.data import synthetic_data_yaml  # noqa: PLC0415
        data = synthetic_data_yaml()
    else:
        data = Path(o.data)
        if not data.is_file():
            raise ValueError(f"--data {data}: file not found")
    cache_dir = Path(o.cache_dir) if o.cache_dir else default_cache_dir()
    if cells is None:
        sources = make_sources(o)
        cells = plan(o, sources, Machine.here())
    else:
        sources = list(dict.fromkeys(c.source for c in cells))
    device = device_record(readers, threads)
    out = Path(o.out) if o.out else increment_path(Path("runs/bench") / o.name)
    out.mkdir(parents=True, exist_ok=True)
    for w in device["warnings"]:
        log(f"warning: {w}")
    if any(s.kind == "random" for s in sources):
        log("note: --models without --weights: random weights, latency only; mAP is n/a (random weights)")

    power_ctx = None
    if device.get("jetson") and shutil.which("tegrastats"):
        from .power import PowerSampler, tegrastats_lines  # noqa: PLC0415
        power_ctx = PowerSampler(tegrastats_lines)
    rows: list[dict[str, Any]] = []
    with (power_ctx if power_ctx is not None else contextlib.nullcontext()) as power:
        runner = CellRunner(o, data, cache_dir, log, power if power_ctx is not None else None)
        bar = tqdm(cells, desc="bench", unit="cell", file=sys.stderr, dynamic_ncols=True)
        for cell in bar:
            bar.set_postfix_str(cell.label)
            row = runner.run(cell)
            rows.append(row)
            if row["status"] == "ok":
                log(f"{cell.label}: p50 {row['p50_ms']:.2f} ms, {row['fps']:.1f} FPS")
            else:
                log(f"{cell.label}: {row['status']}: {row['reason']}")
    device["loadavg_end"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    sett = settings(o, data, sources)
    sett["wall_minutes"] = round((time.perf_counter() - t_start) / 60, 2)
    return write_outputs(rows, device, sett, out)
