"""Per-operator profiles (``bench --ops``): do the operators add up to the model, and what does profiling cost?

For the demo CNN (the `make demo` recipe on builtin:mnist, 2 epochs) in TFLite, ONNX and TF.js, fp32
and int8, and for MLPerf Tiny's ResNet-8 (the authors' fp32 and int8 .tflite), on every runtime
that profiles: LiteRT, ONNX Runtime, TF.js in Node, ONNX Runtime Web in Node.

Targets: the operators' times add up to within 15% of the whole model's p50 timed plainly in the
same worker around the profile (``coverage`` 0.85-1.15) on every runtime that profiles. Reported
beside it (info): profiling's own cost, a run with the profiler on (the runtime's own whole-run
event: LiteRT's ``Invoke``, ONNX Runtime's ``model_run``) over a plain run. ResNet-8 runs as the
authors' .tflite files and as edgekit's ONNX and TF.js exports of their Keras model. A profile never feeds a bench row's latency: it runs in a worker
of its own after every timing (edgekit.bench.runner._profile_rows).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import Results, need_fixture

RUNTIMES = {"tflite": ("litert",), "onnx": ("onnxruntime", "ort-web-node"), "tfjs": ("tfjs-node",)}
JUDGED = {"litert", "onnxruntime", "ort-web-node", "tfjs-node"}


def demo_export(tmp: Path) -> list[Path]:
    from edgekit.exporters.pipeline import export_model
    from edgekit.trainer.fit import train

    train("cnn", "builtin:mnist", tmp / "run", epochs=2, verbose=0, log=lambda s: None)
    export_model(tmp / "run", ["tflite", "onnx", "tfjs"], ["fp32", "int8"], tmp / "export", log=lambda s: None)
    return sorted(p for p in (tmp / "export").iterdir() if p.suffix in (".tflite", ".onnx") or p.name.endswith("_tfjs"))


def measure(res: Results, label: str, artifact: Path, runtime: str, x) -> None:
    from edgekit.profiling import profile_isolated

    prof = profile_isolated(runtime, artifact, x, threads=1, runs=300)
    if prof["status"] != "ok":
        res.add(f"{label} on {runtime}", f"{prof['status']}: {prof['error']}", "a profile", runtime not in JUDGED)
        return
    total = sum(o["ms"] for o in prof["ops"])
    whole = prof["plain_p50_ms"]
    coverage = total / whole
    judged = runtime in JUDGED
    res.add(f"{label} on {runtime}: operators {total * 1e3:.1f} us of a {whole * 1e3:.1f} us run",
            f"coverage {coverage:.2f}", "0.85-1.15" if judged else "info", (0.85 <= coverage <= 1.15) if judged else None,
            coverage=coverage, sum_ms=total, whole_ms=whole, profiled_run_ms=prof.get("invoke_ms"))
    if prof.get("invoke_ms"):
        res.add(f"{label} on {runtime}: a profiled run", f"{prof['invoke_ms'] * 1e3:.1f} us, "
                f"{prof['invoke_ms'] / whole:.2f}x a plain run", "info (profiling's own cost)", None)


def main() -> bool:
    import numpy as np

    from edgekit.bench.inputs import eval_inputs
    from edgekit.bench.targets import resolve_targets
    from edgekit.runtimes import format_of_path

    res = Results("ops_profile")
    print("per-operator profiles: operators against the whole model (1 thread, 300 profiled runs)")
    with tempfile.TemporaryDirectory(prefix="edgekit-ops-bench-") as tmp:
        tmp = Path(tmp)
        for artifact in demo_export(tmp):
            target = resolve_targets([str(artifact)])[0]
            x, _, _ = eval_inputs(target, "builtin:mnist", 4, {}, 300.0)
            for runtime in RUNTIMES[format_of_path(artifact)]:
                measure(res, f"demo CNN {artifact.name}", artifact, runtime, x)
        x = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
        for name in ("pretrainedResnet.tflite", "pretrainedResnet_quant.tflite"):
            path = need_fixture(res, name)
            if path is not None:
                measure(res, f"ResNet-8 {name}", path, "litert", x)
        keras_file = need_fixture(res, "pretrainedResnet.h5")
        if keras_file is not None:
            from edgekit.exporters.pipeline import export_model

            export_model(keras_file, ["onnx", "tfjs"], ["fp32"], tmp / "resnet8", log=lambda s: None)
            for artifact in sorted(p for p in (tmp / "resnet8").iterdir() if p.suffix == ".onnx" or p.name.endswith("_tfjs")):
                for runtime in RUNTIMES[format_of_path(artifact)]:
                    measure(res, f"ResNet-8 {artifact.name}", artifact, runtime, x)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
