"""``--max-drop``: int8 that loses too much is repaired by keeping the layers to blame in float.

The test model is built the way real int8 failures happen: a trained digits CNN in which one
channel of the penultimate layer is made 1000x wider than the others (its incoming weights x1000,
its outgoing weights /1000: the float function is unchanged, since ReLU is positively homogeneous).
Per-tensor int8 activation scales, sized for that channel, leave the other 31 channels a handful
of levels, as wide-range channels do in real MobileNets.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edgekit_cli, mlperf


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    import keras

    from edgekit.data import load_data

    keras.utils.set_random_seed(0)
    ds = load_data("builtin:digits")
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(keras.layers.Conv2D(16, 3, activation="relu")(inp))
    h = keras.layers.Dense(32, activation="relu", name="features")(h)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="head")(h))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ds.prepared("train"), ds.y_train, epochs=15, batch_size=32, verbose=0)
    before = model.evaluate(ds.prepared("test"), ds.y_test, verbose=0)[1]
    features, head = model.get_layer("features"), model.get_layer("head")
    (w1, b1), (w2, b2) = features.get_weights(), head.get_weights()
    k = int(np.argmax(np.abs(w2).sum(1)))
    w1[:, k] *= 1000.0
    b1[k] *= 1000.0
    w2[k, :] /= 1000.0
    features.set_weights([w1, b1])
    head.set_weights([w2, b2])
    assert model.evaluate(ds.prepared("test"), ds.y_test, verbose=0)[1] == pytest.approx(before, abs=1e-3)
    path = tmp_path_factory.mktemp("repair") / "outlier.keras"
    model.save(path)
    return path


def _int8(out):
    return next(a for a in json.loads((out / "manifest.json").read_text())["artifacts"] if a["quant"] == "int8")


def test_plain_int8_fails_and_the_search_repairs_it_with_a_small_named_keep_set(outlier_model, tmp_path):
    r = edgekit_cli("export", outlier_model, "--format", "tflite", "--quant", "int8", "--calib", "builtin:digits",
                    "--out", tmp_path / "plain")
    assert r.returncode == 1 and _int8(tmp_path / "plain")["status"] == "validation_failed"  # without the search
    assert "hint: int8 loses too much in tflite: `--max-drop 1` keeps the layers to blame" in r.stdout, r.stdout

    r = edgekit_cli("export", outlier_model, "--format", "tflite", "--quant", "fp32,int8", "--calib", "builtin:digits",
                    "--max-drop", "1.0", "--out", tmp_path / "mixed")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "searching layers to keep in float" in r.stdout
    art = _int8(tmp_path / "mixed")
    drops, mixed = art["details"]["int8_drop_points"], art["details"]["repair"]
    assert art["status"] == "ok" and drops["metric"] == "accuracy"
    assert drops["plain"] > 50 and drops["mixed"] <= 1.0, drops
    kept = [k["layer"] for k in mixed["kept"]]
    assert len(kept) <= 2 and any("features" in k for k in kept), kept  # the wide channel's producer, named
    assert all(k["precision"] == "float32" and k["op"] == "FULLY_CONNECTED" for k in mixed["kept"])
    assert mixed["evaluations"] <= mixed["max_evaluations"] == 2 * 3 + 5  # 5 quantized layers
    assert mixed["plain_int8"]["drop_points"] == drops["plain"] and mixed["latency_ms"]["mixed"] > 0
    assert art["details"]["compute"] == f"int8, {len(kept)} of {mixed['layers_quantized']} layers kept in float32"

    r = edgekit_cli("export", outlier_model, "--format", "tflite", "--quant", "int8", "--calib", "builtin:digits",
                    "--max-drop", "1.0", "--out", tmp_path / "again")
    assert r.returncode == 0
    assert [k["layer"] for k in _int8(tmp_path / "again")["details"]["repair"]["kept"]] == kept  # same data: same set


def test_a_model_int8_does_not_hurt_is_left_alone(digits_run, tmp_path):
    r = edgekit_cli("export", digits_run, "--format", "tflite", "--quant", "int8", "--max-drop", "1.0", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    art = _int8(tmp_path / "o")
    assert "repair" not in art["details"] and art["details"]["int8_drop_points"]["plain"] <= 1.0
    r = edgekit_cli("export", digits_run, "--format", "tflite", "--quant", "int8", "--max-drop", "150", "--out", tmp_path / "x")
    assert r.returncode == 2 and "--max-drop is in points of accuracy, from 0 to 100" in r.stderr


def test_bisection_finds_two_culprits_and_prunes_the_rest():
    from edgekit.quantize.tflite_repair import bisect_keep_set, max_evaluations

    ranked = [f"layer{i}" for i in range(20)]
    calls = []

    def evaluate(keep):
        calls.append(list(keep))
        return 0.3 if {"layer2", "layer9"} <= set(keep) else 12.0

    keep, steps = bisect_keep_set(ranked, evaluate, 1.0)
    assert keep == ["layer2", "layer9"] and len(steps) == len(calls) <= max_evaluations(20)
    assert bisect_keep_set(ranked, lambda keep: 5.0, 1.0) == (None, [{"kept": 20, "layers": ranked, "drop_points": 5.0,
                                                                     "ok": False}])


def test_a_candidate_that_keeps_the_accuracy_but_fails_parity_is_outside_the_budget():
    """Seen on keras.applications.EfficientNetB0: a keep-set within 1 point of accuracy that flips 13%
    of the predictions (agreement 0.870 < 0.9) was returned, and the export then failed validation.
    The search now counts the validation's parity checks as part of the budget."""
    from edgekit.quantize.tflite_repair import bisect_keep_set

    ranked = [f"layer{i}" for i in range(8)]

    def evaluate(keep):
        return 0.0, ([] if "layer5" in keep else ["top-1 agreement 0.870 < 0.9"])

    keep, steps = bisect_keep_set(ranked, evaluate, 1.0)
    assert keep == ["layer5"], steps
    assert all(s["ok"] == ("layer5" in s["layers"]) for s in steps)
    assert all(s["parity_failed"] == "top-1 agreement 0.870 < 0.9" for s in steps if not s["ok"])


