"""Harness overhead: edgekit's LiteRT timing loop against a raw ``interpreter.invoke()`` loop,
on the same model in the same process, repeats interleaved; plus the cost of running in the
isolated worker process that ``edgekit bench`` uses.

Targets, two-sided (a loop that under-measures fails as surely as one that adds overhead):
within 5% of the raw loop on MLPerf Tiny ResNet-8; within 2 us per call on ad01_int8 (a 5 us
model, where 5% is below the clock's resolution); the isolated worker within 3% of in-process.
"""

from __future__ import annotations

import time

import numpy as np
from common import FIXTURES, Results, median, within_band

from edgekit.runtimes.harness import latency_stats, time_calls
from edgekit.runtimes.isolated import run_isolated
from edgekit.runtimes.litert import LiteRTSession

REPEATS = 7


def raw_loop(path, x, runs, warmup=20):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    if d["dtype"] != np.float32:
        s, z = d["quantization"]
        x = np.clip(np.round(x / s + z), -128, 127).astype(d["dtype"])
    it.set_tensor(d["index"], x)
    for _ in range(warmup):
        it.invoke()
    clock, samples = time.perf_counter_ns, []
    for _ in range(runs):
        t0 = clock()
        it.invoke()
        samples.append(clock() - t0)
    return samples


def edgekit_loop(path, x, runs):
    session = LiteRTSession(str(path), threads=1)
    return time_calls(session.bind(x), warmup=20, runs=runs, min_time_s=0.0)


def measure(res: Results, name: str, runs: int, target_pct: float | None, target_us: float | None):
    path = FIXTURES / name
    shape = LiteRTSession(str(path)).interpreter.get_input_details()[0]["shape"]
    x = np.random.default_rng(0).uniform(0, 1, size=shape).astype(np.float32)
    raw, ek = [], []
    for _ in range(REPEATS):  # interleaved, so drift hits both sides alike
        raw.append(latency_stats(raw_loop(path, x, runs))["p50"])
        ek.append(latency_stats(edgekit_loop(path, x, runs))["p50"])
    r, e = median(raw), median(ek)
    pct, delta_us = (e / r - 1) * 100, (e - r) * 1000
    if target_pct is not None:
        within_band(res, f"{name}: edgekit loop vs raw invoke", e, r, pct=target_pct)
    if target_us is not None:
        res.add(f"{name}: edgekit loop minus raw invoke per call ({pct:+.1f}%)", f"{delta_us:+.3f} us",
                f"within +/-{target_us} us", abs(delta_us) <= target_us, raw_ms=r, edgekit_ms=e)
    iso = run_isolated("litert", path, x, threads=1, timing={"warmup": 20, "runs": runs * 3, "min_time_s": 0.5},
                       want_outputs=False)
    child = iso.reply["latency_ms"]["p50"]
    pct_iso = (child / r - 1) * 100
    res.add(f"{name}: isolated worker vs in-process raw (p50 {child * 1000:.2f} us)", f"{pct_iso:+.2f}%",
            "within 3%", abs(pct_iso) <= 3.0, child_ms=child)


def main() -> bool:
    res = Results("harness_overhead")
    print("harness overhead (1 thread, batch 1, median of 7 interleaved repeats)")
    measure(res, "pretrainedResnet.tflite", runs=300, target_pct=5.0, target_us=None)
    measure(res, "ad01_int8.tflite", runs=3000, target_pct=None, target_us=2.0)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
