"""A microcontroller estimate's ratio, timed in pairs on TFLite Micro.

The artifact and the profile's reference workload are loaded in one child process and invoked
alternately; the median of the per-pair time ratios is the artifact's cost in units of the
reference, and the estimate is that ratio times the reference's published device latency.

Why pairs: on a shared host, TFLite Micro's reference kernels run at two speeds (the MLPerf Tiny
KWS at 3.7 or 6.4 ms per invoke, measured) as the machine's other tenants come and go. Timed in
separate processes, as the other profiles' references are, the artifact and the reference could
land on different speeds, and two bench runs gave estimates 2x apart. Alternating invokes see
the same machine.

Example:
    >>> paired_ratio("kws_ref_model.tflite", "vww_int8.tflite", x_kws, x_vww)   # doctest: +SKIP
    {'ratio': 0.35, 'pairs': 40, 'artifact_ms': 3.3, 'reference_ms': 9.4}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgekit.errors import RuntimeFailure
from edgekit.io_spec import load_batch, save_batch

PAIRS = 40
MAX_SECONDS = 4.0  # fewer pairs for slow models (at least 5)


def paired_ratio(artifact: str | Path, reference: str | Path, feeds_artifact: dict, feeds_reference: dict, *,
                 pairs: int = PAIRS, timeout_s: float = 300) -> dict:
    """Time ``artifact`` against ``reference`` in alternation on TFLite Micro, in a child process."""
    with tempfile.TemporaryDirectory(prefix="edgekit-paired-") as tmp:
        save_batch(Path(tmp) / "a", feeds_artifact)
        save_batch(Path(tmp) / "r", feeds_reference)
        r = subprocess.run([sys.executable, "-m", "edgekit.bench.paired", str(artifact), str(reference), tmp, str(pairs)],
                           capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise RuntimeFailure(f"timing {Path(artifact).name} against {Path(reference).name} on TFLite Micro failed: {last}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _time_pairs(artifact: str, reference: str, folder: Path, pairs: int) -> dict:
    from edgekit.runtimes.tflm import TFLMSession

    run_a = TFLMSession(artifact).bind(load_batch(folder / "a"))
    run_r = TFLMSession(reference).bind(load_batch(folder / "r"))
    for _ in range(3):
        run_a()
        run_r()
    clock = time.perf_counter
    times_a, times_r, start = [], [], clock()
    while len(times_a) < pairs and (len(times_a) < 5 or clock() - start < MAX_SECONDS):
        t0 = clock()
        run_a()
        t1 = clock()
        run_r()
        t2 = clock()
        times_a.append(t1 - t0)
        times_r.append(t2 - t1)
    a, r = np.array(times_a), np.array(times_r)
    return {"ratio": float(np.median(a / r)), "pairs": len(a), "artifact_ms": float(np.median(a) * 1e3),
            "reference_ms": float(np.median(r) * 1e3)}


if __name__ == "__main__":
    print(json.dumps(_time_pairs(sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))))