def test_speed_mix_gives_weights_back_first_and_measures_a_close_call_again():
    """The walk on a scripted model: FULLY_CONNECTED holds the weights and costs nothing in int8;
    BATCH_MATMUL is 3x slower in int8. The first timing of the FULLY_CONNECTED step falls in a slow
    spell (6% slower: a close call, outside the 3% tie): measured again, the smaller file wins."""
    from edgekit.quantize.speed_mix import speed_mix

    true_ms = {"FULLY_CONNECTED": 0.0, "ADD": 0.001, "BATCH_MATMUL": 0.02}  # added by that type in int8
    weight_kb = {"FULLY_CONNECTED": 40, "ADD": 0, "BATCH_MATMUL": 0}

    def build(float_ops):
        return repr(sorted(float_ops)).encode().ljust(1000 * (60 + sum(weight_kb[o] for o in float_ops)))

    def int8_ops(data):
        float_ops = eval(data.rstrip())  # the names of the types kept in float
        return [o for o in true_ms if o not in float_ops]

    measured = []

    def time_files(files):
        measured.append(sorted(files))
        p50 = {name: 0.01 + sum(true_ms[o] for o in int8_ops(data)) if name != "fp32" else 0.0101
               for name, data in files.items()}
        if len(measured) == 1:  # the first step's candidate, in a slow spell
            name = next(n for n in files if "ADD, BATCH_MATMUL in float" in n and "FULLY" not in n)
            p50[name] *= 1.06
        return p50

    fp32 = b"fp32".ljust(100_000)
    data, record = speed_mix(["ADD", "BATCH_MATMUL", "FULLY_CONNECTED"], build, lambda d: {"drop": 0.0}, time_files,
                             budget=1.0, fp32=fp32)
    steps = [c["candidate"] for c in record["candidates"]]
    assert steps[1] == "int8, FULLY_CONNECTED, ADD, BATCH_MATMUL in float", steps  # weights first, then by frequency
    assert steps[2] == "int8, ADD, BATCH_MATMUL in float", steps
    assert measured[0] == measured[1], measured  # the close call, measured again
    assert record["float_ops"] == ["ADD", "BATCH_MATMUL"], record["candidates"]
    assert record["mixed"]["size_bytes"] == 60_000 and record["mixed"]["p50_ms"] < 1.03 * record["fp32"]["p50_ms"]


