"""LiteRT.js (litert-browser) and ONNX Runtime Web (ort-browser) in headless Chromium, beside TF.js.

Each engine runs edgekit's own artifacts in the same page runner as TF.js and must answer what the
Python runtimes answer: the same file, the same numbers. A model an engine cannot run is a failed
row carrying the engine's own reason.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import edgekit_cli, needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def web_export(digits_run, tmp_path_factory):
    """The digits CNN as TFLite and ONNX, fp32 and int8."""
    from edgekit.exporters.pipeline import export_model

    out = tmp_path_factory.mktemp("web") / "exp"
    export_model(digits_run, ["tflite", "onnx"], ["fp32", "int8"], out, log=lambda s: None)
    return out


@pytest.fixture(scope="module")
def oversized_tflite(tmp_path_factory):
    """A 1 KB .tflite whose one intermediate tensor is 4.4 GB: more than wasm32 can address."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.float32)])
    def spread(x):
        return tf.reduce_sum(tf.broadcast_to(x, [1, 1_100_000_000]), axis=1, keepdims=True)

    path = tmp_path_factory.mktemp("big") / "oversized.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([spread.get_concrete_function()], spread).convert())
    return path


@pytest.fixture(scope="module")
def keras_outputs(digits_run):
    """The source model's outputs on the first 40 test digits, and those inputs."""
    from edgekit.data import load_data
    from edgekit.model_loading import load_source

    x = load_data("builtin:digits").prepared("test")[:40]
    src = load_source(digits_run)
    try:
        return x, src.predict(x)["output"]
    finally:
        src.close()


@pytest.mark.parametrize("runtime,name", [("litert-browser", "model_fp32.tflite"), ("litert-browser", "model_int8.tflite"),
                                          ("ort-browser", "model_int8.onnx"), ("ort-web-node", "model_fp32.onnx")])
def test_each_web_engine_gives_the_python_runtimes_numbers_for_the_same_file(web_export, keras_outputs, runtime, name):
    from edgekit.runtimes import get_runtime
    from edgekit.runtimes.litert import LiteRTSession
    from edgekit.runtimes.onnxruntime import ONNXSession

    x, keras_y = keras_outputs
    path = str(web_export / name)
    reference = (LiteRTSession if name.endswith(".tflite") else ONNXSession)(path).run(x)["output"]
    session = get_runtime(runtime).load(path, threads=1)
    try:
        y, info = session.run(x)["output"], session.describe()
        samples = session.time_calls(x, warmup=2, runs=20, min_time_s=0)
    finally:
        session.close()
    assert y.shape == (40, 10)
    if "int8" in name:  # the same integer kernels: the same answer, bit for bit
        assert np.abs(y - reference).max() <= 1e-6
    else:
        assert np.abs(y - reference).max() < 1e-5 and np.abs(y - keras_y).max() < 1e-4
    assert info["engine"] == ("litert" if runtime == "litert-browser" else "ort") and info["threads"] == 1
    if runtime.endswith("-browser"):
        assert info["cross_origin_isolated"] is True
    if name == "model_int8.tflite":  # int8 at the boundary: the wrapper refuses it, edgekit feeds it
        assert info["input_dtype"] == "int8" and info["io"]["inputs"][0]["dtype"] == "int8"
    assert len(samples) >= 20 and 0 < np.median(samples) < 50e6


