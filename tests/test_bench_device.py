"""Device record parsers on recorded output of real boards, the record built from injected
readers, and power/energy from tegrastats lines."""
from __future__ import annotations

import threading

import pytest

from edgeyolo.bench.device import Readers, cpu_features, device_name, device_record, parse_cpu_model
from edgeyolo.bench.jetson import (jetpack_for, parse_device_tree_model, parse_jetson_clocks, parse_l4t_release,
                                   parse_nvpmodel, parse_tegrastats)
from edgeyolo.bench.power import PowerSampler, energy_per_frame

# --- recorded text ----------------------------------------------------------------------------------
CPUINFO_X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7R13 Processor
stepping\t: 1
"""
CPUINFO_ARM = """processor\t: 0
model name\t: ARMv8 Processor rev 1 (v8l)
BogoMIPS\t: 62.50
CPU implementer\t: 0x41
"""
CPUINFO_ORIN = """processor\t: 0
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd42
"""
RELEASE_ORIN = "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023\n"
RELEASE_NANO = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n"
                "# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n")
RELEASE_JP6 = "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, DATE: Fri Jul 19 23:24:25 UTC 2024\n"
RELEASE_TX2 = "# R32 (release), REVISION: 5, GCID: 27362550, BOARD: t186ref, EABI: aarch64, DATE: Wed May 19 18:16:00 UTC 2021\n"
NVPMODEL_ORIN = "NV Power Mode: MAXN\n0\n"
NVPMODEL_ORIN_NANO = "NVPM WARN: fan mode is not set!\nNV Power Mode: 15W\n0\n"
NVPMODEL_XAVIER_NX = "NV Fan Mode:quiet\nNV Power Mode: MODE_15W_6CORE\n2\n"
CLOCKS_ON_ORIN = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu1: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu11: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
GPU MinFreq=1301000000 MaxFreq=1301000000 CurrentFreq=1301000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
DLA0_CORE:   Online=1 MinFreq=0 MaxFreq=1600000000 CurrentFreq=1600000000
FAN Dynamic Speed control=active hwmon4_pwm=255
NV Power Mode: MAXN
"""
CLOCKS_OFF_NANO = """SOC family:tegra210  Machine:NVIDIA Jetson Nano Developer Kit
Online CPUs: 0-3
CPU Cluster Switching: Disabled
cpu0: Online=1 Governor=schedutil MinFreq=102000 MaxFreq=1479000 CurrentFreq=1479000 IdleStates: WFI=1 c7=1
cpu1: Online=1 Governor=schedutil MinFreq=102000 MaxFreq=1479000 CurrentFreq=921600 IdleStates: WFI=1 c7=1
GPU MinFreq=76800000 MaxFreq=921600000 CurrentFreq=76800000
EMC MinFreq=204000000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=0
Fan: speed=0
NV Power Mode: MAXN
"""
TEGRA_ORIN_NANO = ("RAM 2448/7772MB (lfb 1x4MB) SWAP 0/3886MB (cached 0MB) CPU [2%@1190,1%@1190,0%@1190,0%@1190,off,off] "
                   "EMC_FREQ 0% GR3D_FREQ 0% CPU@41.5C GPU@39.5C VDD_IN 4325mW/4325mW VDD_CPU_GPU_CV 526mW/526mW "
                   "VDD_SOC 1315mW/1315mW")
TEGRA_AGX_ORIN = ("11-23-2026 16:20:01 RAM 4722/30536MB (lfb 5987x4MB) SWAP 0/15268MB (cached 0MB) CPU [1%@729,0%@729,0%@729,"
                  "0%@729,0%@729,0%@729,0%@729,0%@729,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 99%@[1300,1300] "
                  "VIC_FREQ 729 APE 174 CV0@-256C CPU@45.375C Tboard@33C SOC2@42.375C Tdiode@33.5C SOC0@42.906C CV1@-256C "
                  "GPU@47.1C tj@48.2C SOC1@42.093C CV2@-256C VDD_GPU_SOC 11200mW/9986mW VDD_CPU_CV 1594mW/1201mW "
                  "VIN_SYS_5V0 4523mW/4323mW NC 0mW/0mW VDDQ_VDD2_1V8AO 603mW/502mW NC 0mW/0mW")
TEGRA_XAVIER_NX = ("RAM 2131/7767MB (lfb 1130x4MB) SWAP 0/3884MB (cached 0MB) CPU [4%@1190,3%@1190,1%@1190,2%@1190,off,off] "
                   "EMC_FREQ 0% GR3D_FREQ 0% AO@37C GPU@37.5C PMIC@100C AUX@36.5C CPU@38C thermal@37.15C "
                   "VDD_IN 4513/4513 VDD_CPU_GPU_CV 653/653 VDD_SOC 1347/1347")
