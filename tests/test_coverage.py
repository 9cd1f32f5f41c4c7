"""Architectures nobody here wrote: one regression case per converter failure found on them, and a
small sweep over the layer families users build with (the full sweep is benchmarks/coverage.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import coverage_models as zoo  # noqa: E402

QUIET = {"log": lambda s: None}


def _export(model, tmp_path: Path, formats, quants, **kwargs):
    import edgekit

    path = tmp_path / "model.keras"
    model.save(path)
    return edgekit.export(str(path), formats, quants, str(tmp_path / "out"), isolate=False, **QUIET, **kwargs)


def _one(manifest, fmt: str, quant: str):
    return next(a for a in manifest.artifacts if a.format == fmt and a.quant == quant)


def test_onnx_artifact_has_exactly_the_source_inputs_with_an_adapted_normalization(tmp_path):
    """EfficientNet's case: a loaded Normalization layer holds mean/variance as captured constants, which
    became 2 extra ONNX graph inputs; they are initializers now, and the artifact runs."""
    import keras
    import onnx

    x = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 3)).astype(np.float32)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(norm(inp)))
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    manifest = _export(model, tmp_path, ["onnx"], ["fp32", "int8"], calib="uniform:0,255")
    for quant in ("fp32", "int8"):
        art = _one(manifest, "onnx", quant)
        assert art.ok, art.error
        graph = onnx.load(tmp_path / "out" / art.path).graph
        assert [i.name for i in graph.input] == ["input"]
    assert _one(manifest, "onnx", "fp32").parity["max_abs_diff"] < 1e-4


def test_a_nested_model_with_dropout_converts_to_tflite_with_no_training_op(tmp_path):
    """MobileNetV3 nested in a user's model behind a Resizing layer kept its Dropout's random ops (the
    SavedModel was traced with ``training`` unset): the TFLite converter refused them."""
    import keras

    inner_in = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inner_in))
    inner = keras.Model(inner_in, keras.layers.Dense(3)(keras.layers.Dropout(0.5)(h)))
    inp = keras.Input((6, 6, 3))
    model = keras.Model(inp, inner(keras.layers.Resizing(8, 8)(keras.layers.Rescaling(1 / 255)(inp))))
    manifest = _export(model, tmp_path, ["tflite"], ["fp32"])
    art = _one(manifest, "tflite", "fp32")
    assert art.ok, art.error
    assert art.parity["max_abs_diff"] < 1e-5
    assert not any("RANDOM" in op for op in art.details["operators"])


def test_exact_gelu_exports_to_onnx_as_erf(tmp_path):
    """Exact GELU reached tf2onnx as Erfc, which ONNX lacks ("No Op registered for Erfc")."""
    import keras

    inp = keras.Input((6,))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(8, activation="gelu")(inp)))
    manifest = _export(model, tmp_path, ["onnx"], ["fp32", "fp16"])
    for quant in ("fp32", "fp16"):
        art = _one(manifest, "onnx", quant)
        assert art.ok, art.error
        assert "Erf" in art.details["operators"] and "Erfc" not in art.details["operators"]
    assert _one(manifest, "onnx", "fp32").parity["max_abs_diff"] < 1e-5


def test_an_op_onnx_lacks_is_named_with_its_layer():
    from onnx import TensorProto, helper

    from edgekit.errors import ExportError
    from edgekit.exporters.onnx import _refuse_unconverted, _rewrite_exact

    def graph(op):
        node = helper.make_node(op, ["x"], ["y"], name="functional_1/my_layer_1/" + op)
        return helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])

    g = graph("Erfc")
    _rewrite_exact(g)
    assert [n.op_type for n in g.node] == ["Erf", "Sub"]
    _refuse_unconverted(g, 18)
    with pytest.raises(ExportError, match="TensorFlow's Bessel0e .in layer functional_1/my_layer_1."):
        _refuse_unconverted(graph("Bessel0e"), 18)


def test_int8_of_a_token_id_model_keeps_integer_ids_and_its_accuracy(tmp_path):
    """An Embedding + LSTM on int32 ids: TFLite int8 agreed 0.29 (0.000 with --calib uniform:0,999) because
    the ids went through float calibration and were quantized to int8 at the input."""
    from ai_edge_litert.interpreter import Interpreter

    model, (x, y), acc = zoo.trained(zoo.text("lstm")(), epochs=3)
    assert acc > 0.8  # a model that learned something: agreement is meaningful
    data = tmp_path / "ids.npz"
    np.savez(data, x_train=x[:200], y_train=y[:200], x_test=x, y_test=y)
    for calib in (str(data), "uniform:0,999"):
        manifest = _export(model, tmp_path, ["tflite", "onnx"], ["int8"], calib=calib)
        for fmt in ("tflite", "onnx"):
            art = _one(manifest, fmt, "int8")
            assert art.ok, (calib, art.error)
            assert art.parity["top1_agreement"] >= 0.95 and art.parity["cosine"] > 0.99, (calib, fmt, art.parity)
            assert art.details["input_dtype"] == "int32"
    interp = Interpreter(model_path=str(tmp_path / "out" / _one(manifest, "tflite", "int8").path))
    assert interp.get_input_details()[0]["dtype"] == np.int32


@pytest.mark.parametrize("family", sorted(zoo.FAMILIES))
def test_layer_families_export_to_every_format_exactly(family, tmp_path):
    """Attention, GELU/swish/hard_swish, decoders, Embedding into Conv1D/LSTM/GRU/attention, subclassed
    models and custom layers: fp32 in TFLite, ONNX and TF.js, each run against Keras."""
    model = zoo.FAMILIES[family]()
    manifest = _export(model, tmp_path, ["tflite", "onnx", "tfjs"], ["fp32"])
    assert len(manifest.artifacts) == 3
    for art in manifest.artifacts:
        assert art.ok, f"{art.format}: {art.error}"
        assert art.parity["max_abs_diff"] < 1e-4, (art.format, art.parity)


def test_inspect_says_which_ops_edgekit_rewrites_before_converting(tmp_path):
    from edgekit.inspect_model import inspect_model

    path = tmp_path / "vit.keras"
    zoo.attention_exact_gelu().save(path)
    info = inspect_model(path)
    assert all(info["formats"].values()), info["blockers"]
    assert any(r.startswith("Erfc") for r in info["rewrites"]["onnx"])
    assert {r.split(" ")[0] for r in info["rewrites"]["tfjs"]} == {"Erfc", "Einsum"}
