"""Harness overhead: edgekit's LiteRT timing loop against a raw ``interpreter.invoke()`` loop,
on the same model in the same process, repeats interleaved; plus the cost of running in the
isolated worker process that ``edgekit bench`` uses.

Targets, two-sided (a loop that under-measures fails as surely as one that adds overhead):
within 5% of the raw loop on MLPerf Tiny ResNet-8 and on ad01_int8 (a 5 us model); the isolated
worker within 3% of in-process (each side the best of 7 interleaved repeats' p50s).

History: the isolated worker was timed once, after the 7 in-process repeats, and compared with
their median; on ad01_int8 that one measurement missed by +17%, +3.1% and -24.6% in three runs
(a 4 us model on a shared host), so it is now one of the interleaved repeats. ad01_int8 was held to +/-2 us per call, which on a 5 us model is +/-40%. The median of
7 x 3,000 ``perf_counter_ns`` samples resolves far better than that (the clock reads in tens of
nanoseconds): seven runs measured -0.29%, +1.66%, +0.22%, -1.75%, +0.88%, 0.00% and 0.00% (7
interleaved repeats each), so the same relative band as ResNet-8's is used now, both ways. (One
more run, -18%, had other processes on the machine: the raw loop's repeats were slow, not edgekit's.)
The interleaved isolated worker measured -3.6% to +0.5% (ResNet-8) and -2.3% to +3.5% (ad01) in
five runs: the 3% band was missed twice, by 0.6% and 0.5%, and is kept. Each side was the median of
its repeats until a run right after heavy work missed by +8.5% / +8.9% / +14.4% (1 run in 4): a
shared machine's slow spells only ever slow a repeat down, so each side is now its fastest repeat,
the rule edgekit's own comparisons use (:func:`edgekit.runtimes.isolated.p50_together`).
"""

from __future__ import annotations

import time

import numpy as np
from common import Results, need_fixture, within_band

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


def measure(res: Results, name: str, runs: int, target_pct: float):
    path = need_fixture(res, name)
    if path is None:
        return
    shape = LiteRTSession(str(path)).interpreter.get_input_details()[0]["shape"]
    x = np.random.default_rng(0).uniform(0, 1, size=shape).astype(np.float32)
    raw, ek, iso = [], [], []
    for _ in range(REPEATS):  # interleaved, so drift hits every side alike
        raw.append(latency_stats(raw_loop(path, x, runs))["p50"])
        ek.append(latency_stats(edgekit_loop(path, x, runs))["p50"])
        child = run_isolated("litert", path, x, threads=1, timing={"warmup": 20, "runs": runs, "min_time_s": 0.0},
                             want_outputs=False)
        iso.append(child.reply["latency_ms"]["p50"])
    r, e, c = min(raw), min(ek), min(iso)  # the fastest repeat of each side: slow spells only ever slow one
    delta_us = (e - r) * 1000
    within_band(res, f"{name}: edgekit loop vs raw invoke ({delta_us:+.3f} us per call)", e, r, pct=target_pct,
                raw_repeats_ms=raw, edgekit_repeats_ms=ek)
    within_band(res, f"{name}: isolated worker vs in-process raw", c, r, pct=3.0, isolated_repeats_ms=iso)


def main() -> bool:
    res = Results("harness_overhead")
    print("harness overhead (1 thread, batch 1, best of 7 interleaved repeats)")
    measure(res, "pretrainedResnet.tflite", runs=300, target_pct=5.0)
    measure(res, "ad01_int8.tflite", runs=3000, target_pct=5.0)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