TEGRA_AGX_XAVIER = ("RAM 3175/31919MB (lfb 6585x4MB) SWAP 0/15959MB (cached 0MB) CPU [1%@1190,0%@1190,0%@1190,0%@1190,"
                    "0%@1190,0%@1190,0%@1190,0%@1190] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 APE 150 MTS fg 0% bg 0% "
                    "AO@37C GPU@37C Tdiode@39.5C PMIC@50C AUX@36C CPU@38.5C thermal@37.55C Tboard@36C "
                    "GPU 311/311 CPU 155/155 SOC 1398/1398 CV 0/0 VDDRQ 311/311 SYS5V 1888/1888")
TEGRA_NANO = ("RAM 1588/3964MB (lfb 100x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [3%@102,2%@102,0%@102,"
              "0%@102] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@21C CPU@23C PMIC@100C GPU@22.5C AO@30C thermal@22.75C "
              "POM_5V_IN 3191/3191 POM_5V_GPU 0/0 POM_5V_CPU 123/123")
TEGRA_TX2 = ("RAM 1903/7852MB (lfb 1027x4MB) SWAP 0/3926MB (cached 0MB) CPU [2%@345,off,off,1%@345,0%@345,0%@345] "
             "EMC_FREQ 0%@1866 GR3D_FREQ 0%@114 APE 150 PLL@29C MCPU@29C PMIC@100C Tboard@25C GPU@27C BCPU@29C "
             "thermal@28.1C Tdiode@25.75C VDD_SYS_GPU 76/76 VDD_SYS_SOC 382/382 VDD_4V0_WIFI 0/0 VDD_IN 1716/1716 "
             "VDD_SYS_CPU 152/152 VDD_SYS_DDR 153/153")


def test_cpu_model():
    assert parse_cpu_model(CPUINFO_X86) == "AMD EPYC 7R13 Processor"
    assert parse_cpu_model(CPUINFO_ARM) == "ARMv8 Processor rev 1 (v8l)"
    assert parse_cpu_model(CPUINFO_ORIN) is None  # Orin's cpuinfo names no model: the record falls back


def test_device_tree_model_and_l4t():
    assert parse_device_tree_model("NVIDIA Jetson AGX Orin Developer Kit\x00") == "NVIDIA Jetson AGX Orin Developer Kit"
    assert parse_device_tree_model("\x00") is None
    assert parse_l4t_release(RELEASE_ORIN) == "35.3.1"
    assert parse_l4t_release(RELEASE_NANO) == "32.7.1"
    assert parse_l4t_release(RELEASE_JP6) == "36.3.0"
    assert parse_l4t_release(RELEASE_TX2) == "32.5.0"
    assert parse_l4t_release("Ubuntu 22.04") is None
    assert [jetpack_for(v) for v in ("35.3.1", "32.7.1", "36.3.0", "99.0.0")] == ["5.1.1", "4.6.1", "6.0", None]
    assert jetpack_for("35.3.1", "5.1.1-b56") == "5.1.1"  # the nvidia-jetpack package wins when installed


def test_nvpmodel():
    assert parse_nvpmodel(NVPMODEL_ORIN) == {"name": "MAXN", "id": 0}
    assert parse_nvpmodel(NVPMODEL_ORIN_NANO) == {"name": "15W", "id": 0}
    assert parse_nvpmodel(NVPMODEL_XAVIER_NX) == {"name": "MODE_15W_6CORE", "id": 2}
    assert parse_nvpmodel("nvpmodel: command not found") is None


def test_jetson_clocks():
    on = parse_jetson_clocks(CLOCKS_ON_ORIN)
    assert on["locked"] and on["cpu"] and on["gpu"] and on["emc"] and on["cpus_seen"] == 3
    off = parse_jetson_clocks(CLOCKS_OFF_NANO)
    assert not off["locked"] and off["cpu"] is False and off["gpu"] is False and off["emc"] is False
    assert parse_jetson_clocks("")["locked"] is False


@pytest.mark.parametrize("line, power, source, rails, gpu, ram", [
    (TEGRA_ORIN_NANO, 4325, "VDD_IN", {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}, 0, (2448, 7772)),
    (TEGRA_AGX_ORIN, 11200 + 1594 + 4523 + 603, "sum of rails", {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "NC",
                                                                 "VDDQ_VDD2_1V8AO"}, 99, (4722, 30536)),
    (TEGRA_XAVIER_NX, 4513, "VDD_IN", {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}, 0, (2131, 7767)),
    (TEGRA_AGX_XAVIER, 311 + 155 + 1398 + 0 + 311 + 1888, "sum of rails", {"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"},
     0, (3175, 31919)),
    (TEGRA_NANO, 3191, "POM_5V_IN", {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}, 0, (1588, 3964)),
    (TEGRA_TX2, 1716, "VDD_IN", {"VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"},
     0, (1903, 7852)),
])
def test_tegrastats(line, power, source, rails, gpu, ram):
    s = parse_tegrastats(line)
    assert set(s.rails_mw) == rails  # RAM/SWAP/IRAM "a/bMB" are not rails
    assert s.power_mw == power and s.power_source == source
    assert s.gpu_util == gpu and (s.ram_used_mb, s.ram_total_mb) == ram
    assert s.temps_c and all(t > -200 for t in s.temps_c.values())  # -256C = sensor off, dropped


