"""TF.js: the Node runner's overhead, the browser's whole run, and parity of every TF.js artifact.

Targets:
- per-call overhead of edgekit's Node runner against a timing loop written directly in the
  same Node process: within 10% either way (median of interleaved repeats, digits CNN and ResNet-8);
- browser (informational): the whole run (launch Chromium, load, 200 inferences) for the
  digits model, and its per-inference median against the Node wasm runner;
- parity of every TF.js artifact of the digits model against Keras: top-1 agreement >= 0.99.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, Results, need_chromium, need_fixture, within_band

from edgekit.bench.runner import run_bench
from edgekit.exporters.pipeline import export_model
from edgekit.trainer.fit import train


def runner_overhead(res: Results, name: str, model_dir: Path) -> None:
    out = subprocess.run(["node", str(REPO / "js" / "bench" / "runner-overhead.mjs"), str(model_dir / "model.json"), "7", "300"],
                         capture_output=True, text=True, timeout=600, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    raw, ours = statistics.median(r["raw_p50_ms"]), statistics.median(r["runner_p50_ms"])
    within_band(res, f"Node runner vs raw loop, {name} ({r['backend']})", ours, raw, pct=10.0)


def browser_whole_run(res: Results, model_dir: Path, x: np.ndarray) -> None:
    from edgekit.runtimes.tfjs_browser import TFJSBrowserRuntime
    from edgekit.runtimes.tfjs_node import TFJSNodeRuntime

    t0 = time.perf_counter()
    s = TFJSBrowserRuntime().load(str(model_dir), threads=1)
    t_loaded = time.perf_counter()
    browser = s.time_calls(x, warmup=0, runs=200, min_time_s=0)
    s.close()
    whole = time.perf_counter() - t0
    n = TFJSNodeRuntime().load(str(model_dir), threads=1)
    node = n.time_calls(x, warmup=0, runs=200, min_time_s=0)
    n.close()
    b50, n50 = np.median(browser) / 1e6, np.median(node) / 1e6
    res.add("browser whole run: launch + load + 200 inferences (digits)", f"{whole:.2f} s (launch+load {t_loaded - t0:.2f} s)",
            "informational", None, seconds=whole)
    res.add("per-inference median, Chromium wasm vs Node wasm (digits)", f"{b50 * 1e3:.0f} us vs {n50 * 1e3:.0f} us "
            f"({b50 / n50:.2f}x)", "informational", None, browser_us=b50 * 1e3, node_us=n50 * 1e3)


def main() -> bool:
    res = Results("tfjs_targets")
    print("TF.js runners")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = tmp / "run"
        train("cnn", "builtin:digits", run, epochs=30, verbose=0, log=lambda s: None)
        export_model(run, ["tfjs"], ["fp32", "fp16", "uint8"], tmp / "exp", log=lambda s: None)
        runner_overhead(res, "digits CNN", tmp / "exp" / "model_fp32_tfjs")
        resnet = need_fixture(res, "pretrainedResnet.h5")
        if resnet is not None:
            export_model(resnet, ["tfjs"], ["fp32"], tmp / "resnet", log=lambda s: None)
            runner_overhead(res, "ResNet-8", tmp / "resnet" / "pretrainedResnet_fp32_tfjs")
        x = np.random.default_rng(0).uniform(0, 16, size=(1, 8, 8, 1)).astype(np.float32)
        if need_chromium(res):
            browser_whole_run(res, tmp / "exp" / "model_fp32_tfjs", x)
        report = run_bench([str(tmp / "exp")], runs=200, min_time_s=0.5)
        for r in report["rows"]:
            if r["is_reference"]:
                res.add("Keras accuracy (digits test split)", f"{r['accuracy']:.4f}", "informational", None)
                continue
            res.add(f"{r['quant']} on {r['runtime']}: accuracy / agreement / max abs diff",
                    f"{r['accuracy']:.4f} / {r['agreement']:.4f} / {r['max_abs_diff']:.2g}, p50 {r['latency_ms']['p50'] * 1e3:.0f} us",
                    "agreement >= 0.99", r["agreement"] >= 0.99)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
