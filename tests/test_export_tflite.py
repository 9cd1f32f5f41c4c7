"""TFLite export: every quant mode, the manifest, parity, atomicity, and every MODEL kind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edgekit_cli, mlperf

from edgekit.artifact import Manifest
from edgekit.files import sha256_path


def test_manifest_lists_every_artifact_whole(digits_export):
    m = Manifest.load(digits_export)
    assert [(a.format, a.quant, a.status) for a in m.artifacts] == [
        ("tflite", q, "ok") for q in ("fp32", "fp16", "dynamic", "int8")
    ]
    for a in m.artifacts:
        path = digits_export / a.path
        assert path.stat().st_size == a.size_bytes and sha256_path(path) == a.sha256
        assert a.parity["samples"] > 100 and a.parity["finite"]
    assert m.source["kind"] == "run" and m.run["labels"][0] == "0"
    assert "ai-edge-litert" in m.versions and "keras" in m.versions
    assert not list(digits_export.glob(".edgekit-staging-*"))


def test_quantized_artifacts_are_smaller_and_agree(digits_export):
    m = {a.quant: a for a in Manifest.load(digits_export).artifacts}
    fp32 = m["fp32"].size_bytes
    assert m["fp16"].size_bytes < 0.6 * fp32
    assert m["int8"].size_bytes <= 0.30 * fp32
    assert m["fp32"].parity["max_abs_diff"] < 1e-4
    assert m["int8"].parity["top1_agreement"] >= 0.97
    assert m["int8"].details["input_dtype"] == "int8" and m["int8"].details["weights"] == "int8"


def test_int8_io_float_and_uint8(digits_run, tmp_path):
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.pipeline import export_model

    for io in ("float", "uint8"):
        m = export_model(digits_run, ["tflite"], ["int8"], tmp_path / io, options=ExportOptions(int8_io=io, calib_samples=50), log=lambda s: None)
        art = m.artifacts[0]
        assert art.ok and art.details["input_dtype"] == ("float32" if io == "float" else "uint8")
        assert art.details["calibration_samples"] == 50


def test_second_export_merges_manifest(digits_run, tmp_path):
    out = tmp_path / "exp"
    assert edgekit_cli("export", digits_run, "--quant", "fp32", "--out", out).returncode == 0
    assert edgekit_cli("export", digits_run, "--quant", "fp16", "--out", out).returncode == 0
    quants = [a["quant"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]]
    assert quants == ["fp32", "fp16"]


def test_calibration_of_wrong_shape_leaves_nothing(digits_run, tmp_path):
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.zeros((20, 9, 9, 1), np.float32))
    out = tmp_path / "exp"
    r = edgekit_cli("export", digits_run, "--quant", "int8", "--calib", calib, "--out", out)
    assert r.returncode == 2 and "shape (9, 9, 1)" in r.stderr and "(8, 8, 1)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_parity_failure_is_reported_not_success(digits_run, tmp_path):
    out = tmp_path / "exp"
    r = edgekit_cli("export", digits_run, "--quant", "int8", "--min-agreement", "1.01", "--out", out)
    assert r.returncode == 1
    assert "FAILED validation" in r.stdout and "top-1 agreement" in r.stdout
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert art["status"] == "validation_failed" and "parity" in art["error"]


def test_keras_file_export(digits_run, tmp_path):
    out = tmp_path / "exp"
    r = edgekit_cli("export", digits_run / "model.keras", "--quant", "fp32,dynamic", "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.tflite")) == ["model_dynamic.tflite", "model_fp32.tflite"]


def test_keras2_h5_falls_back_to_tf_keras(tmp_path):
    from edgekit.exporters.pipeline import export_model

    m = export_model(mlperf("vww_96.h5"), ["tflite"], ["fp32"], tmp_path, parity_samples=8, log=lambda s: None)
    a = m.artifacts[0]
    assert m.source["framework"] == "tf_keras" and a.ok
    assert a.parity["max_abs_diff"] < 1e-4


def test_savedmodel_int8_with_real_calibration(tmp_path):
    """The keyword-spotting SavedModel, calibrated on generated inputs shaped like MFCCs."""
    from edgekit.exporters.pipeline import export_model

    calib = tmp_path / "mfcc.npz"
    rng = np.random.default_rng(0)
    np.savez(calib, x=rng.normal(0, 1, (64, 49, 10, 1)).astype(np.float32))
    m = export_model(mlperf("kws_ref_model"), ["tflite"], ["fp32", "int8"], tmp_path / "out", calib=str(calib),
                     parity_samples=32, log=lambda s: None)
    fp32, int8 = m.artifacts
    assert m.source["kind"] == "saved_model" and fp32.ok and int8.ok
    # No larger than the MLPerf Tiny authors' own int8 file of the same model.
    assert int8.size_bytes <= mlperf("kws_ref_model.tflite").stat().st_size
    assert int8.size_bytes < 0.6 * fp32.size_bytes


def test_int8_without_calibration_data_is_a_usage_error(tmp_path):
    r = edgekit_cli("export", mlperf("ad01.h5"), "--quant", "int8", "--out", tmp_path / "o")
    assert r.returncode == 2 and "--calib" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("quant", ["fp32"])
def test_bare_h5_without_data_uses_generated_inputs(tmp_path, quant):
    from edgekit.exporters.pipeline import export_model

    m = export_model(mlperf("ad01.h5"), ["tflite"], [quant], tmp_path, log=lambda s: None)
    assert m.artifacts[0].ok and "generated" in m.source["data"]


def test_interrupt_mid_export_leaves_nothing(digits_run, tmp_path, monkeypatch):
    """Ctrl-C during the second conversion: no artifact, no manifest, no staging folder."""
    from edgekit.exporters.pipeline import export_model
    from edgekit.exporters.tflite import TFLiteExporter

    calls = {"n": 0}
    real = TFLiteExporter.export

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TFLiteExporter, "export", interrupted)
    out = tmp_path / "exp"
    with pytest.raises(KeyboardInterrupt):
        export_model(digits_run, ["tflite"], ["fp32", "fp16"], out, log=lambda s: None)
    assert not out.exists()


def test_staging_left_by_a_crashed_export_is_cleaned_up(digits_run, tmp_path):
    """A converter crash kills the process before it can clean up; the next export removes what it left."""
    out = tmp_path / "exp"
    stale = out / ".edgekit-staging-4194399"  # above Linux's largest pid: that process cannot be alive
    stale.mkdir(parents=True)
    (stale / "model_fp32.tflite").write_bytes(b"half")
    r = edgekit_cli("export", digits_run, "--format", "tflite", "--quant", "fp32", "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_fp32.tflite"]


def test_a_converter_crash_costs_one_artifact_not_the_export(digits_run, tmp_path):
    """A converter that dies from a signal (fault injected: SIGSEGV while converting tflite fp16)."""
    out = tmp_path / "exp"
    r = edgekit_cli("export", digits_run, "--format", "tflite,onnx", "--quant", "fp32,fp16", "--out", out,
                    env={"EDGEKIT_FAULT_INJECT": "tflite:fp16"})
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "the converter crashed (SIGSEGV)" in r.stdout
    arts = {(a.format, a.quant): a for a in Manifest.load(out).artifacts}
    assert arts[("tflite", "fp16")].status == "export_failed" and "crashed (SIGSEGV)" in arts[("tflite", "fp16")].error
    assert all(arts[k].ok for k in (("tflite", "fp32"), ("onnx", "fp32"), ("onnx", "fp16")))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_fp16.onnx", "model_fp32.onnx", "model_fp32.tflite"]


def test_the_python_api_export_is_isolated_too(digits_run, tmp_path, monkeypatch):
    """edgekit.export runs the converters in a child: a crash there leaves the caller's process alive."""
    import edgekit

    monkeypatch.setenv("EDGEKIT_FAULT_INJECT", "tflite:fp16")
    lines = []
    manifest = edgekit.export(digits_run, ["tflite"], ["fp32", "fp16"], tmp_path / "exp", log=lines.append)
    arts = {a.quant: a for a in manifest.artifacts}
    assert arts["fp32"].ok and arts["fp16"].status == "export_failed" and "SIGSEGV" in arts["fp16"].error
    assert any("crashed (SIGSEGV)" in line for line in lines)


