"""Fuzzing the converters with generated architectures (``make fuzz``, not part of ``make test``).

The loader targets mutate bytes; this one writes *valid* models the converters have never seen:
hypothesis draws a small Keras 3 model from a grammar (images: Conv2D, DepthwiseConv2D,
pooling, BatchNormalization; sequences: Conv1D, LSTM, GRU, SimpleRNN, Bidirectional; vectors:
Dense, LayerNormalization, Dropout; then a head), and ``edgekit.export`` converts it to every
format in fp32 and int8. What must hold, for every drawn model:

- the export returns a manifest (never an internal error, never a crash of edgekit);
- every artifact is ``ok`` or failed with a one-line reason; an ``ok`` file is whole;
- an ``ok`` fp32 artifact computes what Keras computes (max abs diff < 1e-4): a converter that
  silently changes the result is a finding.

Outcomes are recorded as hypothesis events (``pytest --hypothesis-show-statistics``). Found so
far: LiteRT computed an LSTM(return_sequences) feeding a SimpleRNN/GRU loop wrong (max abs diff
0.04); the TFLite exporter now unrolls such loops (``recurrent.fused_lstm_beside_loop``).

    FUZZ_EXAMPLES=200 make fuzz      # 10 architectures
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

N = int(os.environ.get("FUZZ_EXAMPLES", "200"))

activations = st.sampled_from([None, "relu", "tanh", "sigmoid", "relu6"])


def _layer(name: str, **kwargs):
    """A layer spec: built in the test, under the drawn seed (hypothesis forbids seeding in strategies)."""
    return name, kwargs


@st.composite
def image_layers(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "depthwise", "pool", "batchnorm"]))
        if kind == "conv":
            layers.append(_layer("Conv2D", filters=draw(st.integers(1, 8)), kernel_size=draw(st.sampled_from([1, 3])),
                                 strides=draw(st.sampled_from([1, 2])), padding="same", activation=draw(activations)))
        elif kind == "depthwise":
            layers.append(_layer("DepthwiseConv2D", kernel_size=3, padding="same", activation=draw(activations)))
        elif kind == "pool":
            layers.append(_layer(draw(st.sampled_from(["MaxPooling2D", "AveragePooling2D"])), pool_size=2, padding="same"))
        else:
            layers.append(_layer("BatchNormalization"))
    layers.append(_layer(draw(st.sampled_from(["GlobalAveragePooling2D", "Flatten"]))))
    return (draw(st.sampled_from([8, 12])), draw(st.sampled_from([8, 12])), draw(st.sampled_from([1, 3]))), layers


@st.composite
def sequence_layers(draw):
    layers = []
    depth = draw(st.integers(1, 2))
    for k in range(depth):
        last = k == depth - 1
        kind = draw(st.sampled_from(["conv1d", "lstm", "gru", "simplernn", "bidirectional"]))
        units = draw(st.integers(2, 8))
        if kind == "conv1d":
            layers.append(_layer("Conv1D", filters=units, kernel_size=3, padding="same", activation=draw(activations)))
            if last:
                layers.append(_layer("GlobalAveragePooling1D"))
            continue
        rnn = {"lstm": "LSTM", "gru": "GRU", "simplernn": "SimpleRNN",
               "bidirectional": draw(st.sampled_from(["LSTM", "GRU"]))}[kind]
        backwards = kind != "bidirectional" and draw(st.booleans())  # Bidirectional makes its own backward copy
        spec = _layer(rnn, units=units, return_sequences=not last, go_backwards=backwards)
        layers.append(_layer("Bidirectional", layer=spec) if kind == "bidirectional" else spec)
    return (draw(st.integers(3, 12)), draw(st.integers(1, 6))), layers


@st.composite
def vector_layers(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["dense", "layernorm", "dropout"]))
        if kind == "dense":
            layers.append(_layer("Dense", units=draw(st.integers(1, 16)), activation=draw(activations)))
        elif kind == "layernorm":
            layers.append(_layer("LayerNormalization"))
        else:
            layers.append(_layer("Dropout", rate=0.5))
    return (draw(st.integers(1, 20)),), layers


@st.composite
def architectures(draw):
    shape, layers = draw(st.one_of(image_layers(), sequence_layers(), vector_layers()))
    head = _layer("Dense", units=draw(st.integers(2, 5)), activation=draw(st.sampled_from(["softmax", None])))
    return draw(st.integers(0, 2**16)), shape, [*layers, head]


def _build(seed: int, shape: tuple[int, ...], specs: list):
    import keras

    def make(spec):
        name, kwargs = spec
        kwargs = {k: make(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
        return getattr(keras.layers, name)(**kwargs)

    keras.utils.set_random_seed(seed)
    i = keras.Input(shape)
    x = i
    for spec in specs:
        x = make(spec)(x)
    return keras.Model(i, x)


@settings(max_examples=max(N // 20, 3), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(drawn=architectures())
def test_converters_on_generated_architectures(drawn):
    import edgekit
    from edgekit.artifact import Manifest

    model = _build(*drawn)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "drawn.keras"
        model.save(path)
        event("layers: " + " > ".join(type(layer).__name__ for layer in model.layers[1:]))
        out = tmp / "out"
        edgekit.export(path, ["tflite", "onnx", "tfjs"], ["fp32", "int8"], out, calib="uniform:-1,1",
                       log=lambda line: None)
        for a in Manifest.load(out).artifacts:
            event(f"{a.format} {a.quant}: {a.status}")
            if a.ok:
                assert (out / a.path).exists()
            else:
                assert a.error and "\n" not in a.error and "internal error" not in a.error, (a.format, a.quant, a.error)
            if a.quant == "fp32":
                assert a.ok, (a.format, a.error, [type(layer).__name__ for layer in model.layers])
                assert a.parity["max_abs_diff"] < 1e-4, (a.format, a.parity, [layer.get_config() for layer in model.layers])
