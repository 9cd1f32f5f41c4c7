"""Latency statistics and parity metrics."""

from __future__ import annotations

import numpy as np

from edgekit.parity import check, compare, is_classifier
from edgekit.runtimes.harness import latency_stats, time_calls


def test_time_calls_honours_runs_and_min_time():
    import time

    calls = []
    t0 = time.perf_counter()
    samples = time_calls(lambda: calls.append(1), warmup=3, runs=20, min_time_s=0.05, max_runs=10**8)
    assert len(samples) >= 20 and len(calls) == len(samples) + 3
    assert time.perf_counter() - t0 >= 0.05
    slow = time_calls(lambda: time.sleep(0.002), warmup=0, runs=5, min_time_s=0.0)
    assert len(slow) == 5 and min(slow) >= 2e6


def test_latency_stats_percentiles():
    stats = latency_stats([1_000_000] * 98 + [5_000_000, 9_000_000])
    assert stats["count"] == 100 and stats["p50"] == 1.0 and stats["max"] == 9.0
    assert stats["p99"] > stats["p90"] >= stats["p50"]


def test_parity_metrics_and_thresholds():
    ref = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]
    same = compare(ref, ref)
    assert same["top1_agreement"] == 1.0 and same["max_abs_diff"] == 0 and same["cosine"] == 1.0
    flipped = ref.copy()
    flipped[0] = [0, 1, 0, 0]
    p = compare(ref, flipped)
    assert p["top1_agreement"] == 0.8
    assert is_classifier(ref)
    assert check(same, "fp32", classifier=True) == []
    assert any("top-1" in s for s in check(p, "fp32", classifier=True))
    nan = compare(ref, ref * np.nan)
    assert check(nan, "int8", classifier=True) == ["outputs contain NaN or inf"]
