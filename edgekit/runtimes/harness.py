"""Latency measurement: warm-up, timed runs (a count and a minimum time), and statistics.

The vocabulary is LiteRT ``benchmark_model``'s: init time, first inference, then the
distribution of warm runs.

Example:
    >>> samples = time_calls(lambda: None, warmup=2, runs=50, min_time_s=0.0)
    >>> stats = latency_stats(samples)
    >>> stats["count"]
    50
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def time_calls(
    fn: Callable[[], Any],
    *,
    warmup: int = 10,
    runs: int = 100,
    min_time_s: float = 0.5,
    max_time_s: float = 30.0,
    max_runs: int = 100_000,
) -> list[int]:
    """Call ``fn`` ``warmup`` times, then time each call (ns) until both ``runs`` calls and
    ``min_time_s`` seconds are done (capped by ``max_time_s`` and ``max_runs``)."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    start = clock()
    min_ns, max_ns = int(min_time_s * 1e9), int(max_time_s * 1e9)
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        append(t1 - t0)
        n = len(samples)
        if n >= runs and t1 - start >= min_ns:
            break
        if n >= max_runs or (t1 - start >= max_ns and n >= 1):
            break
    return samples


def latency_stats(samples_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/mean/std/min/max in milliseconds, count, and coefficient of variation."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        return {"count": 0}
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    r = lambda v: float(f"{v:.6g}")  # noqa: E731
    return {
        "count": int(a.size),
        "p50": r(np.percentile(a, 50)),
        "p90": r(np.percentile(a, 90)),
        "p99": r(np.percentile(a, 99)),
        "mean": r(mean),
        "std": r(std),
        "min": r(a.min()),
        "max": r(a.max()),
        "cv": r(std / mean) if mean > 0 and not math.isnan(std) else 0.0,
    }


def latency_histogram(samples_ns: list[int], bins: int = 40) -> dict[str, list[float]]:
    """Counts of timed runs in ``bins`` equal bins (ms) from the 0.5th to the 99.5th percentile;
    runs outside land in the end bins. For the HTML report's histograms."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        return {"edges_ms": [], "counts": []}
    lo, hi = np.percentile(a, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1e-6
    counts, edges = np.histogram(np.clip(a, lo, hi), bins=bins, range=(lo, hi))
    return {"edges_ms": [float(f"{e:.6g}") for e in edges], "counts": [int(c) for c in counts]}
