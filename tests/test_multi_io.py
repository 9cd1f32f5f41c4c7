"""Models with several inputs and outputs, bound by name in every format and quant mode.

Built here as users build them: a two-input model (image + feature vector) with three heads
(softmax class, linear regression, sigmoid multi-label), a detector-style head (boxes and scores
from one backbone), a subclassed model returning a dict, a SavedModel written from a ``tf.Module``
with a two-input, two-output signature, and a Keras 2 ``.h5`` with two outputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edgekit_cli

from edgekit.artifact import Manifest

ALL = ["fp32", "fp16", "dynamic", "int8", "uint8"]


def _data(n: int = 400, seed: int = 0):
    """Images whose brightest quadrant is the class, features whose sum is the size, tags from both."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    image = rng.uniform(0, 0.5, (n, 8, 8, 1)).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        image[i, r * 4 : (r + 1) * 4, q * 4 : (q + 1) * 4] += 0.5
    features = rng.uniform(0, 1, (n, 5)).astype(np.float32)
    size = features.sum(1, keepdims=True).astype(np.float32)
    tags = np.stack([y == 0, y == 1, features[:, 0] > 0.5, features[:, 1] > 0.5], 1).astype(np.float32)
    return {"image": image, "features": features}, {"label": y, "size": size, "tags": tags}


@pytest.fixture(scope="module")
def two_input_three_head(tmp_path_factory):
    """A Keras 3 functional model with dict inputs and outputs, trained briefly, and its .npz data."""
    import keras

    keras.utils.set_random_seed(0)
    image, features = keras.Input((8, 8, 1), name="image"), keras.Input((5,), name="features")
    h = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, activation="relu")(image))
    h = keras.layers.Concatenate()([h, keras.layers.Dense(16, activation="relu")(features)])
    h = keras.layers.Dense(32, activation="relu")(h)
    model = keras.Model({"image": image, "features": features}, {
        "label": keras.layers.Dense(3, activation="softmax", name="label")(h),
        "size": keras.layers.Dense(1, name="size")(h),
        "tags": keras.layers.Dense(4, activation="sigmoid", name="tags")(h)})
    model.compile("adam", {"label": "sparse_categorical_crossentropy", "size": "mse", "tags": "binary_crossentropy"})
    x, y = _data()
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    tmp = tmp_path_factory.mktemp("multi")
    model.save(tmp / "model.keras")
    np.savez(tmp / "data.npz", image=x["image"], features=x["features"], y_label=y["label"], y_size=y["size"])
    return tmp


def test_a_two_input_three_head_model_exports_to_every_format_and_quant_with_parity_per_output(two_input_three_head):
    tmp = two_input_three_head
    r = edgekit_cli("export", tmp / "model.keras", "--format", "all", "--quant", "all", "--calib", tmp / "data.npz",
                    "--out", tmp / "exp")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 outputs, worst:" in r.stdout
    manifest = json.loads((tmp / "exp" / "manifest.json").read_text())
    assert [i["name"] for i in manifest["source"]["inputs"]] == ["features", "image"]
    assert {o["name"] for o in manifest["source"]["outputs"]} == {"label", "size", "tags"}
    arts = manifest["artifacts"]
    assert {(a["format"], a["quant"]) for a in arts} == {
        (f, q) for f, qs in (("tflite", ALL[:4]), ("onnx", ALL[:4]), ("tfjs", ["fp32", "fp16", "uint8"])) for q in qs}
    for a in arts:
        assert a["status"] == "ok", (a["format"], a["quant"], a["error"])
        per = a["parity"]["outputs"]
        assert set(per) == {"label", "size", "tags"}
        assert per["label"]["kind"] == "probabilities" and per["tags"]["kind"] == "scores" and per["size"]["kind"] == "values"
        io = a["io"]
        assert {i["name"] for i in io["inputs"]} == {"image", "features"}
        assert {o["name"] for o in io["outputs"]} == {"label", "size", "tags"}
        if a["quant"] in ("fp32", "fp16"):
            assert per["size"]["relative_error"] < 1e-2 and per["label"]["top1_agreement"] == 1.0, (a["path"], per)
    int8 = next(a for a in arts if a["format"] == "tflite" and a["quant"] == "int8")
    # the converter renames outputs StatefulPartitionedCall:N; edgekit binds them by the signature's names
    assert all(o["artifact_name"].startswith("StatefulPartitionedCall") for o in int8["io"]["outputs"])
    assert all(o["dtype"] == "int8" and o["quantization"]["scale"] > 0 for o in int8["io"]["outputs"])
    assert int8["parity"]["outputs"]["label"]["top1_agreement"] >= 0.95