def test_an_int8_calibration_that_crashes_the_export_child_is_retried_in_a_child_of_its_own(digits_run, tmp_path):
    """int8 calibration runs in the export child (no second TensorFlow import); when it crashes
    there (fault injected: SIGSEGV inside the conversion), the export runs again with the
    calibration in a child of its own, whose crash the int8 export can answer."""
    out = tmp_path / "exp"
    r = edgekit_cli("export", digits_run, "--format", "tflite", "--quant", "fp32,int8", "--out", out,
                    env={"EDGEKIT_FAULT_INJECT": "tflite-calibration"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tflite int8: the converter crashed (SIGSEGV); exporting again with int8 calibration isolated" in r.stdout
    assert all(a.ok for a in Manifest.load(out).artifacts)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_fp32.tflite", "model_int8.tflite"]


def test_an_export_server_serves_many_exports_from_one_child_and_survives_a_crash(digits_run, tmp_path, monkeypatch):
    from edgekit.exporters.supervised import ExportServer, export_supervised

    monkeypatch.setenv("EDGEKIT_FAULT_INJECT", "tflite:fp16")
    steps = []
    with ExportServer() as server:
        first = export_supervised(digits_run, ["tflite"], ["fp32", "fp16"], tmp_path / "a", log=lambda s: None,
                                  progress=steps.append, server=server)
        pid = server.proc.pid  # the child that took over after the crash
        second = export_supervised(digits_run, ["tflite"], ["int8"], tmp_path / "b", log=lambda s: None, server=server)
        assert server.proc.pid == pid  # the same child served the next export
        proc = server.proc
    assert proc.poll() is not None  # closed with the server
    assert {a.quant: a.status for a in first.artifacts} == {"fp32": "ok", "fp16": "export_failed"}
    # the progress bar's steps: the crashed run's two, then the rerun's one (fp16 is skipped, not started)
    assert [s for s in steps if s.startswith("[")] == ["[1/2] exporting tflite fp32", "[2/2] exporting tflite fp16",
                                                       "[1/2] exporting tflite fp32"], steps
    assert second.artifacts[0].ok and (tmp_path / "b" / "model_int8.tflite").is_file()


def test_lambda_layer_code_is_refused_unless_unsafe(tmp_path):
    import keras

    i = keras.Input((4,))
    keras.Model(i, keras.layers.Dense(2)(keras.layers.Lambda(lambda x: x * 2)(i))).save(tmp_path / "lambda.keras")
    r = edgekit_cli("export", tmp_path / "lambda.keras", "--out", tmp_path / "a")
    assert r.returncode == 2 and "safe mode refuses" in r.stderr and "--unsafe" in r.stderr
    assert not (tmp_path / "a").exists()
    r = edgekit_cli("export", tmp_path / "lambda.keras", "--unsafe", "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr


def test_int8_retries_with_float_fallback_and_says_so(digits_run, tmp_path, monkeypatch):
    """A full-integer conversion that fails (fault injected: the first, integer-only attempt raises) is
    retried with float kernels allowed; the artifact is valid, float-in/float-out, and details.fallback
    says why."""
    from edgekit.errors import ExportError
    from edgekit.exporters import tflite
    from edgekit.exporters.pipeline import export_model

    real = tflite._convert_in_child
    attempts = []

    def integer_only_fails(saved_model, calibration, options, details, float_fallback, **kw):
        attempts.append(float_fallback)
        if not float_fallback:
            raise ExportError("injected: no int8 kernel for op FOO")
        return real(saved_model, calibration, options, details, float_fallback=float_fallback, **kw)

    monkeypatch.setattr(tflite, "_convert_in_child", integer_only_fails)
    m = export_model(digits_run, ["tflite"], ["int8"], tmp_path / "out", log=lambda s: None)
    art = m.artifacts[0]
    assert attempts == [False, True]
    assert art.ok, art.error
    assert "full-integer conversion failed (injected: no int8 kernel for op FOO)" in art.details["fallback"]
    assert art.details["input_dtype"] == "float32" and art.parity["top1_agreement"] >= 0.95


def test_an_int8_model_that_keeps_float_ops_says_so(digits_export, tmp_path):
    """The converter wraps an op without an integer kernel (SIN) in DEQUANTIZE/QUANTIZE even in
    full-integer mode; the manifest and the export line name it instead of calling the file plain int8."""
    import tensorflow as tf

    class Sine(tf.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(0)
            self.w1 = tf.Variable(rng.normal(size=(8, 16)).astype(np.float32))
            self.w2 = tf.Variable(rng.normal(size=(16, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def serve(self, x):
            return {"probs": tf.nn.softmax(tf.matmul(tf.sin(tf.matmul(x, self.w1)), self.w2))}

    m = Sine()
    tf.saved_model.save(m, str(tmp_path / "sine"), signatures={"serving_default": m.serve})
    r = edgekit_cli("export", tmp_path / "sine", "--format", "tflite", "--quant", "int8", "--calib", "uniform:0,1",
                    "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "1 op(s) run in float32 (SIN: no integer kernel)" in r.stdout
    art = json.loads((tmp_path / "o" / "manifest.json").read_text())["artifacts"][0]
    assert art["details"]["float_ops"] == {"SIN": 1}
    plain = next(a for a in Manifest.load(digits_export).artifacts if a.quant == "int8")
    assert "float_ops" not in plain.details  # a CNN is integer all through
