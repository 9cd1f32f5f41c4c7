"""`edgekit tune` workers on one study: throughput with 1, 2 and 3 worker processes on a real
PostgreSQL server, and PostgreSQL against SQLite for one worker.

12 trials of the `mlp` recipe on builtin:digits (1 epoch, fp32, host profile) per run; workers are
separate processes with an OUT each, as on separate machines. Throughput is trials per minute of wall
time from the first worker's start to the last one's end. On a 2-core host the scaling is bounded by
the cores (a trial trains, converts and benchmarks on them), so the figures come with the CPU count.
Info rows: no target (the scaling is the machine's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, Results

sys.path.insert(0, str(REPO / "tests"))
from servers import binaries, postgres_server  # noqa: E402

TRIALS = 12


def run(workers: int, storage: str | None, tmp: Path, study: str) -> float:
    """Seconds for ``workers`` processes to run TRIALS trials of one study."""
    procs = []
    t0 = time.perf_counter()
    for k in range(workers):
        args = [sys.executable, "-m", "edgekit", "tune", "mlp", "--data", "builtin:digits", "--trials", str(TRIALS),
                "--epochs", "1", "--quant", "fp32", "--resume", "--study", study, "--out", str(tmp / f"{study}-{k}")]
        if storage:
            args += ["--storage", storage]
        procs.append(subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"}))
    for p in procs:
        p.wait()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a worker failed ({[p.returncode for p in procs]})")
    return time.perf_counter() - t0


def main() -> bool:
    res = Results("tune_workers")
    cpus = os.cpu_count()
    print(f"tune workers on one study ({TRIALS} trials of mlp on builtin:digits, 1 epoch; {cpus} CPUs)")
    if binaries() is None:
        res.add("PostgreSQL", "not installed", "installed (make install, as root)", False)
        return res.save()
    with tempfile.TemporaryDirectory(prefix="edgekit-tune-bench-") as tmp, postgres_server() as url:
        tmp = Path(tmp)
        seconds = {}
        for n in (1, 2, 3):
            seconds[n] = run(n, url, tmp, f"pg{n}")
            res.add(f"PostgreSQL, {n} worker{'s' if n > 1 else ''}", f"{TRIALS / seconds[n] * 60:.2f} trials/min "
                    f"({seconds[n]:.0f} s; x{seconds[1] / seconds[n]:.2f} of one worker)", f"info ({cpus} CPUs)", None,
                    seconds=seconds[n])
        sqlite = run(1, None, tmp, "sqlite1")
        res.add("SQLite, 1 worker", f"{TRIALS / sqlite * 60:.2f} trials/min ({sqlite:.0f} s); PostgreSQL costs "
                f"{(seconds[1] - sqlite) / TRIALS:+.2f} s per trial", "info", None, seconds=sqlite)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
