"""``package --target mcu``: MLPerf Tiny's int8 KWS as C++ sources for TFLite Micro.

TFLite Micro's headers and library come with a board's SDK, not with a Python package, so
``main.cc`` is not compiled here. What is checked is what a firmware engineer would check by
hand: the C array compiles (g++) and holds the model's exact bytes, 16-byte aligned; the
resolver registers exactly the operators the model uses (read by LiteRT, not by edgekit's
reader) with TFLite Micro's method names; the arena size lets TFLite Micro allocate the model;
the quantization constants are the file's; and the expected outputs in ``sample_data.h`` are what
TFLite Micro computes for the sample input in the same header.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import edgekit_cli, mlperf

KWS_LABELS = "down go left no off on right stop up yes silence unknown".split()


@pytest.fixture(scope="module")
def kws_package(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcu")
    labels = tmp / "labels.txt"
    labels.write_text("\n".join(KWS_LABELS) + "\n")
    r = edgekit_cli("package", mlperf("kws_ref_model.tflite"), "--target", "mcu", "--out", tmp / "mcu", "--labels", labels)
    assert r.returncode == 0, r.stderr
    return tmp / "mcu"


def _c_array(text: str, name: str, dtype) -> np.ndarray:
    body = re.search(rf"{name}\[\d*\] = \{{(.*?)\}};", text, re.S).group(1)
    return np.array([int(v, 0) for v in body.replace("\n", " ").split(",") if v.strip()], dtype=dtype)


def _constant(text: str, name: str) -> float:
    return float(re.search(rf"constexpr \w+ {name} = ([-0-9.e]+)f?;", text).group(1))


def test_the_c_array_compiles_and_holds_the_model_byte_for_byte_aligned(kws_package, tmp_path):
    assert shutil.which("g++"), "g++ compiles the C array a board would: apt-get install g++"
    harness = tmp_path / "dump.cc"
    harness.write_text('#include <cstdio>\n#include <cstdint>\n#include "model_data.h"\n'
                       "int main() { std::fwrite(g_model, 1, g_model_len, stdout);\n"
                       "  return reinterpret_cast<std::uintptr_t>(g_model) % 16 == 0 ? 0 : 3; }\n")
    exe = tmp_path / "dump"
    subprocess.run(["g++", "-std=c++17", "-O0", "-I", str(kws_package), str(harness), str(kws_package / "model_data.cc"),
                    "-o", str(exe)], check=True, capture_output=True)
    r = subprocess.run([str(exe)], capture_output=True)
    assert r.returncode == 0, "g_model is not 16-byte aligned"
    assert r.stdout == mlperf("kws_ref_model.tflite").read_bytes()


def test_the_resolver_registers_exactly_the_models_operators(kws_package):
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.runtimes.tflm_ops import RESOLVER_METHODS

    ops = {d["op_name"] for d in Interpreter(model_path=str(mlperf("kws_ref_model.tflite")))._get_ops_details()}
    header = (kws_package / "model_ops.h").read_text()
    assert set(re.findall(r"resolver\.(Add\w+)\(\)", header)) == {RESOLVER_METHODS[op] for op in ops}
    assert f"MicroMutableOpResolver<{len(ops)}>" in header


def test_the_resolver_table_names_kernels_the_installed_tflite_micro_has():
    import tflite_micro

    from edgekit.runtimes.tflm_ops import RESOLVER_METHODS

    library = next(p for p in __import__("pathlib").Path(tflite_micro.__file__).parent.rglob("_runtime*.so"))
    symbols = library.read_bytes()
    missing = [op for op in RESOLVER_METHODS if f"Register_{op}Ev".encode() not in symbols]
    assert not missing, missing


def test_settings_and_sample_agree_with_tflite_micro(kws_package):
    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro import runtime

    settings = (kws_package / "model_settings.h").read_text()
    arena = int(_constant(settings, "kTensorArenaSize"))
    assert 24272 * 1.1 <= arena <= 24272 * 1.1 + 1024 + 16  # the measured arena, plus the stated margin
    detail_in = Interpreter(model_path=str(mlperf("kws_ref_model.tflite"))).get_input_details()[0]
    assert _constant(settings, "kInput0Scale") == pytest.approx(detail_in["quantization"][0], rel=1e-6)
    assert _constant(settings, "kInput0ZeroPoint") == detail_in["quantization"][1]
    assert 'kLabels[kLabelCount] = {"down", "go"' in settings and "kLabelsOutput = 0" in settings

    sample = (kws_package / "sample_data.h").read_text()
    x = _c_array(sample, "kSampleInput0", np.int8).reshape(1, 49, 10, 1)
    expected = _c_array(sample, "kExpectedOutput0", np.int8)
    it = runtime.Interpreter.from_file(str(kws_package / "model.tflite"), arena_size=arena)
    it.set_input(x, 0)
    it.invoke()
    assert np.array_equal(it.get_output(0).reshape(-1), expected)
    main = (kws_package / "main.cc").read_text()
    for needed in ("RegisterModelOps(resolver)", "kTensorArenaSize", "kSampleInput0", "kExpectedOutput0", "void setup()"):
        assert needed in main
    readme = (kws_package / "README.md").read_text()
    assert "27,728 bytes: 24,272 measured" in readme and "CONV_2D x5" in readme


def test_what_a_microcontroller_cannot_run_is_refused_in_one_line_and_nothing_is_written(tmp_path):
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    # the KWS model with its RESHAPE turned into TOPK_V2, an operator TFLite Micro has no kernel for
    model = schema.ModelT.InitFromPackedBuf(mlperf("kws_ref_model.tflite").read_bytes(), 0)
    code = next(c for c in model.operatorCodes if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.RESHAPE)
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TOPK_V2
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    topk = tmp_path / "kws_topk.tflite"
    topk.write_bytes(bytes(builder.Output()))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(KWS_LABELS) + "\n")
    cases = [(mlperf("kws_ref_model_float32.tflite"), "float32 weights: a microcontroller runs full-integer int8 models"),
             (topk, "TFLite Micro has no kernel for TOPK_V2")]
    for model_path, message in cases:
        out = tmp_path / f"out_{model_path.stem}"
        r = edgekit_cli("package", model_path, "--target", "mcu", "--out", out, "--labels", labels)
        assert r.returncode != 0 and message in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not out.exists() and not list(tmp_path.glob(".out_*"))