def test_swapped_outputs_fail_parity_so_the_name_map_is_proven(two_input_three_head):
    """The parity check compares by name: two outputs switched would be caught, not passed."""
    from edgekit.parity import check, compare

    x, _ = _data(64, seed=3)
    from edgekit.model_loading import load_source

    src = load_source(two_input_three_head / "model.keras")
    ref = src.predict(x)
    swapped = dict(ref, label=ref["tags"][:, :3], tags=np.concatenate([ref["label"], ref["label"][:, :1]], 1))
    assert check(compare(ref, ref), "fp32", classifier=True) == []
    problems = check(compare(ref, swapped), "fp32", classifier=True)
    assert any(p.startswith("output 'label'") for p in problems) and any(p.startswith("output 'tags'") for p in problems)


def test_bench_feeds_several_inputs_and_reports_accuracy_per_labelled_output(two_input_three_head):
    tmp = two_input_three_head
    r = edgekit_cli("export", tmp / "model.keras", "--format", "tflite,onnx", "--quant", "fp32,int8",
                    "--calib", tmp / "data.npz", "--out", tmp / "exp_bench")
    assert r.returncode == 0, r.stderr
    r = edgekit_cli("bench", tmp / "exp_bench", "--data", tmp / "data.npz", "--output", "sise")
    assert r.returncode == 2 and "--output sise names no output: the model's outputs are label, size, tags" in r.stderr
    r = edgekit_cli("bench", tmp / "exp_bench", "--data", tmp / "data.npz", "--runs", "20", "--min-time", "0",
                    "--repeats", "1", "--json", tmp / "b.json", "--output", "size", "--markdown", tmp / "b.md")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((tmp / "b.json").read_text())["rows"]
    md = (tmp / "b.md").read_text()
    assert "those of output 'size'" in md and f"model_int8.onnx {next(r for r in rows if r['name'] == 'model_int8.onnx')['outputs']['size']['mae']:.4g}" in md
    assert all(r["accuracy"] is not None for r in rows)  # the JSON keeps the worst labelled output's accuracy
    assert {r["runtime"] for r in rows} == {"keras", "litert", "onnxruntime"}
    for row in rows:
        assert row["status"] == "ok" and row["latency_ms"]["p50"] > 0, row
        assert set(row["outputs"]) == {"label", "size", "tags"}
        assert row["outputs"]["label"]["accuracy"] > 0.8  # learned: the brightest quadrant
        assert "accuracy" not in row["outputs"]["tags"]  # no y_tags in the data
        if row["runtime"] != "keras":
            assert row["outputs"]["label"]["agreement"] >= 0.95
    # the gate compares every labelled output on its own
    r = edgekit_cli("baseline", tmp / "b.json", "--out", tmp / "base.json")
    assert r.returncode == 0, r.stderr
    r = edgekit_cli("check", tmp / "b.json", "--baseline", tmp / "base.json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((tmp / "b.json").read_text())
    worse = next(row for row in report["rows"] if row["runtime"] == "litert" and row["quant"] == "int8")
    worse["outputs"]["label"]["accuracy"] -= 0.1
    (tmp / "worse.json").write_text(json.dumps(report))
    r = edgekit_cli("check", tmp / "worse.json", "--baseline", tmp / "base.json")
    assert r.returncode == 1 and "output 'label' accuracy" in r.stdout + r.stderr, r.stdout + r.stderr


def test_a_detector_head_a_subclassed_model_and_a_keras2_h5_with_two_outputs(tmp_path):
    import keras
    import tf_keras

    import edgekit

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="frame")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp))
    detector = keras.Model(inp, [keras.layers.Dense(8, name="boxes")(h),
                                 keras.layers.Dense(2, activation="sigmoid", name="scores")(h)])
    detector.save(tmp_path / "detector.keras")

    @keras.saving.register_keras_serializable(package="edgekit_tests")
    class TwoHeads(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.body, self.a, self.b = keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3), keras.layers.Dense(2)

        def call(self, x):
            h = self.body(x)
            return {"logits": self.a(h), "extra": self.b(h)}

    sub = TwoHeads()
    sub(np.zeros((1, 6), np.float32))
    sub.save(tmp_path / "sub.keras")

    i2 = tf_keras.Input((6,), name="x")
    h2 = tf_keras.layers.Dense(8, activation="relu")(i2)
    k2 = tf_keras.Model(i2, [tf_keras.layers.Dense(3, activation="softmax", name="cls")(h2),
                             tf_keras.layers.Dense(1, name="value")(h2)])
    k2.save(tmp_path / "k2.h5")
    for name, outputs in (("detector.keras", {"boxes", "scores"}), ("sub.keras", {"logits", "extra"}),
                          ("k2.h5", {"cls", "value"})):
        manifest = edgekit.export(str(tmp_path / name), ["tflite", "onnx", "tfjs"], ["fp32", "int8"],
                                  str(tmp_path / f"out_{name}"), calib="uniform:0,1", isolate=name != "sub.keras",
                                  log=lambda s: None)
        assert {o["name"] for o in manifest.source["outputs"]} == outputs
        for a in manifest.artifacts:
            assert a.ok, (name, a.format, a.quant, a.error)
            assert set(a.parity["outputs"]) == outputs
            if a.format == "onnx":  # the graph's tensors carry the source's names, its one input's included
                assert sorted(t["artifact_name"] for t in a.io["inputs"] + a.io["outputs"]) == \
                    sorted(t["name"] for t in manifest.source["inputs"] + manifest.source["outputs"]), a.io
            if a.quant == "fp32":
                assert a.parity["max_abs_diff"] < 1e-4, (name, a.format, a.parity)


