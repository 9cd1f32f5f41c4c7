"""Shared helpers for benchmarks: fixture paths, a result table, pass/fail against targets."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGEKIT_FIXTURES", REPO.parent / "shared" / "fixtures" / "mlperf-tiny"))
RESULTS = REPO / "runs" / "bench"
sys.path.insert(0, str(REPO))


def need_fixture(res: Results, name: str) -> Path | None:
    """The MLPerf Tiny fixture ``name``, or None after a FAIL row saying it is missing: a benchmark
    whose rows silently disappear would pass on what it never measured."""
    path = FIXTURES / name
    if path.exists():
        return path
    res.add(f"fixture {name}", f"not found in {FIXTURES}", "present (set EDGEKIT_FIXTURES)", False)
    return None


def need_chromium(res: Results) -> bool:
    """Whether Chromium is here; if not, a FAIL row saying so (the browser rows would be missing)."""
    from edgekit.errors import MissingDependency
    from edgekit.runtimes.js_env import chromium_binary

    try:
        chromium_binary()
        return True
    except MissingDependency as e:
        res.add("Chromium", f"not available: {e}", "installed (make install, as root)", False)
        return False


def median(xs):
    return statistics.median(xs)


class Results:
    """Collects (name, value, target, passed) rows; prints them and writes JSON with the machine."""

    def __init__(self, title: str):
        self.title, self.rows = title, []

    def add(self, name: str, value: str, target: str, passed: bool | None, **data):
        passed = None if passed is None else bool(passed)  # NumPy booleans too
        self.rows.append({"name": name, "value": value, "target": target, "passed": passed, **data})
        mark = {True: "PASS", False: "FAIL", None: "info"}[passed]
        print(f"  [{mark}] {name}: {value}  (target: {target})", flush=True)

    def save(self) -> bool:
        from edgekit.reports.machine import machine_info

        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{self.title}.json"
        out.write_text(json.dumps({"machine": machine_info(), "rows": self.rows}, indent=2))
        return all(r["passed"] is not False for r in self.rows)


def within_band(res: Results, label: str, ours_ms: float, raw_ms: float, *, pct: float, **data) -> bool:
    """edgekit's loop against a raw loop doing the same work: within ``pct`` percent either way.

    Two-sided on purpose: a harness that under-measures (skips work, times the wrong thing) is as
    wrong as one that adds overhead, and must fail too."""
    diff = (ours_ms / raw_ms - 1) * 100
    ok = abs(diff) <= pct
    res.add(f"{label}: p50 {ours_ms * 1000:.2f} us vs {raw_ms * 1000:.2f} us", f"{diff:+.2f}%", f"within +/-{pct:g}%",
            ok, raw_ms=raw_ms, edgekit_ms=ours_ms)
    return ok


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``successes / n``.

    >>> lo, hi = wilson(98, 100); round(lo, 3), round(hi, 3)
    (0.93, 0.994)
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return centre - half, centre + half