def test_a_browser_profile_runs_every_format_on_its_engine_with_estimates_and_failed_rows(web_export, oversized_tflite,
                                                                                           tmp_path):
    r = edgekit_cli("bench", web_export / "model_int8.tflite", web_export / "model_int8.onnx", oversized_tflite,
                    "--profile", "browser-desktop", "--data", "builtin:digits",
                    "--repeats", "1", "--runs", "20", "--min-time", "0", "--json", tmp_path / "b.json",
                    "--html", tmp_path / "b.html")
    assert r.returncode == 1, r.stdout + r.stderr  # a row failed: the report is written, the exit code says so
    report = json.loads((tmp_path / "b.json").read_text())
    rows = {r["name"]: r for r in report["rows"] if r["profile"] == "browser-desktop"}
    assert {n: r["runtime"] for n, r in rows.items()} == {
        "model_int8.tflite": "litert-browser", "oversized.tflite": "litert-browser", "model_int8.onnx": "ort-browser"}
    cores = len(os.sched_getaffinity(0))
    for name, row in rows.items():
        if name == "oversized.tflite":
            continue
        assert row["status"] == "ok", row["error"]
        assert row["threads"] == min(4, cores) and row["agreement"] >= 0.97 and row["accuracy"] > 0.85
        est = row["estimate"]
        assert est["kind"] == "estimate" and est["reference"]["runtime"] == "tfjs-browser"
        assert est["reference"]["quant"] == "fp32" and row["runtime"] in est["reference"]["applied_to"]
        assert est["latency_ms"] == pytest.approx(row["latency_ms"]["p50"] * est["factor"], rel=1e-3)
        assert row["peak_rss_mb"] > 50  # Chromium's renderer, not this process
        d = row["download"]  # what the page fetched: the engine's wasm dominates a small model
        assert d["model_bytes"] == row["size_bytes"] and d["engine_gzip_bytes"] > 1e6 and d["total_gzip_bytes"] < 5e6
        assert row["init_ms"] > 0 and row["first_ms"] > 0
    big = rows["oversized.tflite"]
    assert big["status"] == "failed" and big["verdict"].startswith("fail")
    assert "LiteRT.js in Chromium: cannot compile this model" in big["error"] and "BytesRequired number of bytes overflowed" in big["error"], big["error"]
    assert any("oversized.tflite (litert-browser) failed" in n for n in report["notes"])
    page = (tmp_path / "b.html").read_text()
    assert "browser-desktop: which engine for the web" in page and "smallest download: " in page
    assert "could not run: oversized.tflite on LiteRT.js" in page


def test_a_phone_opening_the_remote_page_measures_every_engine_in_its_browser(web_export, tmp_path):
    """`bench --remote`: Chromium with a Pixel 5's screen and user agent stands in for the phone."""
    import re
    import subprocess
    import sys

    from playwright.sync_api import sync_playwright

    from edgekit.runtimes.browser import CHROMIUM_ARGS
    from edgekit.runtimes.js_env import chromium_binary

    cmd = [sys.executable, "-m", "edgekit", "bench", str(web_export / "model_int8.tflite"), str(web_export / "model_int8.onnx"),
           "--profile", "browser-mobile", "--remote", "--remote-host", "127.0.0.1", "--remote-port", "0",
           "--data", "builtin:digits", "--repeats", "1", "--runs", "30", "--min-time", "0.1", "--json", str(tmp_path / "r.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = next(m.group(1) for line in proc.stdout if (m := re.search(r"open (http://\S+) on the phone", line)))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_binary(), args=CHROMIUM_ARGS)
            page = browser.new_context(**p.devices["Pixel 5"]).new_page()
            stranger = browser.new_page()  # without the URL's key: refused
            stranger.goto(url.split("?")[0] + "runner?engine=litert")
            assert "open the URL edgekit printed" in stranger.content()
            page.goto(url)
            out, err = proc.communicate(timeout=300)
            assert "done" in page.inner_text("#status")
            browser.close()
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err
    report = json.loads((tmp_path / "r.json").read_text())
    assert "Android 11; Pixel 5" in report["device"]["name"] and report["device"]["user_agent"].startswith("Mozilla/5.0")
    rows = {r["name"]: r for r in report["rows"] if not r["is_reference"]}
    assert {n: r["runtime"] for n, r in rows.items()} == {"model_int8.tflite": "litert-browser", "model_int8.onnx": "ort-browser"}
    for r in rows.values():
        assert r["status"] == "ok" and r["measured_on"]["device"] == report["device"]["name"], r["error"]
        assert r["agreement"] >= 0.97 and r["latency_ms"]["p50"] > 0 and r["estimate_error_pct"] is not None
        assert r["peak_rss_mb"] is None  # a page cannot see its memory; nothing is made up
    assert "MEASURED in Chrome" in out