def test_a_savedmodel_with_a_two_input_two_output_signature(tmp_path):
    import tensorflow as tf

    import edgekit

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
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    manifest = edgekit.export(str(tmp_path / "sm"), ["tflite", "onnx", "tfjs"], ["fp32", "dynamic"], str(tmp_path / "out"),
                              log=lambda s: None)
    assert {i["name"] for i in manifest.source["inputs"]} == {"query", "bias"}
    for a in manifest.artifacts:
        assert a.ok, (a.format, a.quant, a.error)
        assert set(a.parity["outputs"]) == {"probs", "norm"}
    # ONNX Runtime's QOperator quantizer fails on this graph ("unknown initializers/tensors
    # {'query_quantized'}"): the automatic layout choice leaves that layout out, says why, and picks
    # among the others (before, the whole ONNX int8 export failed)
    r = edgekit_cli("export", tmp_path / "sm", "--format", "onnx", "--quant", "int8", "--calib", "uniform:-1,1",
                    "--out", tmp_path / "int8")
    assert r.returncode == 0, r.stdout + r.stderr
    d = Manifest.load(tmp_path / "int8").artifacts[0].details
    tried = {t["layout"]: t for t in d["int8_layouts_tried"]}
    assert "unknown initializers" in tried["qop-u8s8"]["error"] and d["int8_layout"] != "qop-u8s8", tried


