"""``edgekit --help`` wall time against ``python -c pass`` (interpreter start-up), medians of 15.

Target: --help within 1.0 s of bare interpreter start-up (it imports typer and rich only).
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import Results, median


def wall(cmd, n=15):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> bool:
    res = Results("cli_startup")
    print("CLI start-up")
    base = wall([sys.executable, "-c", "pass"])
    helpt = wall([sys.executable, "-m", "edgekit", "--help"])
    ver = wall([sys.executable, "-m", "edgekit", "--version"])
    res.add(f"edgekit --help {helpt * 1000:.0f} ms vs python -c pass {base * 1000:.0f} ms",
            f"{helpt / base:.1f}x, +{(helpt - base) * 1000:.0f} ms", "<= +1000 ms", helpt - base <= 1.0)
    res.add("edgekit --version", f"{ver * 1000:.0f} ms", "informational", None)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
