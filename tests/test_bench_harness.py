"""The bench timing core: statistics on a fake clock, sync placement, and what the harness itself
adds to an interval (counted on an injected clock; its wall-clock cost is a benchmark:
benchmarks/studies/harness_overhead.py)."""
from __future__ import annotations

import mmap

import numpy as np
import pytest

from edgeyolo.bench.harness import peak_rss_mb, reset_peak_rss
from edgeyolo.runtime.latency import ClockTimer, measure, percentile, summarize


class FakeClock:
    """Time moves only when the model 'runs': each call of ``step`` advances by the next duration."""

    def __init__(self, durations_s: list[float]):
        self.t = 100.0
        self.durations = list(durations_s)
        self.calls = 0

    def __call__(self) -> float:
        return self.t

    def step(self) -> None:
        self.t += self.durations[self.calls % len(self.durations)]
        self.calls += 1


def test_statistics_on_fake_clock():
    durs = [i / 1000 for i in range(1, 101)]  # 1..100 ms, one per timed iteration
    clk = FakeClock([0.5] * 3 + durs)  # 3 warm-up calls of 500 ms must not count
    st = measure(clk.step, warmup=3, iters=100, batch=4, clock=clk, timer=ClockTimer(clk))
    ms = np.arange(1, 101, dtype=float)
    assert st.iters == 100 and st.warmup == 3 and st.batch == 4 and st.mode == "model-only"
    assert st.p50_ms == pytest.approx(np.percentile(ms, 50))
    assert st.p90_ms == pytest.approx(np.percentile(ms, 90))
    assert st.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert st.mean_ms == pytest.approx(50.5)
    assert st.std_ms == pytest.approx(np.std(ms, ddof=1), rel=1e-4)
    assert (st.min_ms, st.max_ms) == (1.0, 100.0)
    assert st.fps == pytest.approx(4 * 1000 / 50.5, rel=1e-4)  # throughput = batch / mean
    assert st.wall_s == pytest.approx(ms.sum() / 1000)


def test_constant_latency_and_single_iteration():
    clk = FakeClock([0.010])
    st = measure(clk.step, 0, 7, clock=clk, timer=ClockTimer(clk), mode="end-to-end")
    assert st.p50_ms == st.p99_ms == st.mean_ms == pytest.approx(10.0) and st.std_ms == pytest.approx(0.0, abs=1e-9)
    assert st.mode == "end-to-end" and st.fps == pytest.approx(100.0)
    one = summarize([0.002], 1, "model-only", 0, 0.002)
    assert one.p50_ms == one.p99_ms == 2.0 and one.std_ms == 0.0


def test_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 37):
        v = sorted(rng.random(n).tolist())
        for q in (0, 50, 90, 99, 100):
            assert percentile(v, q) == pytest.approx(np.percentile(v, q))


def test_sync_brackets_each_iteration():
    events: list[str] = []
    clk = FakeClock([0.001])

    def fn() -> None:
        events.append("run")
        clk.step()

    measure(fn, warmup=2, iters=3, clock=clk, timer=ClockTimer(clk, sync=lambda: events.append("sync")))
    assert events == ["run", "run"] + ["sync", "run", "sync"] * 3  # warm-up is not synced or timed


def test_start_stop_hooks_bracket_only_the_timed_loop():
    events: list[str] = []
    measure(lambda: events.append("run"), 1, 2, on_start=lambda: events.append("start"), on_stop=lambda: events.append("stop"))
    assert events == ["run", "start", "run", "run", "stop"]


@pytest.mark.parametrize("kw, msg", [({"warmup": -1, "iters": 1}, "--warmup"), ({"warmup": 0, "iters": 0}, "--iters")])
def test_bad_counts(kw, msg):
    with pytest.raises(ValueError, match=msg):
        measure(lambda: None, **kw)
    with pytest.raises(ValueError, match="mode"):
        summarize([0.1], 1, "sometimes", 0, 0.1)


class CostClock(FakeClock):
    """A FakeClock whose every read also costs ``read_s``, so whatever the harness does with the
    clock inside an interval shows up in the statistics, to the exact tick."""

    def __init__(self, durations_s: list[float], read_s: float):
        super().__init__(durations_s)
        self.read_s, self.reads = read_s, 0

    def __call__(self) -> float:
        self.reads += 1
        now = self.t
        self.t += self.read_s
        return now


def test_harness_adds_one_clock_read_per_interval():
    # With a no-op model, all an interval can hold is the harness itself: exactly one clock read
    # (the start read's cost) and nothing else. How long a read takes on a real machine, and so
    # whether it stays under 1% of a 1 ms model, is measured by benchmarks/studies/harness_overhead.py.
    clk = CostClock([0.0], read_s=1e-4)  # 0.1 ms: wall_s is kept to 0.1 ms
    st = measure(clk.step, warmup=100, iters=2000, clock=clk, timer=ClockTimer(clk))
    assert st.min_ms == st.max_ms == pytest.approx(0.1)
    # Around the timed loop: one read before it and one after it, two per iteration, none in warm-up.
    assert clk.reads == 2 + 2 * 2000
    assert st.wall_s == pytest.approx((1 + 2 * 2000) * 1e-4)


def test_model_time_measured_exactly_and_p50_ignores_preemption():
    # A 2 ms model, 3 of its 50 timed calls preempted for 40 ms more, plus a 1 us clock read: every
    # interval is the model's time plus one read, and p50 (what the tables report) stays at the
    # model's 2 ms while the mean and max carry the preemptions.
    durs = [0.002] * 50
    for i in (7, 23, 41):
        durs[i] += 0.040
    clk = CostClock([0.5, 0.5] + durs, read_s=1e-6)
    st = measure(clk.step, 2, 50, clock=clk, timer=ClockTimer(clk))
    assert st.p50_ms == pytest.approx(2.001) and st.min_ms == pytest.approx(2.001)
    assert st.max_ms == pytest.approx(42.001)
    assert st.mean_ms == pytest.approx(2.001 + 3 * 40 / 50)


def test_peak_rss():
    assert peak_rss_mb("Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n") == 200.0
    reset_peak_rss()
    before = peak_rss_mb()
    # 40 MiB of fresh anonymous pages, each touched: a numpy array could be carved from heap memory
    # that earlier tests freed but glibc kept resident, and then the peak would not move
    block = mmap.mmap(-1, 40 * 2**20)
    for off in range(0, len(block), mmap.PAGESIZE):
        block[off] = 1
    assert peak_rss_mb() >= before + 30 or not reset_peak_rss()
    block.close()
