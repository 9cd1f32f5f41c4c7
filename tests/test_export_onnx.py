"""ONNX export: every quant mode, checker, opset, dynamic batch, parity, and every MODEL kind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edgekit_cli, mlperf

from edgekit.artifact import Manifest


@pytest.fixture(scope="module")
def onnx_export(digits_run, tmp_path_factory):
    from edgekit.exporters.pipeline import export_model

    out = tmp_path_factory.mktemp("onnx") / "export"
    export_model(digits_run, ["onnx"], ["fp32", "fp16", "dynamic", "int8", "int16x8"], out, log=lambda s: None)
    return out


def test_every_quant_mode_exports_checks_and_agrees(onnx_export):
    import onnx

    from edgekit.exporters.onnx_opset import default_opset

    arts = {a.quant: a for a in Manifest.load(onnx_export).artifacts if a.quant != "int16x8"}  # its own test, below
    assert set(arts) == {"fp32", "fp16", "dynamic", "int8"}
    for quant, a in arts.items():
        assert a.ok, (quant, a.error)
        model = onnx.load(onnx_export / a.path)
        onnx.checker.check_model(model, full_check=True)
        assert a.details["opset"] == default_opset() == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert sum(a.details["operators"].values()) == len(model.graph.node)
    assert arts["fp32"].parity["max_abs_diff"] < 1e-4
    assert arts["int8"].parity["top1_agreement"] >= 0.97
    assert arts["int8"].details["operators"].get("QuantizeLinear") and arts["int8"].details["per_channel"] is True
    assert arts["int8"].size_bytes <= 0.30 * arts["fp32"].size_bytes
    assert arts["fp16"].details["input_dtype"] == "float16"


def test_int16x8_is_qdq_with_int16_activations_closer_to_float_than_int8_and_made_on_request(onnx_export):
    """ONNX's 16-bit mode: QuantizeLinear with int16 zero points (opset 21), int8 weights; 256x the
    activation levels of int8, so closer to the float model; never made by `--quant all`."""
    import onnx

    from edgekit.exporters import all_quant_modes

    arts = {a.quant: a for a in Manifest.load(onnx_export).artifacts}
    a16, a8 = arts["int16x8"], arts["int8"]
    assert a16.ok, a16.error
    model = onnx.load(onnx_export / a16.path)
    onnx.checker.check_model(model, full_check=True)
    assert a16.details["opset"] == 21 == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[2] in inits}
    assert onnx.TensorProto.INT16 in zero_points and a16.details["activations"] == "int16"
    assert a16.details["weights"] == "int8" and a16.size_bytes <= 0.30 * arts["fp32"].size_bytes
    assert a16.parity["top1_agreement"] == 1.0 and a16.parity["max_abs_diff"] < a8.parity["max_abs_diff"] / 2, (a16.parity, a8.parity)
    assert "int16x8" not in all_quant_modes(["onnx"], on_request=False)


def test_int16x8_without_calibration_data_names_itself(tmp_path):
    r = edgekit_cli("export", mlperf("ad01.h5"), "--format", "onnx", "--quant", "fp32,int16x8", "--out", tmp_path / "o")
    assert r.returncode == 2 and "onnx int16x8 needs calibration data" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_onnx_options_fixed_batch_fp16_io_per_tensor_entropy(digits_run, tmp_path):
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.pipeline import export_model

    opts = ExportOptions(opset=17, batch=1, fp16_io="float32", per_tensor=True, calib_method="entropy", calib_samples=64)
    m = export_model(digits_run, ["onnx"], ["fp16", "int8"], tmp_path, options=opts, log=lambda s: None)
    fp16, int8 = m.artifacts
    assert fp16.ok and int8.ok, (fp16.error, int8.error)
    assert fp16.details["input_dtype"] == "float32" and fp16.details["opset"] == 17 and fp16.details["batch"] == 1
    assert int8.details["per_channel"] is False and int8.details["calibration_method"] == "entropy"


def test_bench_runs_onnx_beside_tflite(digits_run, tmp_path):
    out = tmp_path / "exp"
    assert edgekit_cli("export", digits_run, "--format", "tflite,onnx", "--quant", "fp32,int8", "--out", out).returncode == 0
    r = edgekit_cli("bench", out, "--runs", "30", "--min-time", "0", "--json", tmp_path / "b.json")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(x["format"], x["quant"], x["runtime"]) for x in rows] == [
        ("keras", "fp32", "keras"), ("tflite", "fp32", "litert"), ("tflite", "int8", "litert"),
        ("onnx", "fp32", "onnxruntime"), ("onnx", "int8", "onnxruntime")]
    for row in rows[1:]:
        assert row["agreement"] >= 0.97 and row["accuracy"] > 0.85


def test_keras2_h5_and_savedmodel_export_to_onnx(tmp_path):
    from edgekit.exporters.pipeline import export_model

    for model in (mlperf("kws_ref_model"), mlperf("str_ww_ref_model.h5")):
        m = export_model(model, ["onnx"], ["fp32", "dynamic"], tmp_path / model.stem, parity_samples=16, log=lambda s: None)
        assert all(a.ok for a in m.artifacts), [(a.quant, a.error) for a in m.artifacts]


def test_dynamic_quant_that_breaks_resnet8_is_reported_as_failed(tmp_path):
    """ORT's dynamic quantization (per-tensor uint8 ConvInteger) wrecks ResNet-8: edgekit must say so."""
    from edgekit.exporters.pipeline import export_model

    m = export_model(mlperf("pretrainedResnet.h5"), ["onnx"], ["fp32", "dynamic"], tmp_path, parity_samples=32, log=lambda s: None)
    fp32, dynamic = m.artifacts
    assert fp32.ok and fp32.parity["max_abs_diff"] < 1e-4
    assert dynamic.status == "validation_failed" and "parity with the source failed" in dynamic.error
    assert (tmp_path / dynamic.path).is_file()  # kept for inspection


