"""Several inputs and outputs: the seven kinds of model users bring, each exported to every format
and quant mode, as one table of artifacts ok out of artifacts tried.

The models: a two-input (image + feature vector), three-head (softmax class, linear value,
sigmoid tags) Keras 3 model; a detector-style head (boxes and scores); text classifiers on int32
ids (``Embedding`` then LSTM, and ``Embedding`` then Conv1D); a subclassed model returning a dict;
a SavedModel written from a ``tf.Module`` with a two-input, two-output signature; a Keras 2
``.h5`` with two outputs. This measures that every artifact converts, loads in its runtime and
passes parity per output, not accuracy: the models keep random weights, except the text
classifiers, trained for a few epochs on a 4-class id task (a random LSTM's four scores are
near-tied, so top-1 agreement on them would measure noise).

Calibration: ``uniform:LO,HI`` (ids: ``0,999``, the Embedding's range). Target: every artifact ok (an artifact that fails is listed with its reason).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import Results
from coverage_models import trained


def _two_input_three_head(d: Path) -> Path:
    import keras

    image, features = keras.Input((8, 8, 1), name="image"), keras.Input((5,), name="features")
    h = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, activation="relu")(image))
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()([h, keras.layers.Dense(16)(features)]))
    model = keras.Model({"image": image, "features": features}, {
        "label": keras.layers.Dense(3, activation="softmax", name="label")(h),
        "size": keras.layers.Dense(1, name="size")(h),
        "tags": keras.layers.Dense(4, activation="sigmoid", name="tags")(h)})
    model.save(d / "two_input_three_head.keras")
    return d / "two_input_three_head.keras"


def _detector(d: Path) -> Path:
    import keras

    inp = keras.Input((16, 16, 3), name="frame")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp))
    keras.Model(inp, [keras.layers.Dense(8, name="boxes")(h),
                      keras.layers.Dense(2, activation="sigmoid", name="scores")(h)]).save(d / "detector.keras")
    return d / "detector.keras"


def _text(body: str):
    def build(d: Path) -> Path:
        import keras

        tokens = keras.Input((20,), dtype="int32", name="tokens")
        h = keras.layers.Embedding(1000, 16)(tokens)
        h = keras.layers.LSTM(16)(h) if body == "lstm" else keras.layers.GlobalMaxPooling1D()(
            keras.layers.Conv1D(16, 3, activation="relu")(h))
        model = keras.Model(tokens, keras.layers.Dense(4, activation="softmax")(h))
        # trained: an untrained classifier's near-tied scores make top-1 agreement a coin toss
        trained(model, epochs=4)[0].save(d / f"text_{body}.keras")
        return d / f"text_{body}.keras"

    return build


def _subclassed(d: Path) -> Path:
    import keras

    @keras.saving.register_keras_serializable(package="edgekit_bench")
    class TwoHeads(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.body, self.a, self.b = keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3), keras.layers.Dense(2)

        def call(self, x):
            h = self.body(x)
            return {"logits": self.a(h), "extra": self.b(h)}

    sub = TwoHeads()
    sub(np.zeros((1, 6), np.float32))
    sub.save(d / "subclassed.keras")
    return d / "subclassed.keras"


def _tf_module(d: Path) -> Path:
    import tensorflow as tf

    class Scorer(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="query"),
                                      tf.TensorSpec([None, 3], tf.float32, name="bias")])
        def serve(self, query, bias):
            logits = tf.matmul(query, self.w) + bias
            return {"probs": tf.nn.softmax(logits), "norm": tf.norm(query, axis=1, keepdims=True)}

    module = Scorer()
    tf.saved_model.save(module, str(d / "tf_module_savedmodel"), signatures={"serving_default": module.serve})
    return d / "tf_module_savedmodel"


def _keras2_h5(d: Path) -> Path:
    import tf_keras

    i = tf_keras.Input((6,), name="x")
    h = tf_keras.layers.Dense(8, activation="relu")(i)
    tf_keras.Model(i, [tf_keras.layers.Dense(3, activation="softmax", name="cls")(h),
                       tf_keras.layers.Dense(1, name="value")(h)]).save(d / "keras2_two_outputs.h5")
    return d / "keras2_two_outputs.h5"


QUANTS = ["fp32", "fp16", "dynamic", "int8", "uint8"]  # each format takes the modes it has (TF.js: fp32, fp16, uint8)

MODELS = {
    "two inputs, three heads (Keras 3 dicts)": (_two_input_three_head, "uniform:0,1"),
    "detector head (boxes, scores)": (_detector, "uniform:0,1"),
    "int32 ids: Embedding + LSTM": (_text("lstm"), "uniform:0,999"),
    "int32 ids: Embedding + Conv1D": (_text("conv1d"), "uniform:0,999"),
    "subclassed, dict outputs": (_subclassed, "uniform:0,1"),
    "SavedModel from tf.Module (2 in, 2 out)": (_tf_module, "uniform:-1,1"),
    "Keras 2 .h5, two outputs": (_keras2_h5, "uniform:0,1"),
}


def main() -> bool:
    import keras

    import edgekit

    res = Results("multi_io_export")
    print("several inputs and outputs: seven kinds of model x every format x every quant mode")
    total_ok = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i, (label, (build, calib)) in enumerate(MODELS.items()):
            keras.utils.set_random_seed(i)
            path = build(tmp)
            t0 = time.perf_counter()
            # a class registered in this process is not importable by a converter child: subclassed runs here
            manifest = edgekit.export(str(path), ["tflite", "onnx", "tfjs"], QUANTS, str(tmp / f"out{i}"),
                                      calib=calib, isolate=build is not _subclassed, log=lambda s: None)
            ok = [a for a in manifest.artifacts if a.ok]
            failed = [f"{a.format} {a.quant}: {a.error}" for a in manifest.artifacts if not a.ok]
            total_ok, total = total_ok + len(ok), total + len(manifest.artifacts)
            ins = ", ".join(f"{s['name']} {s['dtype']}" for s in manifest.source["inputs"])
            outs = ", ".join(s["name"] for s in manifest.source["outputs"])
            res.add(f"{label} [{ins} -> {outs}]", f"{len(ok)}/{len(manifest.artifacts)} ok "
                    f"({time.perf_counter() - t0:.0f} s)", "all ok", not failed, failed=failed)
            for f in failed:
                print(f"      failed: {f}")
    res.add("all seven models", f"{total_ok}/{total} artifacts ok", "all ok", total_ok == total)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
