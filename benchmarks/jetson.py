"""Parsers for what a Jetson says about itself: ``/proc/device-tree/model``,
``/etc/nv_tegra_release``, ``nvpmodel -q``, ``jetson_clocks --show`` and ``tegrastats`` lines.

Pure text -> values, so they are tested on recorded output of real boards (Nano, TX2, Xavier,
Orin). Formats differ between JetPack 4 (``POM_5V_IN 3191/3191``, no unit) and JetPack 5/6
(``VDD_IN 4325mW/4325mW``); both are read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# L4T release -> JetPack (NVIDIA's release notes). Releases not listed are reported as L4T only.
L4T_TO_JETPACK: dict[str, str] = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.5.2": "4.5.1",
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4", "32.7.5": "4.6.5",
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3", "35.6.0": "5.1.4",
    "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
}


def parse_device_tree_model(text: str) -> str | None:
    """``/proc/device-tree/model`` is NUL-terminated: ``'NVIDIA Jetson AGX Orin Developer Kit\\x00'``."""
    name = text.replace("\x00", "").strip()
    return name or None


_L4T = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


def parse_l4t_release(text: str) -> str | None:
    """``# R35 (release), REVISION: 3.1, GCID: ...`` -> ``'35.3.1'`` (None if not that format)."""
    m = _L4T.search(text)
    if not m:
        return None
    rev = m.group(2).split(".")
    rev += ["0"] * (2 - len(rev))  # "REVISION: 5" is 32.5.0
    return ".".join([m.group(1), *rev[:2]])


def jetpack_for(l4t: str | None, dpkg_version: str | None = None) -> str | None:
    """JetPack from ``dpkg-query -W -f '${Version}' nvidia-jetpack`` when installed (``5.1.1-b56``),
    else from the L4T release table."""
    if dpkg_version:
        v = dpkg_version.strip().split("-")[0]
        if re.fullmatch(r"\d+(\.\d+)*", v):
            return v
    return L4T_TO_JETPACK.get(l4t) if l4t else None


_MODE = re.compile(r"NV Power Mode:\s*(.+)")


def parse_nvpmodel(text: str) -> dict[str, Any] | None:
    """``nvpmodel -q``: ``NV Power Mode: MAXN`` then the mode id on its own line -> name and id."""
    m = _MODE.search(text)
    if not m:
        return None
    mode_id = None
    after = text[m.end():].split()
    if after and after[0].isdigit():
        mode_id = int(after[0])
    return {"name": m.group(1).strip(), "id": mode_id}


_FREQ = re.compile(r"MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)")


def parse_jetson_clocks(text: str) -> dict[str, Any]:
    """``jetson_clocks --show``. Clocks are locked (jetson_clocks on) when every online CPU and the
    GPU run with MinFreq == MaxFreq == CurrentFreq and the EMC has FreqOverride=1."""
    cpus: list[bool] = []
    gpu = emc = None
    for line in text.splitlines():
        s = line.strip()
        f = _FREQ.search(s)
        if s.startswith("cpu") and "Online=1" in s and f:
            lo, hi, cur = map(int, f.groups())
            cpus.append(lo == hi == cur)
        elif s.startswith("GPU ") and f:
            lo, hi, cur = map(int, f.groups())
            gpu = lo == hi == cur
        elif s.startswith("EMC ") and f:
            lo, hi, cur = map(int, f.groups())
            emc = "FreqOverride=1" in s or lo == hi == cur
    checks = {"cpu": bool(cpus) and all(cpus), "gpu": gpu, "emc": emc}
    known = [v for v in checks.values() if v is not None]
    return {"locked": bool(known) and all(known) and bool(cpus), **checks, "cpus_seen": len(cpus)}


# ---- tegrastats ---------------------------------------------------------------------------------------

# A power rail: NAME cur/avg with optional mW units, followed by a space or the line end (so
# ``RAM 2448/7772MB`` and ``IRAM 0/252kB`` are not read as rails).
_RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*)\s+(\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_GR3D = re.compile(r"GR3D_FREQ (\d+)%")
_TEMP = re.compile(r"([A-Za-z][\w]*)@(-?[\d.]+)C\b")
_CPU = re.compile(r"CPU \[([^\]]*)\]")
# Input rails that measure the whole module/board; when absent (AGX Xavier/Orin) the rails are summed.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
NOT_RAILS = {"RAM", "SWAP", "IRAM", "EMC_FREQ", "GR3D_FREQ"}


@dataclass
class TegraSample:
    rails_mw: dict[str, int] = field(default_factory=dict)  # instantaneous power per rail
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    gpu_util: int | None = None  # GR3D_FREQ %
    cpu_util: list[int] = field(default_factory=list)  # per online core, %
    temps_c: dict[str, float] = field(default_factory=dict)

    @property
    def power_mw(self) -> int | None:
        """Total power: the input rail when the board has one, else the sum of all rails."""
        for name in INPUT_RAILS:
            if name in self.rails_mw:
                return self.rails_mw[name]
        return sum(self.rails_mw.values()) if self.rails_mw else None

    @property
    def power_source(self) -> str:
        return next((n for n in INPUT_RAILS if n in self.rails_mw), "sum of rails")


def parse_tegrastats(line: str) -> TegraSample:
    """One tegrastats line -> rails (mW), RAM, GPU load, CPU loads, temperatures."""
    s = TegraSample()
    for name, cur, _avg in _RAIL.findall(line):
        if name not in NOT_RAILS:
            s.rails_mw[name] = int(cur)
    if m := _RAM.search(line):
        s.ram_used_mb, s.ram_total_mb = int(m.group(1)), int(m.group(2))
    if m := _GR3D.search(line):
        s.gpu_util = int(m.group(1))
    if m := _CPU.search(line):
        s.cpu_util = [int(c.split("%")[0]) for c in m.group(1).split(",") if "%" in c]
    for name, t in _TEMP.findall(line):
        if float(t) > -200:  # -256C is tegrastats' "sensor off"
            s.temps_c[name] = float(t)
    return s
