"""Every format in the browser: TF.js, LiteRT.js and ONNX Runtime Web side by side, in headless Chromium.

Targets:
- per-inference overhead of edgekit's page runner (runner-core + the engine's adapter, driven by the
  runtime) against a timing loop written directly in the same page with the engine's own API, on the
  same model and input: within 10% either way, per engine (median of interleaved repeats, the digits
  CNN and MLPerf Tiny ResNet-8, 1 thread);
- one bench run on the browser-mobile profile (1 thread): the demo CNN (trained on builtin:mnist) and
  ResNet-8, fp32 and int8 (TF.js: uint8 weights), on each engine: p50, first inference, download (gzip),
  agreement with Keras. Target: each engine's agreement equals, within 0.005, the agreement of the
  Python runtime (litert, onnxruntime; tfjs-node for TF.js) on the same file: the same file gives the
  same answers in the page. The table goes to docs/runtimes.md.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
from common import Results, need_chromium, need_fixture, within_band

from edgekit.bench.runner import run_bench
from edgekit.exporters.pipeline import export_model
from edgekit.runtimes import get_runtime
from edgekit.trainer.fit import train

# Raw loops: the engine's own API, no edgekit code, the model loaded a second time in the same page.
# Each keeps its model in window.__raw between calls and returns the p50 (ms) of `runs` timed calls.
RAW = {
    "tfjs-browser": """async ({runs, shape}) => {
      if (!window.__raw) {
        const model = await tf.loadGraphModel('/model/model.json');
        const data = new Float32Array(await (await fetch('/data/input.bin')).arrayBuffer());
        window.__raw = {model, x: tf.tensor(data, shape)};
      }
      const {model, x} = window.__raw;
      const t = [];
      for (let i = 0; i < 10 + runs; i++) {
        const a = performance.now();
        const y = model.execute(x);
        y.dataSync();
        y.dispose();
        if (i >= 10) t.push(performance.now() - a);
      }
      return t.sort((p, q) => p - q)[Math.floor(t.length / 2)];
    }""",
    "litert-browser": """async ({runs, shape}) => {
      if (!window.__raw) {
        const litert = await import('/litertjs/core/index.js');
        const lrt = litert.getGlobalLiteRt(), wasm = lrt.liteRtWasm, env = lrt.getDefaultEnvironment();
        const bytes = new Uint8Array(await (await fetch('/model/model')).arrayBuffer());
        const ptr = wasm._malloc(bytes.length);
        wasm.HEAPU8.set(bytes, ptr);
        const model = wasm.loadModel(env.liteRtEnvironment, ptr, bytes.length);
        const compiled = await wasm.compileModel(env.liteRtEnvironment, model, {environment: env, accelerator: 'wasm',
          cpuOptions: {numThreads: 1}, gpuOptions: {}, webNNOptions: {}});
        const data = new Float32Array(await (await fetch('/data/input.bin')).arrayBuffer());
        const dims = new wasm.VectorInt32();
        shape.forEach((d) => dims.push_back(d));
        const layout = wasm.LiteRtLayout.create(dims);
        const input = model.getInputTensorType(0, 0);
        const type = wasm.LiteRtRankedTensorType.create(input.elementType(), layout);
        const buf = wasm.LiteRtTensorBuffer.createManaged(env.liteRtEnvironment, wasm.LiteRtTensorBufferType.HOST_MEMORY,
                                                           type, data.byteLength);
        const p = buf.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
        wasm.HEAPU8.set(new Uint8Array(data.buffer), p);
        buf.unlock();
        window.__raw = {wasm, compiled, buf};
      }
      const {wasm, compiled, buf} = window.__raw;
      const t = [];
      for (let i = 0; i < 10 + runs; i++) {
        const a = performance.now();
        for (const out of compiled.run(0, [buf])) {
          const q = out.lock(wasm.LiteRtTensorBufferLockMode.READ);
          new Float32Array(wasm.HEAPU8.slice(q, q + out.packedSize()).buffer);
          out.unlock();
          out.delete();
        }
        if (i >= 10) t.push(performance.now() - a);
      }
      return t.sort((p, q) => p - q)[Math.floor(t.length / 2)];
    }""",
    "ort-browser": """async ({runs, shape}) => {
      if (!window.__raw) {
        const ort = await import('/ort/ort.wasm.min.mjs');
        const session = await ort.InferenceSession.create('/model/model', {executionProviders: ['wasm'],
                                                                            graphOptimizationLevel: 'all'});
        const data = new Float32Array(await (await fetch('/data/input.bin')).arrayBuffer());
        window.__raw = {session, feeds: {[session.inputNames[0]]: new ort.Tensor('float32', data, shape)}};
      }
      const {session, feeds} = window.__raw;
      const t = [];
      for (let i = 0; i < 10 + runs; i++) {
        const a = performance.now();
        const r = await session.run(feeds);
        for (const k of session.outputNames) { r[k].data; r[k].dispose(); }
        if (i >= 10) t.push(performance.now() - a);
      }
      return t.sort((p, q) => p - q)[Math.floor(t.length / 2)];
    }""",
}


def runner_overhead(res: Results, label: str, runtime: str, path: Path, x: np.ndarray, repeats: int = 5,
                    runs: int = 300) -> None:
    session = get_runtime(runtime).load(str(path), threads=1)
    try:
        ours, raw = [], []
        for i in range(repeats):  # interleaved, so that machine noise hits both alike
            for which in (("ours", "raw") if i % 2 == 0 else ("raw", "ours")):
                if which == "ours":
                    ours.append(float(np.median(session.time_calls(x, warmup=10, runs=runs, min_time_s=0))) / 1e6)
                else:
                    raw.append(session.page.evaluate(RAW[runtime], {"runs": runs, "shape": [1, *x.shape[1:]]}))
    finally:
        session.close()
    within_band(res, f"page runner vs raw loop in the same page, {label}, {runtime}", statistics.median(ours),
                statistics.median(raw), pct=10.0)


def engine_table(report: dict) -> list[str]:
    from edgekit.reports.web_engines import ENGINES

    lines = ["| model | artifact | engine | p50 ms (this host) | first inference ms | download gzip MB (model + engine) | agreement |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        if r["is_reference"] or r["profile"] != "browser-mobile":
            continue
        d = r.get("download") or {}
        model = "ResNet-8" if "Resnet" in r["name"] else "demo CNN"
        if r["status"] != "ok":
            lines.append(f"| {model} | {r['name']} | {ENGINES[r['runtime']]} | failed: {r['error']} | | | |")
            continue
        lines.append(f"| {model} | {r['name']} | {ENGINES[r['runtime']]} | {r['latency_ms']['p50']:.3f} | {r['first_ms']:.1f} | "
                     f"{d.get('total_gzip_bytes', 0) / 1e6:.2f} ({d.get('model_gzip_bytes', 0) / 1e6:.2f} + "
                     f"{d.get('engine_gzip_bytes', 0) / 1e6:.2f}) | {r['agreement']:.4f} |")
    return lines


def main() -> bool:
    res = Results("web_engines")
    print("Every format in the browser: TF.js, LiteRT.js, ONNX Runtime Web")
    if not need_chromium(res):
        return res.save()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train("cnn", "builtin:digits", tmp / "digits", epochs=20, verbose=0, log=lambda s: None)
        export_model(tmp / "digits", ["tflite", "onnx", "tfjs"], ["fp32"], tmp / "digits_exp", log=lambda s: None)
        x = np.random.default_rng(0).uniform(0, 1, size=(1, 8, 8, 1)).astype(np.float32)
        models = [("digits CNN", tmp / "digits_exp", "model", x)]
        resnet = need_fixture(res, "pretrainedResnet.h5")
        if resnet is not None:
            export_model(resnet, ["tflite", "onnx", "tfjs"], ["fp32", "int8", "uint8"], tmp / "resnet",
                         calib="uniform:0,255", log=lambda s: None)
            xr = np.random.default_rng(0).uniform(0, 255, size=(1, 32, 32, 3)).astype(np.float32)
            models.append(("ResNet-8", tmp / "resnet", "pretrainedResnet", xr))
        for label, folder, stem, xi in models:
            for runtime, name in (("tfjs-browser", f"{stem}_fp32_tfjs"), ("litert-browser", f"{stem}_fp32.tflite"),
                                  ("ort-browser", f"{stem}_fp32.onnx")):
                runner_overhead(res, label, runtime, folder / name, xi)

        train("cnn", "builtin:mnist", tmp / "demo", epochs=3, verbose=0, log=lambda s: None)
        export_model(tmp / "demo", ["tflite", "onnx", "tfjs"], ["fp32", "int8", "uint8"], tmp / "demo_exp",
                     log=lambda s: None)
        bench = {"profiles": "host,browser-mobile", "repeats": 1, "runs": 100, "min_time_s": 0.3}
        report = run_bench([str(tmp / "demo_exp")], **bench)
        if resnet is not None:  # no labelled CIFAR-10 here: agreement on generated images in its input range
            np.savez(tmp / "resnet.npz", x=np.random.default_rng(1).uniform(0, 255, (200, 32, 32, 3)).astype(np.float32))
            report["rows"] += run_bench([str(tmp / "resnet")], data=str(tmp / "resnet.npz"), **bench)["rows"]
        python = {r["name"]: r for r in report["rows"]
                  if r["profile"] == "host" and r["runtime"] in ("litert", "onnxruntime", "tfjs-node")}
        engines = {r["runtime"] for r in report["rows"] if r["profile"] == "browser-mobile" and not r["is_reference"]}
        if engines != {"tfjs-browser", "litert-browser", "ort-browser"}:  # an engine's rows missing is a miss
            res.add("browser-mobile engines benched", ", ".join(sorted(engines)) or "none",
                    "tfjs-browser, litert-browser, ort-browser", False, notes=report.get("notes"))
        for r in report["rows"]:
            if r["is_reference"] or r["profile"] != "browser-mobile":
                continue
            py = python.get(r["name"])
            ok = r["status"] == "ok" and py is not None and abs(r["agreement"] - py["agreement"]) <= 0.005
            res.add(f"{r['name']}: agreement with Keras on {r['runtime']} vs on {py and py['runtime']}",
                    "failed: " + str(r["error"]) if r["status"] != "ok" else f"{r['agreement']:.4f} vs {py['agreement']:.4f}",
                    "the Python runtime's, +/-0.005 (the same file, the same answers)", ok)
        table = engine_table(report)
        print("\n".join(table))
        res.add("engine table (docs/runtimes.md)", f"{len(table) - 2} rows", "informational", None, table=table)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