def test_speed_mix_gives_a_weight_type_back_layer_by_layer_when_the_whole_type_breaks_the_budget():
    """The transformer case on a scripted model: four dense layers, one of which (``out_proj``,
    ranked second by its quantization error) writes the residual stream's outliers. In int8 as a
    type they lose 30 points; the per-layer step keeps ``out_proj`` alone in float and gives the
    other three back, which is faster and smaller than keeping all four."""
    from edgekit.quantize.speed_mix import speed_mix
    from edgekit.quantize.tflite_repair import max_evaluations

    dense = ["qkv", "out_proj", "mlp_in", "mlp_out"]

    def build(float_ops, float_nodes=()):
        in_float = dense if "FULLY_CONNECTED" in float_ops else list(float_nodes)
        return repr((sorted(float_ops), sorted(in_float))).encode().ljust(1000 * (20 + 30 * len(in_float)))

    def decode(data):
        return eval(data.rstrip())  # (types in float, dense layers in float)

    def evaluate(data):
        ops, in_float = decode(data)
        return {"drop": 0.0 if "out_proj" in in_float else 30.0}

    def time_files(files):  # each dense layer in int8 saves 2 us; BATCH_MATMUL in int8 costs 20
        def ms(data):
            ops, in_float = decode(data)
            return 0.02 - 0.002 * (4 - len(in_float)) + (0.02 if "BATCH_MATMUL" not in ops else 0.0)
        return {name: 0.0205 if name == "fp32" else ms(data) for name, data in files.items()}

    fp32 = repr((["BATCH_MATMUL", "FULLY_CONNECTED"], dense)).encode().ljust(150_000)
    asked = []

    def layers():
        asked.append(1)
        return {"FULLY_CONNECTED": ["qkv", "out_proj", "mlp_in", "mlp_out"], "BATCH_MATMUL": ["attn"]}

    data, record = speed_mix(["BATCH_MATMUL", "FULLY_CONNECTED"], build, evaluate, time_files, budget=1.0,
                             fp32=fp32, layers=layers)
    assert record["float_ops"] == ["BATCH_MATMUL"] and record["float_nodes"] == ["out_proj"], record["candidates"]
    assert decode(data) == (["BATCH_MATMUL"], ["out_proj"]) and len(asked) == 1
    step = record["per_layer"][0]
    assert step["op"] == "FULLY_CONNECTED" and step["kept_in_float"] == ["out_proj"]
    assert step["evaluations"] <= max_evaluations(4)
    assert record["mixed"]["p50_ms"] < record["fp32"]["p50_ms"] and record["mixed"]["size_bytes"] == 50_000
    assert "1 more layer in float" in record["chosen"]
    # without the ranking (a format that has none) the type stays in float as a whole: fp32 wins
    _, record = speed_mix(["BATCH_MATMUL", "FULLY_CONNECTED"], build, evaluate, time_files, budget=1.0,
                          fp32=fp32)
    assert record["float_ops"] is None and record["per_layer"] == []


