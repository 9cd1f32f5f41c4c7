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


def median(xs):
    return statistics.median(xs)


class Results:
    """Collects (name, value, target, passed) rows; prints them and writes JSON with the machine."""

    def __init__(self, title: str):
        self.title, self.rows = title, []

    def add(self, name: str, value: str, target: str, passed: bool | None, **data):
        self.rows.append({"name": name, "value": value, "target": target, "passed": passed, **data})
        mark = {True: "PASS", False: "FAIL", None: "info"}[passed]
        print(f"  [{mark}] {name}: {value}  (target: {target})", flush=True)

    def save(self) -> bool:
        from edgekit.reports.machine import machine_info

        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{self.title}.json"
        out.write_text(json.dumps({"machine": machine_info(), "rows": self.rows}, indent=2))
        return all(r["passed"] is not False for r in self.rows)
