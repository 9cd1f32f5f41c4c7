"""Microcontroller estimates held to published results: the `cortex-m4f` profile against MLPerf Tiny.

The profile's estimate is calibrated on one network alone, MLPerf Tiny's visual wake words
(MobileNet v1 0.25 at 96x96, built here with random weights, int8), whose published median on the
NUCLEO-L4R5ZI is 601 ms. The other three MLPerf Tiny reference models (the authors' own int8
files, the fixtures) are then benchmarked on TFLite Micro's kernels here and their estimates
compared with the board's published medians, which the estimate never saw: image classification
(ResNet-8) 704 ms, keyword spotting (DS-CNN) 182 ms, anomaly detection (autoencoder) 10.05 ms
(MLPerf Tiny v0.5 closed, reference submission: mlcommons/tiny_results_v0.5,
closed/reference/results/Nucleo-L4R5ZI/*/performance/results.txt). The VWW fixture itself is
estimated too: the trained network against the random-weight one the factor came from.

Target: every estimate within +-30% of the published median; a miss is a FAIL row that says by
how much (the estimate assumes the board is as much slower than this host's TFLite Micro reference
kernels on every model as on VWW; CMSIS-NN's speed-up differs by operator mix). Each artifact is
timed against the reference in alternating pairs in one process (edgekit.bench.paired), so the
ratio does not depend on how busy the host was.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import Results, need_fixture

from edgekit.bench.runner import run_bench
from edgekit.device_profiles import load_profile

PUBLISHED_MS = {  # MLPerf Tiny v0.5, NUCLEO-L4R5ZI, TFLite Micro + CMSIS-NN, median latency
    "pretrainedResnet_quant.tflite": ("image classification (ResNet-8)", 704.0),
    "kws_ref_model.tflite": ("keyword spotting (DS-CNN)", 182.0),
    "ad01_int8.tflite": ("anomaly detection (autoencoder)", 10.05),
    "vww_96_int8.tflite": ("visual wake words (the trained network)", 601.0),
}
BAND = 0.30


def main() -> bool:
    res = Results("mcu_estimates")
    print("cortex-m4f estimates (calibrated on the VWW network alone) vs MLPerf Tiny v0.5 published medians")
    paths = [p for p in (need_fixture(res, name) for name in PUBLISHED_MS) if p is not None]
    if not paths:
        return res.save()
    with tempfile.TemporaryDirectory(prefix="edgekit-mcu-") as tmp:
        report = run_bench([str(p) for p in paths], profiles=[load_profile("cortex-m4f")], log=lambda s: None)
        (Path(tmp) / "bench.json").write_text(json.dumps(report, default=str))
    for row in report["rows"]:
        name = Path(row["artifact"]).name
        what, published = PUBLISHED_MS[name]
        est = (row.get("estimate") or {}).get("latency_ms")
        arena = (row.get("arena") or {}).get("smallest_bytes")
        if est is None:
            res.add(f"{what}: estimate", f"none ({row.get('error') or (row.get('estimate') or {}).get('error')})",
                    f"within +-{BAND:.0%} of {published:g} ms", False)
            continue
        err = est / published - 1
        paired = row["estimate"].get("paired") or {}
        res.add(f"{what}: estimated {est:.4g} ms (time ratio to the VWW reference on TFLite Micro here "
                f"{paired.get('ratio', float('nan')):.3f}, median of {paired.get('pairs')} alternating pairs, x 601 ms), "
                f"arena {arena} B, verdict {row.get('verdict')}",
                f"{err:+.0%} of the published {published:g} ms", f"within +-{BAND:.0%}", abs(err) <= BAND,
                estimate_ms=est, published_ms=published, error=err, arena_bytes=arena)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