def test_static_int8_on_real_wake_word_calibration(tmp_path):
    """The streaming wake-word model calibrated on its authors' calibration samples."""
    from edgekit.exporters.pipeline import export_model

    m = export_model(mlperf("str_ww_ref_model.h5"), ["onnx", "tflite"], ["int8"], tmp_path,
                     calib=str(mlperf("calibration_samples.npz")), parity_samples=64, log=lambda s: None)
    for a in m.artifacts:
        assert a.ok, a.error
        assert a.parity["cosine"] > 0.95


def test_corrupt_onnx_is_a_clean_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    r = edgekit_cli("bench", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "broken.onnx" in r.stderr and "ONNX Runtime" in r.stderr


def test_bad_opset_and_calibration_shape(digits_run, tmp_path):
    r = edgekit_cli("export", digits_run, "--format", "onnx", "--opset", "5", "--out", tmp_path / "o")
    assert r.returncode == 2 and "share opsets" in r.stderr and not (tmp_path / "o").exists()
    calib = tmp_path / "c.npz"
    np.savez(calib, x=np.zeros((8, 3, 3), np.float32))
    r = edgekit_cli("export", digits_run, "--format", "onnx", "--quant", "int8", "--calib", calib, "--out", tmp_path / "o")
    assert r.returncode == 2 and "(3, 3)" in r.stderr and not (tmp_path / "o").exists()


def test_usage_error_midway_leaves_nothing_behind(digits_run, tmp_path):
    """tflite succeeds first, then onnx int8 lacks calibration: nothing may be left in OUT."""
    out = tmp_path / "o"
    r = edgekit_cli("export", mlperf("ad01.h5"), "--format", "tflite,onnx", "--quant", "fp32,int8", "--out", out)
    assert r.returncode == 2
    assert not out.exists()


@pytest.mark.timing
def test_int8_layout_is_the_fastest_measured_that_keeps_parity(onnx_export, digits_run, tmp_path):
    """auto: every candidate layout quantized, timed here and checked against the float model; the
    chosen one keeps parity and is the fastest (within the 3% tie band). On x86 with VNNI that is a
    uint8-activation layout, about twice as fast as int8 activations (QDQ S8S8)."""
    from edgekit.quantize.onnx_layouts import TIE, has_vnni

    d = next(a for a in Manifest.load(onnx_export).artifacts if a.quant == "int8").details
    tried = {t["layout"]: t for t in d["int8_layouts_tried"]}
    assert set(tried) == {"qdq-u8s8", "qdq-s8s8", "qop-u8s8"}
    chosen = tried[d["int8_layout"]]
    assert chosen["parity_ok"]
    assert chosen["p50_ms"] <= min(t["p50_ms"] for t in tried.values() if t["parity_ok"]) * (1 + TIE)
    assert d["compute"].startswith("int8 (") and d["int8_layout_reason"].startswith("the fastest that keeps parity")
    # The choice judged apart from the choice: every candidate layout exported on its own and timed
    # again, together in one process in interleaved rounds (on any CPU). The chosen one is within the
    # tie band of the fastest that keeps parity, plus 5% for this second measurement's own noise.
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.pipeline import export_model
    from edgekit.runtimes.isolated import p50_together

    files = {}
    for layout in tried:
        m = export_model(digits_run, ["onnx"], ["int8"], tmp_path / layout, log=lambda s: None,
                         options=ExportOptions(int8_layout=layout))
        files[layout] = tmp_path / layout / m.artifacts[0].path
    x = np.random.default_rng(0).uniform(0, 16, (1, 8, 8, 1)).astype(np.float32)
    again = p50_together("onnxruntime", files, x)
    fastest = min(again[k] for k, t in tried.items() if t["parity_ok"])
    assert again[d["int8_layout"]] <= fastest * (1 + TIE + 0.05), (d["int8_layout"], again)
    if has_vnni():  # VNNI multiplies uint8 by int8: int8 activations take a slower path
        assert d["int8_layout"].endswith("u8s8") and again["qdq-s8s8"] > 1.3 * again[d["int8_layout"]], again
    r = edgekit_cli("export", digits_run, "--format", "onnx", "--quant", "int8", "--int8-layout", "qop-s8s8",
                    "--out", tmp_path / "forced")
    assert r.returncode == 0, r.stderr
    forced = json.loads((tmp_path / "forced" / "manifest.json").read_text())["artifacts"][0]["details"]
    assert forced["int8_layout"] == "qop-s8s8" and "int8_layouts_tried" not in forced
    assert forced["operators"].get("QLinearConv")  # QOperator: integer operators, not Q/DQ pairs
    r = edgekit_cli("export", digits_run, "--format", "onnx", "--quant", "int8", "--int8-layout", "qdq-u8u8",
                    "--out", tmp_path / "bad")
    assert r.returncode == 2 and "--int8-layout must be one of" in r.stderr and not (tmp_path / "bad").exists()


def test_hard_swish_and_hard_sigmoid_become_one_onnx_operator_each(tmp_path):
    """MobileNetV3's activations: Keras computes them as x * relu6(x + 3) / 6, which tf2onnx emits
    as four nodes; the export has ONNX's own HardSwish and HardSigmoid, and computes the same."""
    import keras
    import onnx

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, activation="hard_swish")(inp)
    h = keras.layers.Dense(8, activation="hard_sigmoid")(keras.layers.GlobalAveragePooling2D()(h))
    relu6 = keras.layers.ReLU(6.0)(keras.layers.Dense(8)(h))  # a relu6 that is not part of either: left alone
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(relu6))
    model.save(tmp_path / "hs.keras")
    r = edgekit_cli("export", tmp_path / "hs.keras", "--format", "onnx", "--quant", "fp32,int8", "--calib",
                    "builtin:digits", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    ops = [n.op_type for n in onnx.load(tmp_path / "o" / "hs_fp32.onnx").graph.node]
    assert ops.count("HardSwish") == 1 and ops.count("HardSigmoid") == 1 and ops.count("Clip") == 1, ops
    arts = Manifest.load(tmp_path / "o").artifacts
    assert all(a.status == "ok" for a in arts) and arts[0].parity["max_abs_diff"] < 1e-5, arts


def test_hard_activation_fusion_keeps_what_a_loop_or_if_body_reads():
    """A Loop or If body reads outer tensors by name, which no node of the outer graph lists as an
    input: the fusion keeps a hard-sigmoid's intermediate a body reads (no rewrite there), and an
    initializer only a body reads (the recurrent models' ONNX Loops do both)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.exporters.onnx_fusions import fuse_hard_activations

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    def body(name, op, inputs):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, 4])
        return helper.make_graph([helper.make_node(op, inputs, [f"{name}_out"])], name, [], [out])

    def model(clipped_read_by_body: bool):
        read = "clipped" if clipped_read_by_body else "x"
        nodes = [helper.make_node("Add", ["x", "three"], ["shifted"]),
                 helper.make_node("Clip", ["shifted", "zero", "six"], ["clipped"]),
                 helper.make_node("Mul", ["clipped", "sixth"], ["sig"]),
                 helper.make_node("Mul", ["x", "sig"], ["y"]),
                 helper.make_node("If", ["cond"], ["z"], then_branch=body("then", "Add", [read, "w"]),
                                  else_branch=body("else", "Identity", [read]))]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("y", "z")],
            [const("three", 3.0), const("zero", 0.0), const("six", 6.0), const("sixth", 1 / 6),
             const("w", np.arange(4).reshape(1, 4)), numpy_helper.from_array(np.array(True), "cond")])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    x = {"x": np.array([[-4.0, -1.0, 0.5, 5.0]], dtype=np.float32)}
    for read_by_body, made in ((True, {"HardSwish": 0, "HardSigmoid": 0}), (False, {"HardSwish": 1, "HardSigmoid": 0})):
        m = model(read_by_body)
        want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)
        assert fuse_hard_activations(m.graph, opset=17) == made
        assert "w" in {t.name for t in m.graph.initializer}  # read by the then-branch only
        onnx.checker.check_model(m, full_check=True)
        got = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)

