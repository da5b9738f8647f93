"""The device record written with every bench run, without which its latencies cannot be read:
CPU, GPU, library versions, load average, and on a Jetson the board, L4T/JetPack, power mode and
clock lock.

Every file and command goes through a :class:`Readers` object, so tests pass recorded text and
nothing here needs the real board.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .jetson import jetpack_for, parse_device_tree_model, parse_jetson_clocks, parse_l4t_release, parse_nvpmodel


def _read_file(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _run(cmd: list[str]) -> str | None:
    """A command's stdout, None when it is not installed or fails (jetson_clocks may need sudo)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (r.stdout or "") + (r.stderr or "")
    return out if r.returncode == 0 or out.strip() else None


@dataclass
class Readers:
    """Where the record's text comes from (injectable for tests)."""

    read_file: Callable[[str], str | None] = _read_file
    run: Callable[[list[str]], str | None] = _run
    loadavg: Callable[[], tuple[float, float, float] | None] = lambda: os.getloadavg() if hasattr(os, "getloadavg") else None
    cpu_count: Callable[[], int | None] = os.cpu_count
    versions: Callable[[], dict[str, str | None]] = field(default=lambda: library_versions())
    gpu: Callable[[], dict[str, Any] | None] = field(default=lambda: cuda_gpu())


def parse_cpu_model(cpuinfo: str) -> str | None:
    """``/proc/cpuinfo``: ``model name`` on x86, ``Hardware``/``CPU part`` style on ARM."""
    for key in ("model name", "Model", "Hardware", "Processor"):
        for line in cpuinfo.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == key and v.strip():
                return v.strip()
    return None


# The vector units that decide a CPU's speed: oneDNN's fp32/bf16 kernels, ONNX Runtime's int8 ones
# (without VNNI, its u8 x s8 products saturate in int16).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """Which of ``CPU_FEATURES`` the ``flags`` line of ``/proc/cpuinfo`` lists (read when not given);
    ``[]`` where there is none (not Linux, or not x86)."""
    if cpuinfo is None:
        cpuinfo = _read_file("/proc/cpuinfo") or ""
    flags = set(next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), []))
    return [f for f in CPU_FEATURES if f in flags]


def cpu_description(cpuinfo: str | None = None) -> str:
    """``AMD EPYC (avx2, avx512f)``: the CPU and its vector units, which decide the kernels a study's
    timings (and their rounding) come from."""
    if cpuinfo is None:
        cpuinfo = _read_file("/proc/cpuinfo") or ""
    return f"{parse_cpu_model(cpuinfo) or 'unknown CPU'} ({', '.join(cpu_features(cpuinfo)) or 'no AVX2'})"


def library_versions() -> dict[str, str | None]:
    """torch/CUDA/cuDNN/TensorRT/onnxruntime/... versions; None for what is not installed."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "torchvision", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "torch-tensorrt",
                 "opencv-python-headless", "numpy", "edgeyolo"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    if out["tensorrt"] is None:  # JetPack installs TensorRT's Python bindings without pip metadata
        try:
            import tensorrt  # noqa: PLC0415
            out["tensorrt"] = tensorrt.__version__
        except Exception:  # noqa: BLE001 - absent or broken: both mean "not usable here"
            pass
    try:
        import torch  # noqa: PLC0415
        out["cuda"] = torch.version.cuda
        out["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    except Exception:  # noqa: BLE001
        out["cuda"] = out["cudnn"] = None
    return out


def cuda_gpu() -> dict[str, Any] | None:
    """Name, memory and compute capability of CUDA device 0, None without CUDA."""
    try:
        import torch  # noqa: PLC0415
        if not torch.cuda.is_available():
            return None
        p = torch.cuda.get_device_properties(0)
        return {"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}",
                "count": torch.cuda.device_count()}
    except Exception:  # noqa: BLE001
        return None


def jetson_record(r: Readers) -> dict[str, Any] | None:
    """The Jetson part of the record, None when this is not a Jetson."""
    model_text = r.read_file("/proc/device-tree/model")
    release_text = r.read_file("/etc/nv_tegra_release")
    model = parse_device_tree_model(model_text) if model_text else None
    if release_text is None and (model is None or "jetson" not in model.lower()):
        return None
    l4t = parse_l4t_release(release_text) if release_text else None
    dpkg = r.run(["dpkg-query", "-W", "-f", "${Version}", "nvidia-jetpack"])
    nvp = r.run(["nvpmodel", "-q"])
    clocks_text = r.run(["jetson_clocks", "--show"])
    clocks = parse_jetson_clocks(clocks_text) if clocks_text else None
    rec: dict[str, Any] = {"model": model, "l4t": l4t, "jetpack": jetpack_for(l4t, dpkg),
                           "nvpmodel": parse_nvpmodel(nvp) if nvp else None,
                           "jetson_clocks": None if clocks is None else clocks["locked"], "clocks": clocks}
    return rec


def device_record(r: Readers | None = None, threads: int | None = None) -> dict[str, Any]:
    """Everything a reader needs to judge the figures; ``warnings`` lists what makes them unreliable."""
    r = r or Readers()
    cpuinfo = r.read_file("/proc/cpuinfo")
    load = r.loadavg()
    ncpu = r.cpu_count()
    rec: dict[str, Any] = {
        "cpu": (parse_cpu_model(cpuinfo) if cpuinfo else None) or platform.processor() or platform.machine(),
        "cpu_features": cpu_features(cpuinfo or ""),
        "cpu_count": ncpu, "threads": threads or ncpu, "arch": platform.machine(), "os": platform.platform(),
        "gpu": r.gpu(), "versions": r.versions(),
        "loadavg": None if load is None else [round(v, 2) for v in load], "jetson": jetson_record(r), "warnings": [],
    }
    rec["warnings"] = device_warnings(rec)
    return rec


def device_warnings(rec: dict[str, Any]) -> list[str]:
    out = []
    j = rec.get("jetson")
    if j is not None:
        if j.get("jetson_clocks") is False:
            out.append("clocks are not locked: run `sudo jetson_clocks` (figures vary with DVFS)")
        elif j.get("jetson_clocks") is None:
            out.append("could not read `jetson_clocks --show` (run the bench with sudo to record the clock lock)")
        if j.get("nvpmodel") is None:
            out.append("could not read `nvpmodel -q`: power mode unknown")
    load, ncpu = rec.get("loadavg"), rec.get("cpu_count")
    if load and ncpu and load[0] > 0.5 * ncpu:
        out.append(f"load average {load[0]} on {ncpu} CPUs at start: other work shares the machine, latencies are pessimistic")
    return out


def device_name(rec: dict[str, Any]) -> str:
    """A short name for tables and result folders: the Jetson model, the GPU, or the CPU."""
    if rec.get("jetson") and rec["jetson"].get("model"):
        return str(rec["jetson"]["model"])
    if rec.get("gpu"):
        return str(rec["gpu"]["name"])
    return f"{rec.get('cpu') or 'CPU'} ({rec.get('threads')} threads)"
