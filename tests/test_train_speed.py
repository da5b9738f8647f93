"""What makes a CPU training step faster must not change what it computes: the CPU Mish autograd
against ATen's Mish and a numerical gradient, and only where it is meant to run; the allocator
setting against the page faults it is there to remove."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeyolo.models.blocks.mish import Mish, _MishCPU
from edgeyolo.train import allocator


def test_cpu_mish_matches_aten_forward_and_backward():
    x = torch.cat([torch.linspace(-30, 30, 20001), torch.tensor([-1e4, -90.0, -1e-7, 0.0, 1e-7, 90.0, 1e4])])
    ours_x, ref_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = Mish()(ours_x), F.mish(ref_x)
    g = torch.randn_like(x)
    ours.backward(g)
    ref.backward(g)
    assert ours.grad_fn.name().endswith("_MishCPUBackward")  # the fast path did run
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-5, atol=1e-5)


def test_cpu_mish_gradient_is_the_derivative():
    x = torch.cat([torch.linspace(-12, 12, 97), torch.tensor([-40.0, 40.0])]).double().requires_grad_()
    assert torch.autograd.gradcheck(_MishCPU.apply, (x,))


def test_cpu_mish_saves_one_tensor():
    """Training memory as with nn.Mish: one saved tensor of x's shape (the derivative)."""
    packed = []
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        Mish()(x * 1.0)
    assert len(packed) == 1 and packed[0].shape == x.shape, [t.shape for t in packed]


@pytest.mark.parametrize("case", ["eval no_grad", "no requires_grad", "trace"])
def test_mish_is_aten_outside_cpu_training(case):
    m, x = Mish(), torch.randn(2, 4, 6, 6)
    if case == "eval no_grad":
        with torch.no_grad():
            assert torch.equal(m.eval()(x), F.mish(x))
    elif case == "no requires_grad":
        assert m(x).grad_fn is None and torch.equal(m(x), F.mish(x))
    else:  # TorchScript/ONNX see aten::mish, never a Python autograd Function
        model = nn.Sequential(nn.Conv2d(4, 4, 1), m)
        graph = str(torch.jit.trace(model, x).inlined_graph)
        assert "aten::mish" in graph and "PythonOp" not in graph


def test_mish_scripts():  # TorchScript export of a whole model scripts every module
    scripted = torch.jit.script(Mish())
    x = torch.randn(3, 5)
    assert torch.equal(scripted(x), F.mish(x))


_FAULTS = textwrap.dedent("""
    import resource, sys, torch
    if sys.argv[1] == "keep":
        from edgeyolo.train.allocator import keep_freed_memory
        assert keep_freed_memory(), "not applied"
    def step():
        a = torch.ones(12_000_000)  # 48 MB, as a training step's large activations
        b = a * 2
        del a, b
    for _ in range(4):  # the heap grows to the pattern's peak, then serves it again
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_keep_freed_memory_stops_page_faults():
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    faults = {}
    for mode in ("default", "keep"):
        done = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, env=env, check=True)
        faults[mode] = int(done.stdout.strip().splitlines()[-1])
    pages = 10 * 2 * 48_000_000 // 4096  # two 48 MB tensors a step, 4 KiB pages
    assert faults["default"] > pages // 2, faults  # glibc's default: every step's tensors faulted in anew
    # kept: the heap serves the steps again; a block or two may still land on fresh pages once
    # (where the heap's free space happened to be split), never one step in every few
    assert faults["keep"] < pages // 4, faults


def test_keep_freed_memory_leaves_a_users_choice(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000")
    calls = []
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *a: calls.append(a))
    note = allocator.keep_freed_memory()
    assert "left as set" in note and "malloc tunables" in note and not calls
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libjemalloc.so.2")
    assert "libjemalloc" in allocator.keep_freed_memory() and not calls


def test_step_report_sets_each_model_against_the_peer(tmp_path):
    """Both size-normalised speeds, each as a ratio to the peer's; a failed cell is shown, not dropped."""
    from edgeyolo.bench.studies.step_report import summarise, write_step_report
    runs = {"ours": [{"gflops": 2.0, "step_s": s, "first_step_s": 3.0} for s in (1.0, 1.2, 0.9)],
            "peer": [{"gflops": 1.0, "step_s": 0.5}], "broken": [{"failed": "ImportError: x"}]}
    ours = summarise(runs["ours"], batch=16)
    assert ours["step_s"] == 1.0 and ours["spread"] == (0.9, 1.2)
    assert ours["images_per_s_per_gflop"] == 8.0 and ours["gflop_per_s"] == 32.0
    record = {"settings": {"imgsz": 320, "batch": 16, "threads": 2, "rounds": 3, "steps": 5, "warmup": 2,
                           "model": "m"}, "load_avg": [0.1, 0.2], "date": "d", "runs": runs, "reference": "peer",
              "peer": "ok", "profile": {"conv": 0.7}}
    text = write_step_report(record, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| ours"))
    # peer: 32 images/s, 32 per GFLOP, 32 GFLOP/s; ours: 16, 8, 32
    assert "| 8.00 | 0.25 | 32.0 | 1.00 |" in row
    assert "| broken | ImportError: x |" in text and (tmp_path / "train_throughput.json").exists()


def test_step_report_pairs_rounds(tmp_path):
    """The paired figure takes each round's ratio, so a slow spell of the host in one round (the
    peer's 0.7 s) does not move it as it moves the ratio of medians."""
    from edgeyolo.bench.studies.step_report import paired_ratios, write_step_report
    runs = {"ours": [{"gflops": 2.0, "step_s": s} for s in (1.0, 1.2, 0.9)],
            "peer": [{"gflops": 1.0, "step_s": s} for s in (0.7, 0.6, 0.45)]}
    assert paired_ratios(runs["ours"], runs["peer"]) == [0.7, 0.5, 0.5]
    record = {"settings": {"imgsz": 320, "batch": 16, "threads": 2, "rounds": 3, "steps": 5, "warmup": 2,
                           "model": "m"}, "load_avg": [0.1, 0.2], "date": "d", "runs": runs, "reference": "peer",
              "peer": "ok", "profile": {}}
    text = write_step_report(record, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| ours"))
    assert "| 0.30 |" in row  # ratio of medians: 0.6 / 1.0 / 2 GFLOPs
    assert "images/s per GFLOP 0.25 of yolov8n's (rounds 0.25-0.35), forward GFLOP/s 1.00x" in text