def test_quant_mixed_tries_dense_layers_one_by_one_with_each_formats_own_ranking(outlier_model, tmp_path):
    """The outlier model's wide tensor is written by one dense layer and read by the next, so the
    per-layer step must find that neither alone is enough: both stay in float, named. (Which file
    is chosen then depends on timing, and is not asserted here.)"""
    r = edgekit_cli("export", outlier_model, "--format", "tflite,onnx", "--quant", "mixed", "--calib", "builtin:digits",
                    "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Warning" not in r.stderr, r.stderr  # ONNX Runtime's SQNR of an exact tensor (0/0) is not printed
    for art, op in zip(json.loads((tmp_path / "o" / "manifest.json").read_text())["artifacts"], ("FULLY_CONNECTED", "Gemm"), strict=True):
        mix = art["details"]["mix"]
        [step] = mix["per_layer"]
        assert step["op"] == op and step["layers"] == 2 and len(step["kept_in_float"]) == 2, step
        singles = [c for c in mix["candidates"] if len(c.get("float_nodes", [])) == 1]
        assert singles and all(not c["within_budget"] and c["p50_ms"] is None for c in singles), mix["candidates"]
        assert art["status"] == "ok" and mix["mixed"]["drop_points"] <= 1.0


def test_files_are_timed_together_in_one_process_in_interleaved_rounds(tmp_path):
    from edgekit.runtimes.isolated import time_together

    fp32, int8 = mlperf("pretrainedResnet.tflite"), mlperf("pretrainedResnet_quant.tflite")
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    r = time_together("litert", [fp32, int8], x, timing={"warmup": 2, "runs": 20, "min_time_s": 0.0}, rounds=4)
    assert r.ok, r.error
    rounds = r.reply["p50_ms_rounds"]
    assert set(rounds) == {str(fp32), str(int8)} and all(len(v) == 4 and min(v) > 0 for v in rounds.values())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    r = time_together("litert", [fp32, bad], x, timing={"runs": 5})
    assert not r.ok and "bad.tflite is not a valid .tflite model" in r.error


def test_int16x8_is_made_on_request_with_int16_io_and_not_by_all(outlier_model, tmp_path):
    """16-bit activations give the wide channel's neighbours 256x the levels of int8 (which fails on
    this model: the test above); LiteRT runs the mode on reference kernels, so `--quant all` leaves it out."""
    from edgekit.errors import parse_choices
    from edgekit.exporters import all_quant_modes

    r = edgekit_cli("export", outlier_model, "--format", "tflite", "--quant", "int16x8", "--calib", "builtin:digits",
                    "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    a16 = json.loads((tmp_path / "o" / "manifest.json").read_text())["artifacts"][0]
    assert a16["status"] == "ok" and a16["parity"]["top1_agreement"] > 0.9, a16
    assert a16["details"]["input_dtype"] == "int16" and a16["size_bytes"] < 0.4 * 77 * 1024
    io = a16["io"]["inputs"][0]
    assert io["dtype"] == "int16" and io["quantization"]["scale"] > 0
    everything = parse_choices("all", all_quant_modes(["tflite"]), what="quant mode", flag="--quant",
                               all_means=all_quant_modes(["tflite"], on_request=False))
    assert everything == ["fp32", "fp16", "dynamic", "int8"]


def test_inspect_quant_ranks_layers_by_int8_error_and_flags_the_culprit(outlier_model, digits_run, tmp_path):
    r = edgekit_cli("inspect", outlier_model, "--quant", "--calib", "builtin:digits", "--json", "--html", tmp_path / "q.html")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    page = (tmp_path / "q.html").read_text()  # the chart and the table, the culprit flagged in both
    assert page.count('<img class=chart alt="error per layer" src="data:image/png;base64,') == 1
    assert "1 of 5 flagged (above 0.7)" in page and page.count("<td>flagged</td>") == 1
    errors = [layer["rmse_scale"] for layer in report["layers"]]
    assert errors == sorted(errors, reverse=True) and len(errors) == 5
    assert [f["op"] for f in report["flagged"]] == ["FULLY_CONNECTED"] and "head" in report["flagged"][0]["layer"]
    features = next(layer for layer in report["layers"] if "features" in layer["layer"])
    assert features["scale"] > 100  # the wide channel shows as a huge quantization step
    assert report["data"] == "builtin:digits, 200 samples"
    r = edgekit_cli("inspect", digits_run, "--quant")  # a run: its own data; int8 harmless, nothing flagged
    assert r.returncode == 0 and "0 of " in r.stdout, r.stdout + r.stderr


def test_tfjs_uint8_report_names_the_weights_outliers_stretch(outlier_model, tmp_path):
    """TF.js quantizes weights only, one uint8 range per tensor: the 'features' kernel, one of whose
    columns is 1000x the rest, loses its typical weight to rounding; the head's does not."""
    r = edgekit_cli("inspect", outlier_model, "--quant", "--format", "tfjs", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["quant"] == "uint8" and report["data"] == "none needed (weights only)"
    errors = [w["sqnr_db"] for w in report["layers"]]
    assert errors == sorted(errors)
    flagged = [w["layer"] for w in report["flagged"]]
    assert flagged and all("features" in name for name in flagged), flagged
    worst = report["layers"][0]
    assert worst["zeroed_pct"] > 90 and worst["sqnr_db"] < 10 and worst["sqnr_tensor_db"] > 30  # power alone hides it
    head = next(w for w in report["layers"] if "head" in w["layer"] and w["op"] == "weight 32x10")
    assert head["sqnr_db"] > 20
    r = edgekit_cli("inspect", outlier_model, "--quant", "--format", "tfjs", "--html", tmp_path / "t.html")
    assert r.returncode == 0 and "against their typical weight" in r.stdout, r.stdout + r.stderr
    assert "flagged (below 20 dB)" in (tmp_path / "t.html").read_text()


def test_onnx_int8_is_repaired_the_same_way_with_onnx_runtimes_tools(outlier_model, tmp_path):
    """Ranking by ONNX Runtime's qdq_loss_debug (SQNR per activation), candidates by nodes_to_exclude."""
    r = edgekit_cli("export", outlier_model, "--format", "onnx", "--quant", "int8", "--calib", "builtin:digits",
                    "--max-drop", "1.0", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    art = _int8(tmp_path / "o")
    drops, mixed = art["details"]["int8_drop_points"], art["details"]["repair"]
    assert drops["plain"] > 50 and drops["mixed"] <= 1.0, drops
    assert 1 <= len(mixed["kept"]) <= 2 and all(k["op"] == "Gemm" for k in mixed["kept"]), mixed["kept"]
    assert mixed["evaluations"] <= mixed["max_evaluations"] and mixed["ranking"][0]["sqnr_cumulative_db"] < 5
    assert art["details"]["compute"].endswith("nodes kept in float32")


@pytest.fixture(scope="module")
def small_vit(tmp_path_factory):
    """A small vision transformer (2x2 patches of the 8x8 digits: 16 tokens of width 64; 2 blocks of
    LayerNorm, 4-head attention and a GELU MLP of width 128; 68k parameters), trained for the test:
    plain int8 is slower than fp32 on a CPU, and loses accuracy."""
    import keras

    from edgekit.data import load_data

    keras.utils.set_random_seed(0)
    ds = load_data("builtin:digits")
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Reshape((16, 64))(keras.layers.Conv2D(64, 2, strides=2)(inp))
    for _ in range(2):
        a = keras.layers.LayerNormalization()(h)
        h = keras.layers.Add()([h, keras.layers.MultiHeadAttention(4, 16)(a, a)])
        m = keras.layers.Dense(128, activation="gelu")(keras.layers.LayerNormalization()(h))
        h = keras.layers.Add()([h, keras.layers.Dense(64)(m)])
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization()(h))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(ds.prepared("train"), ds.y_train, epochs=30, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("vit") / "vit.keras"
    model.save(path)
    return path


@pytest.mark.timing
def test_quant_mixed_is_the_fastest_within_budget_where_plain_int8_is_slower_than_fp32(small_vit, tmp_path):
    """The search's own timings would pass by construction (fp32 is always in its pool), so the chosen
    file is timed again against fp32 and plain int8 as a user exports them (``--quant fp32,int8``,
    float I/O like the mix), in a separate measurement, and judged there."""
    from edgekit.data import load_data
    from edgekit.runtimes.isolated import p50_together

    r = edgekit_cli("export", small_vit, "--format", "tflite,onnx", "--quant", "fp32,int8,mixed", "--int8-io", "float",
                    "--calib", "builtin:digits", "--out", tmp_path / "o")
    arts = {(a["format"], a["quant"]): a for a in json.loads((tmp_path / "o" / "manifest.json").read_text())["artifacts"]}
    # plain int8 loses accuracy here: it fails validation (exit 1), the file is kept, and the hint points to mixed
    assert r.returncode == 1 and "--quant mixed" in r.stdout + r.stderr, r.stdout + r.stderr
    x = load_data("builtin:digits").prepared("test")[:1]
    for fmt in ("tflite", "onnx"):
        art = arts[(fmt, "mixed")]
        mix = art["details"]["mix"]
        assert art["status"] == "ok" and mix["mixed"]["drop_points"] <= 1.0, art
        again = p50_together({"tflite": "litert", "onnx": "onnxruntime"}[fmt],
                             {q: tmp_path / "o" / arts[(fmt, q)]["path"] for q in ("fp32", "int8", "mixed")}, x)
        assert again["int8"] > 1.2 * again["fp32"], (fmt, again)  # the case: int8 is slower here than float
        assert again["mixed"] <= 1.1 * again["fp32"], (fmt, again, mix["chosen"])
        # a candidate the chosen file's parity checks would refuse is outside the budget, and says why
        refused = [c for c in mix["candidates"] if c.get("parity_failed")]
        assert refused and all(not c["within_budget"] for c in refused), mix["candidates"]
        # a mix outside the budget is never timed (plain int8 always is, to compare against)
        assert all(c["p50_ms"] is None for c in mix["candidates"] if not c["within_budget"] and c["candidate"] != "int8")
        assert art["details"]["compute"].startswith(("int8, ", "float32 (fp32 was the fastest"))
        assert art["details"]["input_dtype"] == "float32"
        assert all({"candidate", "p50_ms", "size_bytes", "drop_points"} <= set(c) for c in mix["candidates"])
    # LiteRT's int8 batched matmuls are the slow ones here: the choice is a real mix (neither fp32 nor
    # plain int8) that keeps them in float and the dense layers (but those the per-layer step keeps) in
    # int8, at most 0.5x fp32's size (measured 0.40x and 0.44x; benchmarks/int8_repair.py holds the same
    # target on a larger ViT)
    mix = arts[("tflite", "mixed")]["details"]["mix"]
    assert mix["chosen"] not in ("fp32", "int8") and mix["float_ops"], mix["chosen"]
    assert "BATCH_MATMUL" in mix["float_ops"], mix["float_ops"]
    assert "FULLY_CONNECTED" not in mix["float_ops"] and len(mix["float_nodes"]) <= 2, mix
    assert arts[("tflite", "mixed")]["size_bytes"] <= 0.5 * arts[("tflite", "fp32")]["size_bytes"], mix


def test_inspect_quant_for_onnx_ranks_nodes_by_local_and_cumulative_sqnr(outlier_model):
    r = edgekit_cli("inspect", outlier_model, "--quant", "--format", "onnx", "--calib", "builtin:digits", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    first = report["layers"][0]
    assert first["op"] == "Gemm" and first["sqnr_cumulative_db"] < 5  # the head: its output ruined downstream
    assert any(f["layer"] == first["layer"] for f in report["flagged"]) and report["format"] == "onnx"
    r = edgekit_cli("inspect", outlier_model, "--quant", "--format", "onnx,tflite")
    assert r.returncode == 2 and "one format at a time" in r.stderr


def test_inspect_quant_for_onnx_does_not_count_a_relus_clipping_as_error(digits_run):
    """ONNX Runtime's quantizer removes a ReLU whose output it quantizes (the quantize step clips
    instead), so the QDQ model's tensor holds the unclipped values. Measured as they are, every
    ReLU of the digits CNN looked ruined (0.3 dB, 8 layers flagged) where int8 loses nothing."""
    r = edgekit_cli("inspect", digits_run, "--quant", "--format", "onnx", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    relus = [layer for layer in report["layers"] if layer["op"] == "Relu"]
    assert relus and all(layer["sqnr_db"] > 30 for layer in relus), relus
    assert report["flagged"] == [], report["flagged"]


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    """The shape of a published audio transcription model (nobody here wrote it: one input of raw
    samples, three sigmoid posteriorgram outputs of frames x labels, mostly off), small and untrained:
    4,096 samples in 16 frames; onsets and notes 16 x 22, contours 16 x 66."""
    import keras

    keras.utils.set_random_seed(0)
    audio = keras.Input((4096,), name="audio")
    h = keras.layers.Reshape((16, 256))(audio)
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    off = keras.initializers.Constant(-2.0)  # a posteriorgram is mostly 'off'
    outputs = {name: keras.layers.Dense(units, activation="sigmoid", bias_initializer=off, name=name)(h)
               for name, units in (("onsets", 22), ("notes", 22), ("contours", 66))}
    path = tmp_path_factory.mktemp("transcriber") / "transcriber.keras"
    keras.Model(audio, outputs).save(path)
    return path


def test_max_drop_judges_sigmoid_outputs_by_per_label_agreement(transcriber, tmp_path):
    """--max-drop on multi-label sigmoid outputs: the budget is per-label agreement (as parity judges
    scores), not top-1 agreement of a posteriorgram, which flips on noise and once reported "100
    points of top-1 agreement lost" and then "keeping every quantized layer in float still misses
    the budget", which an all-float file cannot do."""
    r = edgekit_cli("export", transcriber, "--format", "tflite,onnx", "--quant", "int8", "--max-drop", "1",
                    "--calib", "uniform:-1,1", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "still misses the budget" not in r.stdout + r.stderr
    for art in json.loads((tmp_path / "o" / "manifest.json").read_text())["artifacts"]:
        drops = art["details"]["int8_drop_points"]
        assert drops["metric"].startswith("per-label agreement of output '"), drops
        assert art["status"] == "ok" and 0 <= drops["plain"] <= 1.0, (art["format"], drops, art.get("error"))
        assert set(art["parity"]["outputs"]) == {"onsets", "notes", "contours"}
        assert all(m["kind"] == "scores" for m in art["parity"]["outputs"].values())
