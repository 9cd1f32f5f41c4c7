"""ONNX targets: session overhead, static int8 accuracy/agreement, and size.

- Per-call overhead of edgekit's ONNX Runtime loop (IO binding) against a raw IO-binding loop
  written here on the same model: within 5% either way (a loop that under-measures fails too).
  A raw ``session.run`` loop, which also copies inputs and outputs, is shown for information.
- Static int8: digits accuracy within 1 point of fp32, and int8 no slower than fp32; ResNet-8 ONNX
  int8 at least 1.5x faster than ONNX fp32 (the layout export measured fastest, every layout it
  tried listed), with the gap to TFLite int8 stated.
- MLPerf Tiny ResNet-8 static int8, ONNX against edgekit's own TFLite int8, both calibrated on
  the same 200 inputs and compared with the float source on 1,200 others. There is no CIFAR-10
  here (see the fixtures' README): the inputs are low-frequency random images (4x4 colour
  fields upsampled to 32x32, plus pixel noise), on which the float model predicts 8 of the 10
  classes. Agreement counts only inputs whose float top-two scores are at least 0.1 apart
  (near-ties flip on any rounding and say nothing about the export), with a 95% Wilson interval.
  Targets: ONNX int8 agreement >= 0.98; and ONNX int8 no more than 1 point below TFLite int8.
  A miss is reported as a miss.
- Size: int8 at most 0.30x fp32 for models over 1 MB (ad01, 1.08 MB fp32).

History: until this version the ResNet-8 target was ">= the MLPerf authors' int8 .tflite on the
same inputs", after ONNX int8 missed 0.98 (0.970). That yardstick was tilted (the authors
calibrated on real data, edgekit on the noise it was tested on; another runtime; a figure that
swung 0.935-0.975 between runs), and its keyword-spotting half could not fail (the authors' file
agreed about 0.175 with its float model on those inputs). Both are replaced by the above.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import FIXTURES, Results, median, wilson, within_band

from edgekit.exporters.pipeline import export_model
from edgekit.runtimes.harness import latency_stats, time_calls
from edgekit.runtimes.onnxruntime import ONNXSession

REPEATS = 7


def raw_loops(path, x, runs):
    """p50s of a raw IO-binding loop (the same work as edgekit's) and a raw ``session.run`` loop."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    s = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    name, out = s.get_inputs()[0].name, s.get_outputs()[0].name
    binding = s.io_binding()
    binding.bind_cpu_input(name, x)
    binding.bind_output(out, "cpu")
    clock, bound, plain = time.perf_counter_ns, [], []
    for samples, call in ((bound, lambda: s.run_with_iobinding(binding)), (plain, lambda: s.run(None, {name: x}))):
        for _ in range(20):
            call()
        for _ in range(runs):
            t0 = clock()
            call()
            samples.append(clock() - t0)
    return latency_stats(bound)["p50"], latency_stats(plain)["p50"]


def overhead(res, path, label, runs):
    x = np.random.default_rng(0).uniform(0, 1, size=(1, *ONNXSession(str(path)).inputs[0].sample_shape)).astype(np.float32)
    raw, plain, ek = [], [], []
    for _ in range(REPEATS):  # interleaved, so drift hits both sides alike
        b, p = raw_loops(path, x, runs)
        raw.append(b)
        plain.append(p)
        s = ONNXSession(str(path), threads=1)
        ek.append(latency_stats(time_calls(s.bind(x), warmup=20, runs=runs, min_time_s=0))["p50"])
    within_band(res, f"{label}: edgekit (IO binding) vs a raw IO-binding loop", median(ek), median(raw), pct=5.0)
    res.add(f"  {label}: a raw session.run loop (copies inputs and outputs each call)", f"{median(plain) * 1000:.2f} us",
            "information", None)


def main() -> bool:
    res = Results("onnx_targets")
    print("ONNX targets")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from edgekit.bench.runner import run_bench
        from edgekit.trainer.fit import train

        run = tmp / "digits"
        train("cnn", "builtin:digits", run, epochs=30, verbose=0, log=lambda s: None)
        export_model(run, ["onnx"], ["fp32", "int8"], tmp / "dx", log=lambda s: None)
        report = run_bench([str(tmp / "dx")], runs=200, min_time_s=0.3)
        rows = {(r["runtime"], r["quant"]): r for r in report["rows"]}
        fp32, int8 = rows[("onnxruntime", "fp32")], rows[("onnxruntime", "int8")]
        drop = (fp32["accuracy"] - int8["accuracy"]) * 100
        res.add(f"digits static int8 accuracy {int8['accuracy']:.4f} vs fp32 {fp32['accuracy']:.4f}", f"{drop:+.2f} points",
                "<= 1 point drop", drop <= 1.0)
        res.add(f"digits p50 fp32 {fp32['latency_ms']['p50']:.4f} ms, int8 {int8['latency_ms']['p50']:.4f} ms "
                f"({_layout(tmp / 'dx')})", f"int8 speedup {int8['speedup']:.2f}x", ">= 1.0x (no slower than fp32)",
                int8["speedup"] >= 1.0)
        overhead(res, tmp / "dx" / "model_fp32.onnx", "digits CNN (tiny)", runs=2000)

        resnet8_int8(res, tmp)
        overhead(res, tmp / "r8" / "pretrainedResnet_fp32.onnx", "ResNet-8", runs=300)

        m = export_model(FIXTURES / "ad01.h5", ["onnx"], ["fp32", "int8"], tmp / "ad01",
                         calib=str(_ad01_calib(tmp)), log=lambda s: None)
        sizes = {x.quant: x.size_bytes for x in m.artifacts}
        ratio = sizes["int8"] / sizes["fp32"]
        res.add(f"ad01 size int8 {sizes['int8']} B vs fp32 {sizes['fp32']} B", f"{ratio:.3f}x", "<= 0.30x", ratio <= 0.30)
    return res.save()


def smooth_images(n: int, seed: int) -> np.ndarray:
    """Low-frequency random 32x32 RGB images in 0..255: 4x4 colour fields upsampled, plus pixel noise."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (n, 4, 4, 3)).astype(np.float32)
    x = tf.image.resize(low, (32, 32), method="bilinear").numpy() + rng.normal(0, 20, (n, 32, 32, 3))
    return np.clip(x, 0, 255).astype(np.float32)


def resnet8_int8(res: Results, tmp: Path, margin: float = 0.1) -> None:
    """ONNX int8 vs edgekit's TFLite int8 of ResNet-8, same calibration, on clearly decided inputs."""
    from edgekit.runtimes.isolated import run_isolated

    calib, test = smooth_images(200, seed=1), smooth_images(1200, seed=2)
    spec = tmp / "r8_calib.npz"
    np.savez(spec, x_train=calib, x_test=test[:200])
    m = export_model(FIXTURES / "pretrainedResnet.h5", ["onnx", "tflite"], ["fp32", "int8"], tmp / "r8",
                     calib=str(spec), log=lambda s: None)  # 200 calibration samples (the default)
    arts = {(a.format, a.quant): a for a in m.artifacts}
    ref = run_isolated("keras", FIXTURES / "pretrainedResnet.h5", test).output
    top = np.sort(ref, axis=1)
    clear = top[:, -1] - top[:, -2] >= margin
    classes = np.unique(ref.argmax(1)[clear])
    res.add(f"ResNet-8 inputs: {clear.sum()} of {len(test)} clearly decided (top-two gap >= {margin}), "
            f"float predicts {len(classes)} classes on them", f"{len(classes)} classes", ">= 5 classes (else the check is void)",
            len(classes) >= 5)
    agree = {}
    for fmt, runtime in (("onnx", "onnxruntime"), ("tflite", "litert")):
        out = run_isolated(runtime, tmp / "r8" / arts[(fmt, "int8")].path, test).output
        same = int((out.argmax(1) == ref.argmax(1))[clear].sum())
        lo, hi = wilson(same, int(clear.sum()))
        agree[fmt] = same / clear.sum()
        res.add(f"ResNet-8 {fmt} int8 top-1 agreement with float on the clear inputs (95% CI {lo:.3f}-{hi:.3f}); "
                f"on all {len(test)}: {(out.argmax(1) == ref.argmax(1)).mean():.3f}", f"{agree[fmt]:.3f}",
                ">= 0.98" if fmt == "onnx" else "information (the yardstick below)",
                agree[fmt] >= 0.98 if fmt == "onnx" else None, ci=[lo, hi])
    gap = (agree["onnx"] - agree["tflite"]) * 100
    res.add("ResNet-8 ONNX int8 minus edgekit's TFLite int8 agreement (same calibration, same inputs)",
            f"{gap:+.1f} points", ">= -1 point", gap >= -1.0)
    from edgekit.bench.runner import run_bench

    # the files themselves: a TFLite int8 that failed edgekit's parity check is still timed here
    report = run_bench([str(tmp / "r8" / a.path) for a in m.artifacts], runs=300, min_time_s=0.3, reference=False)
    p50 = {(r["format"], r["quant"]): r["latency_ms"]["p50"] for r in report["rows"]}
    speedup = p50[("onnx", "fp32")] / p50[("onnx", "int8")]
    res.add(f"ResNet-8 ONNX int8 p50 {p50[('onnx', 'int8')]:.4f} ms vs ONNX fp32 {p50[('onnx', 'fp32')]:.4f} ms "
            f"({_layout(tmp / 'r8')})", f"{speedup:.2f}x", ">= 1.5x", speedup >= 1.5)
    res.add(f"  ResNet-8 TFLite int8 p50 {p50[('tflite', 'int8')]:.4f} ms (fp32 {p50[('tflite', 'fp32')]:.4f} ms; "
            f"edgekit's parity check: {arts[('tflite', 'int8')].status}): the gap to ONNX int8", f"ONNX int8 {p50[('onnx', 'int8')] / p50[('tflite', 'int8')]:.2f}x TFLite int8's time",
            "information", None)


def _layout(folder: Path) -> str:
    """The ONNX int8 layout export chose, and every layout it measured."""
    from edgekit.artifact import Manifest

    d = next(a for a in Manifest.load(folder).artifacts if a.format == "onnx" and a.quant == "int8").details
    tried = ", ".join(f"{t['layout']} {t['p50_ms'] * 1000:.0f} us" if t.get('p50_ms') else f"{t['layout']} failed"
                      for t in d.get("int8_layouts_tried", []))
    return f"layout {d['int8_layout']}; tried: {tried}"


def _ad01_calib(tmp: Path) -> Path:
    x = np.random.default_rng(0).uniform(-84.9, 14.9, (300, 640)).astype(np.float32)  # the authors' input range
    path = tmp / "ad01.npz"
    np.savez(path, x_train=x[:200], x_test=x[200:])
    return path


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
