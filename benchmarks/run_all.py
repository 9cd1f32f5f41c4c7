"""Run every benchmark (``make bench``); exits 1 if a target is missed. Results: runs/bench/*.json."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import agent_overhead  # noqa: E402
import cli_startup  # noqa: E402
import coverage  # noqa: E402
import detector  # noqa: E402
import harness_overhead  # noqa: E402
import int8_digits  # noqa: E402
import int8_repair  # noqa: E402
import litert_postprocess  # noqa: E402
import mcu_estimates  # noqa: E402
import mlperf_vs_authors  # noqa: E402
import multi_io_export  # noqa: E402
import multi_io_overhead  # noqa: E402
import onnx_targets  # noqa: E402
import ops_profile  # noqa: E402
import profile_targets  # noqa: E402
import published_detector  # noqa: E402
import recipes  # noqa: E402
import recurrent  # noqa: E402
import tfjs_targets  # noqa: E402
import train_throughput  # noqa: E402
import tune_search  # noqa: E402
import tune_workers  # noqa: E402
import web_engines  # noqa: E402


def main() -> int:
    ok = True
    for bench in (cli_startup, harness_overhead, int8_digits, int8_repair, onnx_targets, tfjs_targets, profile_targets, mlperf_vs_authors,
                  recurrent, multi_io_overhead, multi_io_export, train_throughput, recipes, coverage, tune_search, web_engines, agent_overhead,
                  mcu_estimates, ops_profile, tune_workers, detector, published_detector, litert_postprocess):
        ok = bench.main() and ok
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
