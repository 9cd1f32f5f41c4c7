"""The demo detector end to end: mAP per artifact, int8 against float, and what NMS in the graph costs.

Trains ``edgekit train detector --data builtin:mnist-detect`` (the recipe's default epochs; ``DETECTOR_RUN=folder``
reuses a run), exports TFLite, ONNX and TF.js in fp32 and int8 with NMS inside, and benches every
artifact on its runtime against the 1,000 test scenes (``bench``'s own mAP: COCO's evaluation).

Targets:
- mAP@0.5 of the fp32 artifacts on the test split >= 0.90;
- int8 within 1 point of float mAP@0.5 in TFLite and ONNX;
- fp32 detections equal to Keras's on every runtime (same class, IoU >= 0.99, on >= 99% of them): LiteRT,
  ONNX Runtime, TF.js in Node and Chromium, and LiteRT.js and ONNX Runtime Web in Chromium and Node;
- NMS in the graph costs at most 10% of the model's latency: the fp32 file with NMS against the same
  model exported ``--nms off``, timed together in one worker (``p50_together``), per format.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from common import Results

EPOCHS = None  # the recipe's default (50)


def main() -> bool:
    from edgekit.bench.runner import run_bench
    from edgekit.exporters.pipeline import export_model
    from edgekit.runtimes.isolated import p50_together
    from edgekit.trainer.fit import train

    res = Results("detector")
    print("detector on builtin:mnist-detect (the recipe's default epochs): mAP per artifact, int8 vs float, NMS's cost")
    with tempfile.TemporaryDirectory(prefix="edgekit-det-bench-") as tmp:
        tmp = Path(tmp)
        run = Path(os.environ["DETECTOR_RUN"]) if os.environ.get("DETECTOR_RUN") else tmp / "run"
        if not (run / "model.keras").is_file():
            train("detector", "builtin:mnist-detect", run, epochs=EPOCHS, learning_rate=3e-3, verbose=0, log=lambda s: None)
        record = json.loads((run / "edgekit.json").read_text())
        res.add("Keras model: test mAP@0.5 (training's own evaluation)", f"{record['metrics']['test_map50']:.4f}", "info", None)
        export_model(run, ["tflite", "onnx", "tfjs"], ["fp32", "int8"], tmp / "export", log=lambda s: None)
        export_model(run, ["tflite", "onnx"], ["fp32"], tmp / "raw", options=_no_nms(), log=lambda s: None)
        report = run_bench([str(tmp / "export")], data="builtin:mnist-detect", samples=1000, runs=20, repeats=1,
                           log=lambda s: None)
        rows = {(r["format"], r["quant"], r["runtime"]): r for r in report["rows"] if not r.get("is_reference")}
        ref = next(r for r in report["rows"] if r.get("is_reference"))
        res.add("Keras reference: mAP@0.5, mAP@0.5:0.95", f"{ref['accuracy']:.4f}, {ref['map']:.4f}", "info", None)
        for (fmt, quant, runtime), r in sorted(rows.items()):
            if r["status"] != "ok":
                res.add(f"{fmt} {quant} on {runtime}", f"failed: {r.get('error')}", "runs", False)
                continue
            label = f"{fmt} {quant} on {runtime}: mAP@0.5 {r['accuracy']:.4f}, mAP@0.5:0.95 {r['map']:.4f}"
            if quant == "fp32":
                res.add(label, f"same detections {r['same_detections']:.4f}", ">= 0.99 and mAP@0.5 >= 0.90",
                        r["same_detections"] >= 0.99 and r["accuracy"] >= 0.90, map50=r["accuracy"], map=r["map"])
            else:
                fp32 = rows.get((fmt, "fp32", runtime))
                drop = (fp32["accuracy"] - r["accuracy"]) * 100 if fp32 else float("nan")
                judged = fmt in ("tflite", "onnx")
                res.add(label, f"{drop:+.2f} points below fp32", "<= 1 point" if judged else "info",
                        drop <= 1.0 if judged else None, map50=r["accuracy"], map=r["map"])
        # the web engines too: LiteRT.js and ONNX Runtime Web in Chromium, ONNX Runtime Web in Node
        web = run_bench([str(tmp / "export" / "model_fp32.tflite"), str(tmp / "export" / "model_fp32.onnx")],
                        data="builtin:mnist-detect", samples=200, runs=10, repeats=1,
                        runtimes=["litert-browser", "ort-browser", "ort-web-node"], log=lambda s: None)
        for r in web["rows"]:
            if r.get("is_reference"):
                continue
            ok = r["status"] == "ok" and r.get("same_detections", 0) >= 0.99
            res.add(f"{r['name']} on {r['runtime']} (200 scenes)",
                    f"same detections {r.get('same_detections', 0):.4f}" if r["status"] == "ok" else r.get("error"),
                    ">= 0.99", ok)
        from edgekit.data import load_data

        x = load_data("builtin:mnist-detect").prepared("test", limit=1)
        for fmt, runtime, name in (("tflite", "litert", "model_fp32.tflite"), ("onnx", "onnxruntime", "model_fp32.onnx")):
            p50 = p50_together(runtime, {"nms": tmp / "export" / name, "raw": tmp / "raw" / name}, x, rounds=20)
            cost = p50["nms"] / p50["raw"] - 1
            res.add(f"{fmt} fp32 on {runtime}: with NMS {p50['nms'] * 1e3:.1f} us, without {p50['raw'] * 1e3:.1f} us",
                    f"NMS costs {cost * 100:+.1f}%", "<= 10%", cost <= 0.10, with_nms_ms=p50["nms"], without_ms=p50["raw"])
    return res.save()


def _no_nms():
    from edgekit.exporters.base import ExportOptions

    return ExportOptions(nms="off")


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