@pytest.mark.parametrize("case, message", [
    ("missing", "has keys image, y_label, but the model's inputs are features (5,), image (8, 8, 1)"),
    ("shape", "input 'features' has samples of shape (4,), but the model takes (5,)"),
    ("uniform", "--calib uniform:image=0,1;feature=0,1 names no input 'feature'"),
])
def test_bad_data_for_several_inputs_is_one_line(two_input_three_head, tmp_path, case, message):
    tmp = two_input_three_head
    x, y = _data(40)
    if case == "missing":
        np.savez(tmp_path / "d.npz", image=x["image"], y_label=y["label"])
        calib = str(tmp_path / "d.npz")
    elif case == "shape":
        np.savez(tmp_path / "d.npz", image=x["image"], features=x["features"][:, :4])
        calib = str(tmp_path / "d.npz")
    else:
        calib = "uniform:image=0,1;feature=0,1"
    r = edgekit_cli("export", tmp / "model.keras", "--format", "tflite", "--quant", "int8", "--calib", calib,
                    "--out", tmp_path / "out")
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_floats_fed_to_an_integer_input_are_refused(tmp_path):
    import keras

    tokens, image = keras.Input((6,), dtype="int32", name="tokens"), keras.Input((4,), name="meta")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4)(tokens))
    model = keras.Model([tokens, image], keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([h, image])))
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", tokens=np.random.default_rng(0).uniform(0, 1, (20, 6)), meta=np.zeros((20, 4)))
    r = edgekit_cli("export", tmp_path / "m.keras", "--format", "onnx", "--quant", "int8", "--calib", tmp_path / "d.npz",
                    "--out", tmp_path / "out")
    assert r.returncode == 2 and "input 'tokens' takes integer ids (int32) but was given fractional values" in r.stderr
    r = edgekit_cli("export", tmp_path / "m.keras", "--format", "tflite,onnx", "--quant", "fp32,int8",
                    "--calib", "uniform:tokens=0,49;meta=0,1", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for a in manifest["artifacts"]:
        tokens_io = next(i for i in a["io"]["inputs"] if i["name"] == "tokens")
        assert tokens_io["dtype"] == "int32" and "quantization" not in tokens_io, (a["path"], tokens_io)


def test_inspect_lists_every_input_and_output(two_input_three_head):
    r = edgekit_cli("inspect", two_input_three_head / "model.keras", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert {(i["name"], tuple(i["shape"])) for i in info["inputs"]} == {("image", (8, 8, 1)), ("features", (5,))}
    assert [o["name"] for o in info["outputs"]] == ["label", "size", "tags"]
    assert info["macs"] > 0 and all(info["formats"].values())


def test_an_unknown_sequence_length_is_fixed_by_input_shape_for_tflite_and_tfjs_and_stays_dynamic_in_onnx(tmp_path):
    import keras

    tokens = keras.Input((None,), dtype="int32", name="tokens")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(8, 3, padding="same")(keras.layers.Embedding(100, 8)(tokens)))
    keras.Model(tokens, keras.layers.Dense(3)(h)).save(tmp_path / "seq.keras")
    r = edgekit_cli("export", tmp_path / "seq.keras", "--format", "tflite,onnx", "--quant", "fp32", "--out", tmp_path / "a")
    assert r.returncode == 2 and "input 'tokens' has an unknown dimension" in r.stderr and "--input-shape tokens=128" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "a").exists()
    r = edgekit_cli("export", tmp_path / "seq.keras", "--format", "tflite", "--quant", "fp32", "--input-shape", "words=32",
                    "--out", tmp_path / "a")
    assert r.returncode == 2 and "names no input 'words'" in r.stderr
    r = edgekit_cli("export", tmp_path / "seq.keras", "--format", "all", "--quant", "fp32", "--input-shape", "tokens=32",
                    "--out", tmp_path / "b")
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    shapes = {a["format"]: a["io"]["inputs"][0]["shape"][1:] for a in manifest["artifacts"]}
    assert shapes == {"tflite": [32], "tfjs": [32], "onnx": [None]}
    assert all(a["parity"]["max_abs_diff"] < 1e-4 for a in manifest["artifacts"])


