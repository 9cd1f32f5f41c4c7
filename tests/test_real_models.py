"""Real models: MLPerf Tiny references in every format, against the authors' int8 files; recurrent layers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mlperf

from edgekit.artifact import Manifest


def _export(model, tmp_path, formats, quants, calib):
    from edgekit.exporters.pipeline import export_model

    return {(a.format, a.quant): a for a in
            export_model(model, formats, quants, tmp_path / "out", calib=calib, log=lambda s: None).artifacts}


@pytest.mark.parametrize("name,calib", [
    ("kws_ref_model", "uniform:-123.4,25.73"),  # a TF SavedModel; the range its authors' int8 file records
    ("vww_96.h5", "uniform:0,1"),               # a Keras 2 file that only tf_keras loads
])
def test_mlperf_models_export_to_every_format_and_agree(tmp_path, name, calib):
    arts = _export(mlperf(name), tmp_path, ["tflite", "onnx", "tfjs"], ["fp32", "fp16", "dynamic", "int8", "uint8"], calib)
    assert len(arts) == 11
    for (fmt, quant), a in arts.items():
        assert a.ok, f"{fmt} {quant}: {a.error}"
        assert a.parity["top1_agreement"] >= 0.99 and a.parity["cosine"] >= 0.999, (fmt, quant, a.parity)


def test_streaming_wake_word_int8_agrees_with_float_at_least_as_well_as_the_authors(tmp_path):
    """On the model's own real calibration samples, edgekit's int8 against the authors' int8 file."""
    from edgekit.parity import compare
    from edgekit.runtimes.isolated import run_isolated

    samples = mlperf("calibration_samples.npz")
    arts = _export(mlperf("str_ww_ref_model.h5"), tmp_path, ["tflite"], ["int8"], str(samples))
    ours = tmp_path / "out" / arts[("tflite", "int8")].path
    x = np.load(samples)["specs"].astype(np.float32)
    ref = run_isolated("keras", mlperf("str_ww_ref_model.h5"), x).outputs
    mine = compare(ref, run_isolated("litert", ours, x).outputs)
    theirs = compare(ref, run_isolated("litert", mlperf("str_ww_ref_model.tflite"), x).outputs)
    assert mine["top1_agreement"] >= theirs["top1_agreement"]
    assert mine["cosine"] >= theirs["cosine"] - 1e-4
    assert ours.stat().st_size <= mlperf("str_ww_ref_model.tflite").stat().st_size * 1.01


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    import keras

    tmp = tmp_path_factory.mktemp("rnn")
    keras.utils.set_random_seed(0)
    models = {}
    for kind in ("lstm", "gru"):
        i = keras.Input((20, 8))
        x = keras.layers.Conv1D(16, 3, activation="relu")(i) if kind == "lstm" else i  # Conv1D followed by LSTM
        x = keras.layers.LSTM(16)(x) if kind == "lstm" else keras.layers.Bidirectional(keras.layers.GRU(8))(x)
        keras.Model(i, keras.layers.Dense(4, activation="softmax")(x)).save(tmp / f"{kind}.keras")
        models[kind] = tmp / f"{kind}.keras"
    x = np.random.default_rng(0).normal(size=(300, 20, 8)).astype(np.float32)
    np.savez(tmp / "seq.npz", x_train=x[:200], x_test=x[200:])
    return models, tmp / "seq.npz"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_models_export_with_parity_and_say_what_they_cannot(sequences, tmp_path, kind):
    models, data = sequences
    arts = _export(models[kind], tmp_path, ["tflite", "onnx", "tfjs"], ["fp32", "dynamic", "int8"], str(data))
    for key in (("tflite", "fp32"), ("tflite", "dynamic"), ("onnx", "fp32"), ("onnx", "dynamic"), ("onnx", "int8")):
        a = arts[key]
        assert a.ok, f"{key}: {a.error}"
        assert a.parity["top1_agreement"] >= 0.95 and a.parity["cosine"] >= 0.999, (key, a.parity)
    assert "static shapes" in arts[("tflite", "fp32")].details["batch"]
    # Full-integer TFLite calibration crashes the converter on recurrent loops: contained, and said so.
    int8 = arts[("tflite", "int8")]
    assert int8.status == "export_failed" and "crashed (SIGSEGV)" in int8.error and "--quant dynamic" in int8.error
    # TF.js: the converted loop does not run (executeAsync); the failure says so, in the manifest.
    tfjs = arts[("tfjs", "fp32")]
    assert tfjs.status == "validation_failed" and "control flow (a recurrent layer's while loop)" in tfjs.error
    m = Manifest.load(tmp_path / "out")
    assert all((tmp_path / "out" / a.path).exists() for a in m.artifacts if a.ok)


def test_inspect_names_layers_operators_and_what_a_format_cannot_take(sequences, digits_run):
    from conftest import edgekit_cli

    r = edgekit_cli("inspect", digits_run)
    assert r.returncode == 0, r.stderr
    assert "1,035,520 MACs" in r.stdout and "Conv2D" in r.stdout and "every operator is supported" in r.stdout
    models, _ = sequences
    r = edgekit_cli("inspect", models["gru"], "--json")
    import json

    info = json.loads(r.stdout)
    assert info["operators"]["While"]["tfjs"] is False and info["operators"]["While"]["tflite"] is True
    assert any(b.startswith("While (in bidirectional") for b in info["blockers"]["tfjs"]), info["blockers"]
    r = edgekit_cli("inspect", "nope.keras")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
