"""Latency statistics and parity metrics."""

from __future__ import annotations

import numpy as np
import pytest

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


@pytest.mark.parametrize("child", ["edgekit.exporters.tflite_worker", "edgekit.runtimes.worker",
                                   "edgekit.exporters.supervised"])
def test_every_child_process_dies_with_the_process_that_started_it(tmp_path, child):
    """A parent killed with SIGKILL (a cancelled CI job, an agent stopped) takes its children along:
    the int8 conversion child, the runtime worker and the export child. Each is started here with
    ``child_env()`` by a parent that is then killed at once; the child must be gone within 2 s,
    where on its own it would first import TensorFlow (several seconds) and only then find its
    request unusable."""
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "request.json").write_text('{"saved_model": "missing", "runtime": "litert"}')
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys\n"
        "from edgekit.runtimes.process_tree import child_env\n"
        f"p = subprocess.Popen([sys.executable, '-m', '{child}', sys.argv[1]], env=child_env(),"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "p.wait()\n"), str(tmp_path / "request.json")], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"{child} outlived its killed parent by 2 s")
