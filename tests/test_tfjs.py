"""TF.js: graph-model export, the Node and Chromium runtimes, hostile model folders, hangs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
from conftest import REPO, edgekit_cli, needs_chromium

from edgekit.artifact import Manifest
from edgekit.files import sha256_path


@pytest.fixture(scope="module")
def tfjs_export(digits_run, tmp_path_factory):
    from edgekit.exporters.pipeline import export_model

    out = tmp_path_factory.mktemp("tfjs") / "export"
    export_model(digits_run, ["tfjs"], ["fp32", "fp16", "uint8"], out, log=lambda s: None)
    return out


def test_every_quant_mode_exports_a_whole_graph_model_that_agrees(tfjs_export):
    m = Manifest.load(tfjs_export)
    arts = {a.quant: a for a in m.artifacts}
    assert set(arts) == {"fp32", "fp16", "uint8"}
    for art in arts.values():
        assert art.ok, art.error
        folder = tfjs_export / art.path
        assert sorted(p.name for p in folder.iterdir()) == ["group1-shard1of1.bin", "model.json"]
        assert json.loads((folder / "model.json").read_text())["format"] == "graph-model"
        assert art.sha256 == sha256_path(folder) and art.size_bytes == sum(p.stat().st_size for p in folder.iterdir())
        assert art.details["compute"] == "float32" and art.details["runtime"] == "tfjs-node"
        assert art.parity["top1_agreement"] >= 0.99
    # weight-only quantization: the manifest says so, and the weights shrink as they should
    assert arts["fp16"].details["weights"] == "float16" and "weight-only" in arts["fp16"].details["quantization"]
    assert arts["uint8"].details["weights"] == "uint8" and "weight-only" in arts["uint8"].details["quantization"]
    assert 0.45 < arts["fp16"].size_bytes / arts["fp32"].size_bytes < 0.56
    assert 0.20 < arts["uint8"].size_bytes / arts["fp32"].size_bytes < 0.32
    # fp32 is the same graph: float round-off only; uint8 weights cost visible precision
    assert arts["fp32"].parity["max_abs_diff"] < 1e-4
    assert arts["uint8"].parity["max_abs_diff"] > arts["fp16"].parity["max_abs_diff"] > arts["fp32"].parity["max_abs_diff"]


def test_node_runtime_matches_keras_and_times_inside_js(digits_run, tfjs_export):
    from edgekit.data import load_data
    from edgekit.model_loading import load_source
    from edgekit.run_record import RunRecord
    from edgekit.runtimes.tfjs_node import TFJSNodeRuntime

    rec = RunRecord.load(digits_run)
    x = load_data("builtin:digits").prepared("test", rec.prep)[:100]
    session = TFJSNodeRuntime().load(str(tfjs_export / "model_fp32_tfjs"), threads=1)
    try:
        y = session.run(x)["output"]
        samples = session.time_calls(x, warmup=5, runs=50, min_time_s=0.0)
        info = session.describe()
        pid = session.proc.pid
    finally:
        session.close()
    src = load_source(digits_run)
    ref = src.predict(x)["output"]
    src.close()
    assert y.shape == ref.shape == (100, 10)
    assert np.abs(y - ref).max() < 1e-4
    assert len(samples) == 50 and 0 < np.median(samples) < 50e6  # ns, under 50 ms per inference
    assert info["backend"] == "wasm" and info["quant_guess"] == "fp32" and info["ops"]["_FusedConv2D"] == 4
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


@needs_chromium
def test_bench_runs_tfjs_in_node_and_in_chromium(digits_run, tfjs_export, tmp_path):
    r = edgekit_cli("bench", tfjs_export, "--runs", "30", "--min-time", "0", "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    rows = report["rows"]
    assert [(x["quant"], x["runtime"]) for x in rows] == [
        ("fp32", "keras"), ("fp32", "tfjs-node"), ("fp32", "tfjs-browser"), ("fp16", "tfjs-node"),
        ("fp16", "tfjs-browser"), ("uint8", "tfjs-node"), ("uint8", "tfjs-browser")]
    keras_acc = rows[0]["accuracy"]
    for row in rows[1:]:
        assert row["status"] == "ok", row["error"]
        assert row["backend"] == "wasm"
        assert row["agreement"] >= 0.99 and abs(row["accuracy"] - keras_acc) <= 0.01
        assert row["latency_ms"]["count"] >= 30 and 0 < row["latency_ms"]["p50"] < 50
        assert row["peak_rss_mb"] > 20  # the Node process or the Chromium renderer, not this one
    by = {(x["quant"], x["runtime"]): x for x in rows}
    assert by[("uint8", "tfjs-node")]["size_ratio"] < 0.32
    assert any("weight-only" in n or "weights only" in n for n in report["notes"])
    assert "tfjs-browser" in r.stdout and "tfjs-node" in r.stdout


@needs_chromium
def test_browser_session_is_cross_origin_isolated_and_agrees_with_node(tfjs_export):
    from edgekit.runtimes.tfjs_browser import TFJSBrowserRuntime
    from edgekit.runtimes.tfjs_node import TFJSNodeRuntime

    x = np.random.default_rng(1).uniform(0, 16, size=(20, 8, 8, 1)).astype(np.float32)
    path = str(tfjs_export / "model_uint8_tfjs")
    b = TFJSBrowserRuntime().load(path, threads=1)
    try:
        yb, info = b.run(x)["output"], b.describe()
    finally:
        b.close()
    n = TFJSNodeRuntime().load(path)
    try:
        yn = n.run(x)["output"]
    finally:
        n.close()
    assert info["cross_origin_isolated"] is True and "HeadlessChrome" in info["user_agent"]
    assert info["quant_guess"] == "uint8"
    assert np.abs(yb - yn).max() < 1e-4


def _copy_model(tfjs_export, tmp_path, quant="fp32"):
    dst = tmp_path / f"m_{quant}"
    shutil.copytree(tfjs_export / f"model_{quant}_tfjs", dst)
    return dst


def _edit_model_json(folder, fn):
    doc = json.loads((folder / "model.json").read_text())
    fn(doc)
    (folder / "model.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("case,expect", [
    ("escape", "outside the model's folder"),
    ("missing", "weight shard group1-shard1of1.bin named in"),
    ("truncated", "truncated"),
    ("not_json", "is not valid JSON"),
    ("layers_model", "edgekit runs graph models"),
])
def test_hostile_or_broken_model_folders_are_refused_in_one_line(tfjs_export, tmp_path, case, expect):
    m = _copy_model(tfjs_export, tmp_path)
    shard = m / "group1-shard1of1.bin"
    if case == "escape":
        _edit_model_json(m, lambda d: d["weightsManifest"][0].__setitem__("paths", ["../../../../etc/passwd"]))
    elif case == "missing":
        shard.unlink()
    elif case == "truncated":
        shard.write_bytes(shard.read_bytes()[:1000])
    elif case == "not_json":
        (m / "model.json").write_bytes(os.urandom(300))
    elif case == "layers_model":
        _edit_model_json(m, lambda d: d.__setitem__("format", "layers-model"))
    r = edgekit_cli("bench", m, "--no-reference", "--runs", "5", "--min-time", "0")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error:") and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_node_runner_itself_refuses_weights_outside_the_folder(tfjs_export, tmp_path):
    """Defence in depth: the JS side checks paths too, whoever calls it."""
    m = _copy_model(tfjs_export, tmp_path)
    _edit_model_json(m, lambda d: d["weightsManifest"][0].__setitem__("paths", ["../m_fp32/../../etc/passwd"]))
    proc = subprocess.run(["node", str(REPO / "js" / "node-runner.mjs"), str(m / "model.json")],
                          input='{"id": 1, "cmd": "load", "backend": "wasm"}\n', capture_output=True, text=True, timeout=60)
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["ok"] is False and "leaves the model's folder" in reply["error"]


@needs_chromium
def test_a_hung_browser_is_killed_with_everything_it_started(tfjs_export, tmp_path):
    from edgekit.runtimes.isolated import run_isolated

    marker = f"edgekit-hang-{os.getpid()}"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/bash\nexec -a {marker} sleep 600\n")
    fake.chmod(0o755)
    os.environ["EDGEKIT_CHROMIUM"] = str(fake)
    try:
        t0 = time.monotonic()
        r = run_isolated("tfjs-browser", tfjs_export / "model_fp32_tfjs", np.zeros((2, 8, 8, 1), np.float32), timeout_s=8)
    finally:
        del os.environ["EDGEKIT_CHROMIUM"]
    assert not r.ok and r.error_type == "Timeout" and "killed after 8 s" in r.error
    assert time.monotonic() - t0 < 30
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == [], "the hung browser outlived its worker"


def test_missing_node_or_chromium_names_the_install_command(digits_run, tfjs_export, tmp_path):
    r = edgekit_cli("export", digits_run, "--format", "tfjs", "--out", tmp_path / "o", env={"EDGEKIT_NODE": "/nonexistent/node"})
    assert r.returncode == 2 and "EDGEKIT_NODE points to /nonexistent/node" in r.stderr
    assert not (tmp_path / "o").exists()
    r = edgekit_cli("bench", tfjs_export / "model_fp32_tfjs", "--runtime", "tfjs-browser", "--no-reference",
                    env={"EDGEKIT_CHROMIUM": "/nonexistent/chromium"})
    assert r.returncode == 1 and "EDGEKIT_CHROMIUM points to /nonexistent/chromium" in r.stdout
    r = edgekit_cli("bench", tfjs_export / "model_fp32_tfjs", "--no-reference", env={"EDGEKIT_JS_DIR": str(tmp_path)})
    assert r.returncode == 1 and "run `make install`" not in r.stderr  # not an npm problem: no package.json there
    assert "edgekit's JavaScript runner is not at" in r.stdout


def test_webgl_and_plain_cpu_backends_run_on_request_and_agree(tfjs_export, tmp_path):
    """--runtime tfjs-browser-webgl (software WebGL without a GPU, said so) and tfjs-node-cpu."""
    r = edgekit_cli("bench", tfjs_export / "model_fp32_tfjs", "--runtime", "tfjs-browser-webgl,tfjs-node-cpu",
                    "--runs", "10", "--min-time", "0", "--repeats", "1", "--data", "builtin:digits",
                    "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    rows = {row["runtime"]: row for row in report["rows"] if not row.get("is_reference")}
    assert set(rows) == {"tfjs-browser-webgl", "tfjs-node-cpu"}
    assert rows["tfjs-browser-webgl"]["backend"] == "webgl" and rows["tfjs-node-cpu"]["backend"] == "cpu"
    for row in rows.values():
        assert row["status"] == "ok" and row["agreement"] >= 0.99 and row["latency_ms"]["p50"] > 0, row
    if "swiftshader" in str(rows["tfjs-browser-webgl"].get("gpu", "")).lower():
        assert any("software renderer" in n or "SwiftShader" in n for n in report["notes"]), report["notes"]


def test_a_saved_model_with_debug_asserts_converts_to_tfjs_like_the_other_formats(tmp_path):
    """A published SavedModel often checks its input with tf.debugging (an audio transcription
    model's did): TFLite and ONNX drop the Assert ops; TF.js has no kernel for them and refused the
    whole graph ("Unsupported Ops ...: Assert") until the export stripped them."""
    import tensorflow as tf

    class Scaled(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal((16, 3), seed=(1, 2)))

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32)])
        def __call__(self, x):
            tf.debugging.assert_all_finite(x, "samples must be finite")
            tf.debugging.assert_less_equal(tf.reduce_max(tf.abs(x)), 1.0, "samples in [-1, 1]")
            return {"scores": tf.nn.sigmoid(tf.matmul(x, self.w))}

    module = Scaled()
    tf.saved_model.save(module, str(tmp_path / "asserts"), signatures=module.__call__)
    np.savez(tmp_path / "x.npz", x_train=np.random.default_rng(0).uniform(-1, 1, (64, 16)).astype(np.float32),
             x_test=np.random.default_rng(1).uniform(-1, 1, (64, 16)).astype(np.float32))
    r = edgekit_cli("export", tmp_path / "asserts", "--format", "tflite,onnx,tfjs", "--quant", "fp32",
                    "--calib", tmp_path / "x.npz", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    arts = {a.format: a for a in Manifest.load(tmp_path / "o").artifacts}
    assert set(arts) == {"tflite", "onnx", "tfjs"} and all(a.ok for a in arts.values()), arts
    assert arts["tfjs"].parity["max_abs_diff"] < 1e-5, arts["tfjs"].parity
    topology = json.loads((tmp_path / "o" / arts["tfjs"].path / "model.json").read_text())["modelTopology"]
    assert not {"Assert", "CheckNumerics"} & {n["op"] for n in topology["node"]}, topology["node"]
