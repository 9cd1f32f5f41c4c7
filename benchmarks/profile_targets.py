"""Device profiles: the estimate against a published figure it was not given, and measurement stability.

Targets:
- MobileNetV2 1.0 224 fp32 on raspberry-pi-4: estimate within +-30% of XNNPACK's 44 ms
  (the estimate is scaled from MobileNet v1's published 75 ms, never from this figure);
  informational: the same on mobile-cpu against the Pixel 2's published 18 ms;
- stability: the coefficient of variation of p50 over 5 interleaved repeats on MLPerf Tiny's
  ResNet-8 (edgekit bench) against 5 naive single loops (a fresh process each, no warm-up,
  100 runs, one after the other): edgekit's CV at most 5%.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Results, need_fixture

from edgekit.bench.runner import run_bench
from edgekit.exporters.pipeline import export_model

NAIVE = """
import sys, time, numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1], num_threads=1); it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
t = []
for _ in range(100):
    a = time.perf_counter(); it.invoke(); t.append(time.perf_counter() - a)
print(np.median(t) * 1e3)
"""


def calibration_point(res: Results) -> None:
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None).save(tmp / "mnv2.keras")
        export_model(tmp / "mnv2.keras", ["tflite"], ["fp32"], tmp / "exp", parity_samples=4, log=lambda s: None)
        report = run_bench([str(tmp / "exp")], profiles="raspberry-pi-4,mobile-cpu", reference=False, repeats=3,
                           runs=20, min_time_s=0.5)
    profiles = sorted(r["profile"] for r in report["rows"] if r.get("estimate"))
    if profiles != ["mobile-cpu", "raspberry-pi-4"]:  # a row that failed or went missing is a miss, not a pass
        res.add("MobileNetV2 estimate rows", ", ".join(profiles) or "none", "raspberry-pi-4 and mobile-cpu", False,
                errors=[r.get("error") for r in report["rows"]])
    for r in report["rows"]:
        if not r.get("estimate"):
            continue
        e = r["estimate"]
        published = {"raspberry-pi-4": 44.0, "mobile-cpu": 18.0}[r["profile"]]
        err = (e["latency_ms"] / published - 1) * 100
        ref = e["reference"]
        res.add(f"MobileNetV2 fp32 on {r['profile']}: host {r['latency_ms']['p50']:.2f} ms ({r['threads']} threads) x factor "
                f"{e['factor']:.3g} ({ref['workload']} {ref['device_ms']:g} ms on the device / {ref['host_ms']:.3g} ms here)",
                f"~{e['latency_ms']:.1f} ms vs published {published:g} ms ({err:+.0f}%)",
                "within +-30%" if r["profile"] == "raspberry-pi-4" else "informational",
                abs(err) <= 30 if r["profile"] == "raspberry-pi-4" else None, estimate_ms=e["latency_ms"])


def stability(res: Results) -> None:
    path = need_fixture(res, "pretrainedResnet.tflite")
    if path is None:
        return
    report = run_bench([str(path)], repeats=5, runs=100, min_time_s=1.0, reference=False)
    row = report["rows"][0]
    ours = row["repeats"]["p50_cv"] * 100
    naive = [float(subprocess.run([sys.executable, "-c", NAIVE, str(path)], capture_output=True, text=True,
                                  check=True).stdout.strip().splitlines()[-1]) for _ in range(5)]
    naive_cv = statistics.stdev(naive) / statistics.mean(naive) * 100
    res.add("ResNet-8 p50 CV over 5 interleaved repeats (edgekit bench)",
            f"{ours:.2f}% (p50s {', '.join(f'{v * 1e3:.0f}' for v in row['repeats']['p50_ms'])} us)", "<= 5%", ours <= 5.0)
    res.add("ResNet-8 p50 CV over 5 naive single loops (no warm-up, 100 runs)",
            f"{naive_cv:.2f}% (p50s {', '.join(f'{v * 1e3:.0f}' for v in naive)} us)", "informational", None)


def main() -> bool:
    res = Results("profile_targets")
    print("device profiles")
    calibration_point(res)
    stability(res)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