def test_tegrastats_details():
    s = parse_tegrastats(TEGRA_ORIN_NANO)
    assert s.cpu_util == [2, 1, 0, 0] and s.temps_c["GPU"] == 39.5
    assert parse_tegrastats("garbage").power_mw is None


def _readers(files: dict[str, str], cmds: dict[str, str], load=(0.5, 0.4, 0.3), ncpu=12) -> Readers:
    return Readers(read_file=files.get, run=lambda c: cmds.get(" ".join(c)), loadavg=lambda: load, cpu_count=lambda: ncpu,
                   versions=lambda: {"torch": "2.1.0", "tensorrt": "8.5.2.2", "cuda": "11.4"},
                   gpu=lambda: {"name": "Orin", "memory_gb": 30.6, "capability": "8.7", "count": 1})


def test_device_record_on_a_jetson():
    r = _readers({"/proc/cpuinfo": CPUINFO_ORIN, "/proc/device-tree/model": "NVIDIA Jetson AGX Orin Developer Kit\x00",
                  "/etc/nv_tegra_release": RELEASE_ORIN},
                 {"nvpmodel -q": NVPMODEL_ORIN, "jetson_clocks --show": CLOCKS_OFF_NANO})
    rec = device_record(r)
    j = rec["jetson"]
    assert (j["model"], j["l4t"], j["jetpack"], j["nvpmodel"]["name"], j["jetson_clocks"]) == (
        "NVIDIA Jetson AGX Orin Developer Kit", "35.3.1", "5.1.1", "MAXN", False)
    assert any("not locked" in w for w in rec["warnings"])
    assert rec["loadavg"] == [0.5, 0.4, 0.3] and rec["versions"]["tensorrt"] == "8.5.2.2"
    assert device_name(rec) == "NVIDIA Jetson AGX Orin Developer Kit"
    r2 = _readers({"/proc/device-tree/model": "NVIDIA Jetson AGX Orin\x00", "/etc/nv_tegra_release": RELEASE_ORIN},
                  {"nvpmodel -q": NVPMODEL_ORIN, "jetson_clocks --show": CLOCKS_ON_ORIN})
    rec2 = device_record(r2)
    assert rec2["jetson"]["jetson_clocks"] is True and rec2["warnings"] == []


def test_device_record_on_a_busy_desktop():
    r = Readers(read_file={"/proc/cpuinfo": CPUINFO_X86}.get, run=lambda c: None, loadavg=lambda: (3.9, 3.5, 3.0),
                cpu_count=lambda: 2, versions=lambda: {"torch": "2.4.0"}, gpu=lambda: None)
    rec = device_record(r, threads=2)
    assert rec["jetson"] is None and rec["gpu"] is None and rec["cpu"] == "AMD EPYC 7R13 Processor"
    assert rec["cpu_features"] == []  # this cpuinfo has no flags line
    flagged = Readers(read_file={"/proc/cpuinfo": CPUINFO_X86 + "flags\t\t: fpu avx avx2 avx512f avx512bw\n"}.get,
                      run=lambda c: None, loadavg=lambda: None, cpu_count=lambda: 2, versions=dict, gpu=lambda: None)
    assert device_record(flagged)["cpu_features"] == ["avx2", "avx512f"]
    assert any("load average 3.9" in w for w in rec["warnings"])
    assert device_name(rec) == "AMD EPYC 7R13 Processor (2 threads)"


def test_power_sampler_counts_only_the_timed_loop():
    # The source itself says how far the sampler has read: a generator resumes only once the
    # sampler has handled the line it last yielded, so no sleep has to guess when that was.
    dropped, go, fed = threading.Event(), threading.Event(), threading.Event()

    def lines():
        yield TEGRA_NANO.replace("POM_5V_IN 3191/3191", "POM_5V_IN 9999/9999")  # before start(): ignored
        dropped.set()
        go.wait(30)
        for mw in (4000, 5000, 6000):
            yield TEGRA_NANO.replace("POM_5V_IN 3191/3191", f"POM_5V_IN {mw}/{mw}")
        fed.set()

    with PowerSampler(lines) as ps:
        assert dropped.wait(30)
        ps.start()
        go.set()
        assert fed.wait(30)
        ps.stop()
        res = ps.result(wall_s=2.0, frames=100)
    assert res.samples == 3 and res.mean_w == pytest.approx(5.0) and res.source == "POM_5V_IN"
    assert res.energy_j_per_frame == pytest.approx(5.0 * 2.0 / 100)
    assert res.as_dict()["energy_mj_per_frame"] == pytest.approx(100.0)


def test_energy_per_frame_and_no_samples():
    assert energy_per_frame(10.0, 1.0, 50) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        energy_per_frame(10.0, 1.0, 0)
    with PowerSampler(lambda: iter(())) as ps:
        ps.start()
        ps.stop()
        assert ps.result(1.0, 10).mean_w is None


def test_cpu_features_reads_the_flags_line():
    info = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16\n"
    assert cpu_features(info) == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert cpu_features("Hardware\t: BCM2835\nFeatures\t: fp asimd\n") == []  # ARM: no x86 flags line
