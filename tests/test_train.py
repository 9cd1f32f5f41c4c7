"""Training: recipes, the run record, a user's model file with a custom layer, mirrored strategy."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import edgekit_cli

from edgekit.run_record import RunRecord


@pytest.mark.parametrize("recipe", ["mlp", "cnn", "ds-cnn", "mobilenet-v2", "resnet8"])
def test_every_recipe_builds_and_predicts(recipe):
    import numpy as np

    from edgekit.trainer.recipes import build_recipe

    for shape in ((8, 8, 1), (32, 32, 3)):
        model = build_recipe(recipe, shape, 5, width=0.5)
        out = model(np.zeros((2, *shape), np.float32))
        assert tuple(out.shape) == (2, 5)
        np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-4)


def test_run_record(digits_run):
    rec = RunRecord.load(digits_run)
    assert (digits_run / "model.keras").is_file()
    assert rec.input_shape == [8, 8, 1] and rec.labels == [str(i) for i in range(10)]
    assert rec.metrics["test_accuracy"] > 0.9
    assert rec.data["spec"] == "builtin:digits" and len(rec.data["fingerprint"]) == 16
    assert rec.training["device"].startswith(("CPU", "GPU"))
    assert rec.preprocessing["scale"] == pytest.approx(1 / 16)
    assert "keras" in rec.versions, rec.versions
    assert "tensorflow-cpu" in rec.versions or "tensorflow" in rec.versions, rec.versions
    assert not list(digits_run.parent.glob(".*partial*")), "staging folder left behind"


def test_refuses_to_overwrite_a_run(digits_run):
    r = edgekit_cli("train", "cnn", "--data", "builtin:digits", "--out", digits_run, "--epochs", "1")
    assert r.returncode == 2 and "--overwrite" in r.stderr


CUSTOM = '''
import keras

@keras.saving.register_keras_serializable(package="user")
class Gain(keras.layers.Layer):
    def __init__(self, gain=2.0, **kw):
        super().__init__(**kw)
        self.gain = gain
    def call(self, x):
        return x * self.gain
    def get_config(self):
        return {**super().get_config(), "gain": self.gain}

@keras.saving.register_keras_serializable(package="user")
def smooth_loss(y_true, y_pred):
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * 1.0

loss = smooth_loss

def build_model(input_shape, num_classes):
    inp = keras.Input(input_shape)
    x = Gain(0.5)(keras.layers.Flatten()(inp))
    x = keras.layers.Dense(32, activation="relu")(x)
    return keras.Model(inp, keras.layers.Dense(num_classes, activation="softmax")(x))
'''


def test_custom_model_file_trains_exports_and_benches(tmp_path):
    model_py = tmp_path / "my_model.py"
    model_py.write_text(textwrap.dedent(CUSTOM))
    run = tmp_path / "run"
    r = edgekit_cli("train", model_py, "--data", "builtin:digits", "--out", run, "--epochs", "8")
    assert r.returncode == 0, r.stderr
    assert "training on CPU" in r.stdout or "training on GPU" in r.stdout
    rec = json.loads((run / "edgekit.json").read_text())
    assert rec["custom_code"] == "model_def.py" and (run / "model_def.py").is_file()
    r = edgekit_cli("export", run, "--format", "tflite", "--quant", "fp32,int8", "--out", tmp_path / "exp")
    assert r.returncode == 0, r.stdout + r.stderr
    r = edgekit_cli("bench", tmp_path / "exp", "--runs", "20", "--min-time", "0", "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [row["runtime"] for row in rows] == ["keras", "litert", "litert"]
    assert all(row["accuracy"] > 0.6 for row in rows)
    # the custom layer also goes to ONNX and TF.js, with parity, and inspect names it
    r = edgekit_cli("export", run, "--format", "onnx,tfjs", "--quant", "fp32", "--out", tmp_path / "exp2")
    assert r.returncode == 0, r.stdout + r.stderr
    r = edgekit_cli("inspect", run, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert "Gain" in [layer["type"] for layer in info["layers"]] and info["formats"] == {"tflite": True, "onnx": True, "tfjs": True}
    assert info["macs"] == 64 * 32 + 32 * 10 and info["params"] == 64 * 32 + 32 + 32 * 10 + 10


def test_model_file_without_build_model(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    r = edgekit_cli("train", bad, "--data", "builtin:digits", "--out", tmp_path / "r")
    assert r.returncode == 2 and "defines no build_model" in r.stderr


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    run = tmp_path / "mirrored"
    r = edgekit_cli("train", "mlp", "--data", "builtin:digits", "--out", run, "--epochs", "2",
                    "--strategy", "mirrored", env={"EDGEKIT_LOGICAL_CPUS": "2"})
    assert r.returncode == 0, r.stderr
    rec = json.loads((run / "edgekit.json").read_text())
    assert rec["training"]["strategy"] == "mirrored" and rec["training"]["replicas"] == 2
    assert "mirrored over 2 replica(s)" in r.stdout


def test_training_on_data_on_disk_reads_it_a_batch_at_a_time(tmp_path, monkeypatch):
    """An .npz is memory-mapped; training feeds Keras one batch of rows at a time, never the split."""
    import numpy as np
    from sklearn.datasets import load_digits

    from edgekit.data import batches
    from edgekit.trainer.fit import train

    d = load_digits()
    x, y = d.images.astype(np.float32)[..., None], d.target
    np.savez(tmp_path / "digits.npz", x_train=x[:1400], y_train=y[:1400], x_test=x[1400:], y_test=y[1400:])
    sizes = []
    real = batches.SplitBatches.__getitem__
    monkeypatch.setattr(batches.SplitBatches, "__getitem__", lambda self, i: sizes.append(len(real(self, i)[0])) or real(self, i))
    record = train("mlp", str(tmp_path / "digits.npz"), tmp_path / "run", epochs=3, batch_size=32, verbose=0,
                   log=lambda s: None)
    assert sizes and max(sizes) <= 32 and len(sizes) >= 3 * (1400 * 0.9 // 32)
    assert record.metrics["test_accuracy"] > 0.8  # mlp on digits; scaled by the npz's own preprocessing


def test_augmented_training_writes_history_and_exports_no_augmentation(tmp_path):
    """--augment is active in training only: model.keras and every artifact hold none of its layers or ops."""
    import keras

    run = tmp_path / "run"
    r = edgekit_cli("train", "cnn", "--data", "builtin:digits", "--out", run, "--epochs", "3", "--augment")
    assert r.returncode == 0, r.stderr
    rec = RunRecord.load(run)
    assert rec.training["augment"] is True and rec.training["samples_per_s"] > 0
    model = keras.saving.load_model(run / "model.keras")
    assert not [layer for layer in model.layers if type(layer).__name__.startswith("Random")]
    history = json.loads((run / "history.json").read_text())
    assert set(history) >= {"loss", "val_loss", "accuracy", "val_accuracy"} and len(history["loss"]) == 3
    assert (run / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = edgekit_cli("export", run, "--format", "tflite,onnx", "--quant", "fp32", "--out", tmp_path / "exp")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        ops = " ".join(art["details"]["operators"]).lower()
        assert "random" not in ops and "imageprojectivetransform" not in ops, art["details"]["operators"]


def test_augment_on_feature_vectors_is_one_line(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("a,b,label\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(40)) + "\n")
    r = edgekit_cli("train", "mlp", "--data", csv, "--out", tmp_path / "r", "--augment")
    assert r.returncode == 2 and "--augment applies to images" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_training_that_diverges_says_so_and_exits_1(tmp_path):
    """A learning rate of 1e6 makes the loss NaN: train must not call that a success."""
    run = tmp_path / "run"
    r = edgekit_cli("train", "mlp", "--data", "builtin:digits", "--out", run, "--epochs", "3", "--lr", "1e6")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "train FAILED" in r.stderr and "lower the learning rate" in r.stderr
    assert "Traceback" not in r.stderr
    assert RunRecord.load(run).training["problems"]


def test_diagnosis_names_validation_at_chance_and_early_stopping_without_improvement():
    from edgekit.trainer.diagnosis import diagnose

    chance = {"loss": [2.0, 0.6, 0.3, 0.2], "accuracy": [0.4, 0.85, 0.93, 0.96],
              "val_loss": [2.3, 2.4, 2.6, 2.7], "val_accuracy": [0.1, 0.096, 0.1, 0.095]}
    problems = diagnose(chance, num_classes=10, epochs_requested=30)
    assert any("stayed at chance" in p and "BatchNormalization" in p for p in problems)
    assert any("never improved on epoch 1" in p for p in problems)
    sound = {"loss": [1.0, 0.5, 0.3], "accuracy": [0.7, 0.85, 0.9], "val_loss": [0.8, 0.5, 0.4],
             "val_accuracy": [0.75, 0.85, 0.88]}
    assert diagnose(sound, num_classes=10, epochs_requested=3) == []
    assert diagnose({"loss": [1.0, float("nan")]}, num_classes=2, epochs_requested=5)[0].startswith("the loss became NaN")


def test_early_stopping_keeps_the_best_epoch_not_the_last(tmp_path):
    """Through the Python API: a learning rate high enough that validation loss bounces; the saved
    model is the epoch with the lowest validation loss, not the last one."""
    import keras
    import numpy as np

    import edgekit
    from edgekit.data import load_data

    rec = edgekit.train("cnn", "builtin:digits", tmp_path / "run", epochs=8, learning_rate=0.004, lr_schedule="constant",
                        patience=20, verbose=0, log=lambda s: None)
    val_loss = rec.training["history"]["val_loss"]
    assert val_loss[-1] > min(val_loss) + 1e-3, val_loss  # the last epoch is not the best: the check means something
    ds = load_data("builtin:digits")
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    probs = saved.predict(ds.prepared("val"), verbose=0)
    loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(ds.y_val, probs)))
    assert loss == pytest.approx(min(val_loss), abs=2e-3), (loss, val_loss)
    assert rec.metrics["best_val_loss"] == pytest.approx(min(val_loss))


def test_mixed_precision_without_a_gpu_says_so_and_trains_in_float32(tmp_path):
    r = edgekit_cli("train", "cnn", "--data", "builtin:digits", "--epochs", "1", "--mixed-precision",
                    "--out", tmp_path / "run")
    rec = RunRecord.load(tmp_path / "run")
    if rec.training["device"].startswith("GPU"):
        assert rec.training["precision"] == "mixed_float16"
        return
    assert "--mixed-precision needs a GPU and TensorFlow sees none; training in float32" in r.stdout + r.stderr
    assert rec.training["precision"] == "float32"
