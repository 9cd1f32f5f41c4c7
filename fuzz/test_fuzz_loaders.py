"""Bounded fuzzing of the loaders that read untrusted files (``make fuzz``, not part of ``make test``).

Each target feeds mutated or random input to one loader and accepts exactly two outcomes: a
result, or an :class:`EdgekitError` (the one-line errors the CLI prints). Anything else (an
unexpected exception, a hang, a crash of edgekit itself) is a finding. Model bytes are run
through the isolated worker, so a runtime that crashes on them must come back as a failed
result, never take the caller down.

    make fuzz                        # FUZZ_EXAMPLES=200 by default
    FUZZ_EXAMPLES=2000 make fuzz
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgekit.errors import EdgekitError

N = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FIXTURES = Path(os.environ.get("EDGEKIT_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "mlperf-tiny"))
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, val in flips:
        b[pos % len(b)] = val
    return bytes(b[:cut] if cut is not None else b)


@SETTINGS
@given(doc=json_values, shard=st.binary(max_size=64))
def test_tfjs_model_folder(doc, shard):
    from edgekit.tfjs_model import read_tfjs_model

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model.json").write_text(json.dumps(doc))
        (Path(tmp) / "group1-shard1of1.bin").write_bytes(shard)
        try:
            read_tfjs_model(tmp)
        except EdgekitError:
            pass


@SETTINGS
@given(doc=json_values)
def test_manifest(doc):
    from edgekit.artifact import Manifest

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "manifest.json").write_text(json.dumps(doc))
        try:
            Manifest.load(Path(tmp))
        except EdgekitError:
            pass


@SETTINGS
@given(doc=json_values)
def test_device_profile(doc):
    from edgekit.device_profiles.schema import parse_profile

    try:
        parse_profile(doc, "fuzz.yaml")
    except EdgekitError:
        pass


@SETTINGS
@given(doc=json_values)
def test_check_thresholds_and_baseline(doc):
    from edgekit.gate.baseline import load_baseline, load_report
    from edgekit.gate.thresholds import Thresholds

    try:
        Thresholds.from_dict(doc, "edgekit.yaml").for_row({"format": "tflite", "quant": "int8"})
    except EdgekitError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.json"
        p.write_text(json.dumps(doc))
        for load in (load_baseline, load_report):
            try:
                load(p)
            except EdgekitError:
                pass


@SETTINGS
@given(text=st.text(max_size=400))
def test_yaml_profile_file(text):
    from edgekit.device_profiles import load_profile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "board.yaml"
        p.write_text(text)
        try:
            load_profile(p)
        except EdgekitError:
            pass


def _model_bytes_target(name: str, runtime: str, suffix: str):
    seed = FIXTURES / name
    data = seed.read_bytes() if seed.is_file() else b"\x00" * 64

    @settings(max_examples=max(N // 10, 5), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=8),
           cut=st.none() | st.integers(0, len(data)))
    def target(flips, cut):
        from edgekit.runtimes.isolated import run_isolated

        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / f"fuzz{suffix}"
            p.write_bytes(_mutate(data, flips, cut))
            r = run_isolated(runtime, p, np.zeros((1, 1, 640), np.float32)[0], timeout_s=60)
            assert r.ok or r.error  # a failed result with a message, never an exception here

    return target


test_tflite_bytes = _model_bytes_target("ad01_int8.tflite", "litert", ".tflite")
test_onnx_bytes = _model_bytes_target("ad01_int8.tflite", "onnxruntime", ".onnx")


def _small_keras_model(tmp: Path) -> tuple[bytes, bytes]:
    """A small Conv + Dense model saved as .keras and as .h5: seeds for the source-model targets."""
    import keras

    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(i)
    m = keras.Model(i, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
    m.save(tmp / "seed.keras")
    m.save(tmp / "seed.h5")
    return (tmp / "seed.keras").read_bytes(), (tmp / "seed.h5").read_bytes()


_SEEDS: dict[str, bytes] = {}


def _seed(suffix: str) -> bytes:
    if not _SEEDS:
        with tempfile.TemporaryDirectory() as tmp:
            _SEEDS[".keras"], _SEEDS[".h5"] = _small_keras_model(Path(tmp))
    return _SEEDS[suffix]


def _source_target(suffix: str):
    @settings(max_examples=max(N // 4, 5), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=8),
           cut=st.none() | st.integers(0, 40000))
    def target(flips, cut):
        """Mutated model files through the loader every command uses: a model or one clean error."""
        from edgekit.model_loading import load_source

        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / f"fuzz{suffix}"
            p.write_bytes(_mutate(_seed(suffix), flips, cut))
            try:
                load_source(p).close()
                event("loaded")
            except EdgekitError as e:
                event(f"refused: {type(e).__name__}")

    return target


test_keras_source_bytes = _source_target(".keras")
test_h5_source_bytes = _source_target(".h5")


@settings(max_examples=max(N // 40, 3), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), min_size=1, max_size=6),
       suffix=st.sampled_from([".keras", ".h5"]))
def test_converters_on_mutated_models(flips, suffix):
    """The converters themselves, on mutated models (weights turned to NaN or huge, broken configs):
    edgekit.export (a supervised child) returns a manifest or raises one clean error; a manifest
    lists only files that are whole, and no staging folder is left behind."""
    import edgekit
    from edgekit.artifact import Manifest

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / f"fuzz{suffix}"
        model.write_bytes(_mutate(_seed(suffix), flips, None))
        out = tmp / "out"
        try:
            manifest = edgekit.export(model, ["tflite", "onnx"], ["fp32", "int8"], out, calib="uniform:0,1",
                                      log=lambda line: None)
        except EdgekitError as e:
            event(f"refused: {type(e).__name__}")
            assert not out.exists() or not any(p.name.startswith(".edgekit-staging") for p in out.iterdir())
            return
        for a in Manifest.load(out).artifacts:
            event(f"artifact {a.status}")
            if a.ok:
                assert (out / a.path).is_file() and (out / a.path).stat().st_size == a.size_bytes
        assert manifest is not None and not any(p.name.startswith(".edgekit-staging") for p in out.iterdir())
