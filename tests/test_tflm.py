"""The ``tflm`` runtime: MLPerf Tiny's int8 models on TFLite Micro's own kernels.

What a user checks before flashing a board: the answers are those of the reference kernels a
microcontroller runs, the arena figure is the smallest the model allocates in, and a model a
microcontroller cannot run says why in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import edgekit_cli, mlperf

INT8_MODELS = ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "vww_96_int8.tflite"]


def _reference_kernels(path, x):
    """LiteRT with its reference kernels (no XNNPACK): the kernels TFLite Micro ports."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for r in range(len(x)):
        it.set_tensor(d["index"], x[r : r + 1])
        it.invoke()
        out.append(it.get_tensor(o["index"]))
    return np.concatenate(out)


@pytest.mark.parametrize("name", INT8_MODELS)
def test_tflm_gives_the_reference_kernels_answers_and_the_smallest_arena(name):
    from edgekit.runtimes.tflm import TFLMRuntime, _fits

    path = mlperf(name)
    session = TFLMRuntime().load(str(path))
    t_in, t_out = session.inputs[0], session.outputs[0]
    assert t_in.dtype == "int8" and t_in.scale > 0
    x = np.random.default_rng(0).integers(-128, 128, (4, *t_in.sample_shape)).astype(np.int8)
    want = _reference_kernels(path, x)
    got = session.run(t_in.dequantize(x))["output"]  # float in, quantized at the boundary, as every runtime
    assert np.array_equal(np.round(got / t_out.scale + t_out.zero_point).astype(int), want.astype(int))

    arena = session.describe()["arena"]
    assert arena["total_bytes"] == arena["head_bytes"] + arena["tail_bytes"] > 0
    smallest = arena["smallest_bytes"]
    assert _fits(path, smallest) and not _fits(path, smallest - 64), arena  # the smallest that works, to 16 B
    assert smallest <= 1.05 * arena["total_bytes"], arena  # these models: the recording is the arena


def test_a_model_whose_planning_needs_more_than_the_recorded_arena_reports_what_it_needs():
    """MLPerf's anomaly autoencoder records 3,984 B, and does not allocate in that: planning needs temporary
    memory too. The smallest arena that works is what a board must have."""
    from edgekit.runtimes.tflm import TFLMRuntime, _fits

    path = mlperf("ad01_int8.tflite")
    arena = TFLMRuntime().load(str(path)).describe()["arena"]
    assert not _fits(path, arena["total_bytes"]) and _fits(path, arena["smallest_bytes"]), arena
    assert not _fits(path, arena["smallest_bytes"] - 64), arena


def test_bench_runs_tflm_and_a_float_model_is_one_line(tmp_path):
    out = tmp_path / "bench.json"
    r = edgekit_cli("bench", mlperf("kws_ref_model.tflite"), mlperf("kws_ref_model_float32.tflite"),
                    "--runtime", "tflm", "--json", out)
    import json

    rows = {Path(row["artifact"]).name: row for row in json.loads(out.read_text())["rows"]}
    assert rows["kws_ref_model.tflite"]["status"] == "ok", rows
    bad = rows["kws_ref_model_float32.tflite"]
    assert bad["status"] == "failed" and "TFLite Micro cannot run it: Hybrid models are not supported" in bad["error"], bad
    assert "\n" not in bad["error"] and ".cc" not in bad["error"], bad
    assert "Traceback" not in r.stderr


def test_a_microcontroller_profile_judges_arena_flash_and_int8_and_estimates_from_a_published_result(tmp_path):
    """`bench --profile cortex-m4f`: the int8 KWS fits the board's SRAM and flash, with a latency
    estimated from MLPerf Tiny's published result for the board; a float file is told it is not one."""
    import json

    out = tmp_path / "bench.json"
    r = edgekit_cli("bench", mlperf("kws_ref_model.tflite"), mlperf("kws_ref_model_float32.tflite"),
                    "--profile", "cortex-m4f", "--json", out, "--markdown", tmp_path / "bench.md")
    assert r.returncode == 1, r.stderr  # the float file did not run
    rows = {Path(row["artifact"]).name: row for row in json.loads(out.read_text())["rows"]}
    kws = rows["kws_ref_model.tflite"]
    assert kws["runtime"] == "tflm" and kws["verdict"] == "pass", kws
    assert kws["checks"]["sram"] == {"ok": True, "value_kb": round(24272 / 1024, 1), "limit_kb": 640}, kws["checks"]
    assert kws["checks"]["flash"]["ok"] and kws["checks"]["full_integer"]["ok"]
    est = kws["estimate"]
    assert est["kind"] == "estimate" and est["reference"]["device_ms"] == 601.0 and est["reference"]["quant"] == "int8"
    # MLPerf Tiny v0.5 published KWS on this board: 182 ms; the estimate comes from the VWW network alone
    assert 182 / 3 < est["latency_ms"] < 182 * 3, est
    # timed in alternation with the reference in one process: the estimate is their ratio x 601 ms
    assert est["paired"]["pairs"] >= 5 and est["latency_ms"] == pytest.approx(est["paired"]["ratio"] * 601, rel=1e-3), est
    hybrid = rows["kws_ref_model_float32.tflite"]  # float activations, int8 weights: not for TFLite Micro
    assert hybrid["verdict"] == "fail: TFLite Micro cannot run it", hybrid
    assert "Hybrid models are not supported" in hybrid["error"] and "--quant int8" in hybrid["error"], hybrid["error"]
    md = (tmp_path / "bench.md").read_text()
    assert "arena / SRAM KB" in md and "23.7 / 640" in md, md


def test_inspect_names_the_layer_tflite_micro_cannot_run_and_the_int8_file_proves_it(tmp_path):
    """Before converting, inspect's tflm column names the GELU of a Dense layer; the int8 export then
    fails on TFLite Micro for that operator, and every other operator runs."""
    import keras

    from edgekit.inspect_model import inspect_model

    keras.utils.set_random_seed(0)  # an untrained model: some draws quantize past export's parity check
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(8, activation="gelu", name="gelu_dense")(h)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h)).save(tmp_path / "m.keras")
    info = inspect_model(tmp_path / "m.keras")
    assert not info["tflm_kernels"] and info["formats"]["tflite"]
    assert [b.split(":")[0] for b in info["blockers"]["tflm"]] == ["Erfc (in gelu_dense)"], info["blockers"]["tflm"]
    assert "GELU has no TFLite Micro kernel" in info["blockers"]["tflm"][0]
    r = edgekit_cli("export", tmp_path / "m.keras", "--format", "tflite", "--quant", "int8", "--calib", "uniform:0,1",
                    "--out", tmp_path / "export")
    assert r.returncode == 0, r.stderr
    r = edgekit_cli("bench", tmp_path / "export" / "m_int8.tflite", "--runtime", "tflm")
    assert r.returncode != 0 and "TFLite Micro has no kernel for GELU" in r.stdout + r.stderr
