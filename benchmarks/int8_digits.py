"""int8 export of the digits CNN: accuracy against the Keras model and size against fp32.

Targets: int8 accuracy within 1 point of Keras; int8 file at most 0.30x the fp32 file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import Results

from edgekit.bench.runner import run_bench
from edgekit.exporters.pipeline import export_model
from edgekit.trainer.fit import train


def main() -> bool:
    res = Results("int8_digits")
    print("int8 export of the digits CNN")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        train("cnn", "builtin:digits", run, epochs=30, verbose=0, log=lambda s: None)
        export_model(run, ["tflite"], ["fp32", "int8"], Path(tmp) / "exp", log=lambda s: None)
        report = run_bench([str(Path(tmp) / "exp")], runs=200, min_time_s=0.5)
    rows = {(r["runtime"], r["quant"]): r for r in report["rows"]}
    keras, fp32, int8 = rows[("keras", "fp32")], rows[("litert", "fp32")], rows[("litert", "int8")]
    drop = (keras["accuracy"] - int8["accuracy"]) * 100
    res.add(f"accuracy keras {keras['accuracy']:.4f}, int8 {int8['accuracy']:.4f}", f"{drop:+.2f} points",
            "<= 1 point drop", drop <= 1.0)
    ratio = int8["size_bytes"] / fp32["size_bytes"]
    res.add(f"size int8 {int8['size_bytes']} B vs fp32 {fp32['size_bytes']} B", f"{ratio:.3f}x", "<= 0.30x", ratio <= 0.30)
    res.add("int8 top-1 agreement with Keras", f"{int8['agreement']:.4f}", "informational", None)
    res.add("p50 latency keras / fp32 / int8 (ms)",
            f"{keras['latency_ms']['p50']:.4f} / {fp32['latency_ms']['p50']:.4f} / {int8['latency_ms']['p50']:.4f}",
            "informational", None)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