def test_package_feeds_every_input_by_name_and_shows_every_head(two_input_three_head, tmp_path):
    """rpi run.py (LiteRT + NumPy only) and the web page (TF.js in Chromium) give every output edgekit gives."""
    import subprocess
    import sys

    from edgekit.runtimes.litert import LiteRTRuntime

    tmp = two_input_three_head
    r = edgekit_cli("export", tmp / "model.keras", "--format", "tflite,tfjs,onnx", "--quant", "fp32,int8", "--calib",
                    tmp / "data.npz", "--out", tmp / "exp_pkg")
    assert r.returncode == 0, r.stderr
    (tmp_path / "labels.txt").write_text("top left\ntop right\nbottom left\n")
    for target, art in (("rpi", "model_int8.tflite"), ("android", "model_fp32.tflite"), ("web", "model_fp32_tfjs"),
                        ("web-litert", "model_int8.tflite")):
        r = edgekit_cli("package", tmp / "exp_pkg" / art, "--target", target.split("-")[0], "--out", tmp_path / target,
                        "--data", tmp / "data.npz", "--labels", tmp_path / "labels.txt")
        assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "rpi" / "model_card.json").read_text())
    assert {i["name"] for i in card["inputs"]} == {"image", "features"}
    heads = {o["name"]: o for o in card["outputs"]}
    assert {n: o["kind"] for n, o in heads.items()} == {"label": "probabilities", "size": "values", "tags": "scores"}
    assert heads["label"]["labels"] == ["top left", "top right", "bottom left"] and "labels" not in heads["tags"]
    assert all(t["artifact_dtype"] == "int8" and t["quantization"]["scale"] > 0 for t in card["inputs"] + card["outputs"])
    samples = json.loads((tmp_path / "rpi" / "samples.json").read_text())
    x = {n: np.asarray([s["inputs"][n] for s in samples["samples"]], dtype=np.float32).reshape(-1, *shape)
         for n, shape in samples["inputs"].items()}
    assert samples["samples"][0]["labels"]["label"] in heads["label"]["labels"]

    # rpi: the runner, in a Python where importing TensorFlow fails, on an .npz of named inputs
    want = LiteRTRuntime().load(str(tmp / "exp_pkg" / "model_int8.tflite")).run(x)
    np.savez(tmp_path / "inputs.npz", **x)
    code = ("import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = ['run.py', sys.argv[1]]; "
            "runpy.run_path('run.py', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "inputs.npz")], cwd=tmp_path / "rpi",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = [json.loads(ln)["outputs"] for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert [g["label"]["label"] for g in got] == [heads["label"]["labels"][i] for i in want["label"].argmax(1)]
    assert np.allclose([g["size"]["values"][0] for g in got], want["size"][:, 0], atol=1e-5)
    assert np.allclose([g["tags"]["scores"] for g in got], want["tags"], atol=1e-5)
    r = subprocess.run([sys.executable, "run.py", str(tmp_path / "labels.txt")], cwd=tmp_path / "rpi",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "pass an .npz with one array per input (features, image)" in r.stderr

    # android: the README binds by the signature's names
    readme = (tmp_path / "android" / "README.md").read_text()
    assert "runSignature" in readme and "| tags |" in readme and "serving_default_image" in readme

    # web: every head on the page, as edgekit's TF.js runtime gives it
    from edgekit.runtimes.isolated import run_isolated

    ref = run_isolated("tfjs-node", tmp / "exp_pkg" / "model_fp32_tfjs", x)
    assert ref.ok, ref.error
    shown = _web_page_outputs(tmp_path / "web", len(samples["samples"]))
    for name in ("label", "size", "tags"):
        assert np.allclose([s[name] for s in shown], ref.outputs[name], atol=1e-4), name
    # the int8 .tflite in LiteRT.js: the page quantizes each input and dequantizes each head by the card
    shown = _web_page_outputs(tmp_path / "web-litert", len(samples["samples"]))
    for name in ("label", "size", "tags"):
        assert np.allclose([s[name] for s in shown], want[name], atol=1e-5), name

    # the browser runtimes bind by name too: the int8 .tflite's outputs are renamed and reordered
    # (StatefulPartitionedCall_1:N) and int8 at the boundary, and each engine answers by the Keras names
    from edgekit.runtimes import get_runtime
    from edgekit.runtimes.onnxruntime import ONNXSession

    for runtime, name, python in (("litert-browser", "model_int8.tflite", LiteRTRuntime().load),
                                  ("ort-browser", "model_int8.onnx", ONNXSession)):
        path = str(tmp / "exp_pkg" / name)
        ref_out = python(path).run(x)
        s = get_runtime(runtime).load(path, threads=1)
        try:
            got = s.run(x)
        finally:
            s.close()
        assert set(got) == {"label", "size", "tags"} == set(ref_out)
        for k in got:
            assert got[k].shape == ref_out[k].shape and np.abs(got[k] - ref_out[k]).max() <= 1e-6, (runtime, k)


def _web_page_outputs(folder, n):
    from conftest import package_page

    with package_page(folder) as (page, errors):
        shown = []
        for i in range(n):
            page.click(f"#sample-{i}")
            page.wait_for_function(f"window.edgekitPredictions === {i + 1}")
            shown.append(page.evaluate("window.lastPrediction.outputs"))
        assert page.is_visible("#head-tags") and not page.is_visible("#pad")
    assert errors == []
    return shown


def test_package_labels_that_fit_no_output_are_one_line(two_input_three_head, tmp_path):
    tmp = two_input_three_head
    r = edgekit_cli("export", tmp / "model.keras", "--format", "tflite", "--quant", "fp32", "--calib",
                    tmp / "data.npz", "--out", tmp_path / "exp")
    assert r.returncode == 0, r.stderr
    (tmp_path / "two.txt").write_text("a\nb\n")
    r = edgekit_cli("package", tmp_path / "exp" / "model_fp32.tflite", "--target", "rpi", "--out", tmp_path / "pkg",
                    "--labels", tmp_path / "two.txt")
    assert r.returncode == 2 and "no output of the model has 2 class scores" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "pkg").exists()
    r = edgekit_cli("package", tmp_path / "exp" / "model_fp32.tflite", "--target", "rpi", "--out", tmp_path / "pkg",
                    "--data", tmp_path / "missing.npz")
    assert r.returncode == 2 and "missing.npz does not exist" in r.stderr and not (tmp_path / "pkg").exists()
