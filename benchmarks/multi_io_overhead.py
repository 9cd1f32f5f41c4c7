"""Several inputs and outputs: edgekit's session loops against the raw runtime APIs.

A three-input, three-output model (image, feature vector, int32 token ids -> class probabilities,
a regression value, sigmoid tags) is exported by edgekit to TFLite and ONNX fp32. In one process,
interleaved: edgekit's LiteRT session (inputs bound by signature name, one invoke per call)
against a raw ``get_signature_runner()`` loop on the same feeds; edgekit's ONNX Runtime session
against a raw ``session.run`` with the same feeds.

Targets: each edgekit loop within 5% of the raw loop doing the same work, either way (p50, median
of 7 repeats; docs/testing.md rule 3: a loop that under-measures fails too). The convenience calls (signature runner, ``session.run``), which also set inputs and copy
outputs on every call, are shown for information.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import Results, median, within_band

REPEATS, RUNS = 7, 2000
BAND_PCT = 5.0  # either way: a session loop that skips work fails like one that adds some


def three_by_three(path: Path) -> dict:
    import keras

    keras.utils.set_random_seed(0)
    image, feats = keras.Input((16, 16, 1), name="image"), keras.Input((8,), name="features")
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    h = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, strides=2, activation="relu")(image))
    t = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(100, 8)(tokens))
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()([h, feats, t]))
    model = keras.Model({"image": image, "features": feats, "tokens": tokens}, {
        "label": keras.layers.Dense(5, activation="softmax", name="label")(h),
        "value": keras.layers.Dense(1, name="value")(h),
        "tags": keras.layers.Dense(3, activation="sigmoid", name="tags")(h)})
    model.save(path)
    rng = np.random.default_rng(0)
    return {"image": rng.uniform(0, 1, (1, 16, 16, 1)).astype(np.float32),
            "features": rng.uniform(0, 1, (1, 8)).astype(np.float32),
            "tokens": rng.integers(0, 100, (1, 12)).astype(np.int32)}


def _time(call, runs: int = RUNS) -> float:
    for _ in range(50):
        call()
    clock, samples = time.perf_counter_ns, []
    for _ in range(runs):
        t0 = clock()
        call()
        samples.append(clock() - t0)
    return float(np.median(samples)) / 1e6


def litert_pair(path: Path, x: dict) -> tuple[float, float, float]:
    """(raw: inputs set once by the signature's tensor indices, then invoke; edgekit's bound session;
    the signature runner's own call, which also sets inputs and copies outputs, for information)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.runtimes.litert import LiteRTSession

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    for name, d in it.get_signature_runner().get_input_details().items():
        it.set_tensor(d["index"], x[name])
    raw = _time(it.invoke)
    session = LiteRTSession(str(path), threads=1)
    runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner()
    return raw, _time(session.bind(x)), _time(lambda: runner(**x))


def ort_pair(path: Path, x: dict) -> tuple[float, float, float]:
    """(raw: the same feeds bound once with io_binding; edgekit's bound session; plain session.run, for information)."""
    import onnxruntime as ort

    from edgekit.runtimes.onnxruntime import ONNXSession

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    binding = sess.io_binding()
    for k, v in x.items():
        binding.bind_cpu_input(k, v)
    for n in names:
        binding.bind_output(n, "cpu")
    raw = _time(lambda: sess.run_with_iobinding(binding))
    session = ONNXSession(str(path), threads=1)
    return raw, _time(session.bind(x)), _time(lambda: sess.run(names, x))


def main() -> bool:
    import edgekit

    res = Results("multi_io_overhead")
    print("several inputs and outputs: edgekit's session loops vs the raw runtime APIs (3 inputs, 3 outputs)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        x = three_by_three(tmp / "m.keras")
        edgekit.export(str(tmp / "m.keras"), ["tflite", "onnx"], ["fp32"], str(tmp / "exp"), log=lambda s: None)
        for label, pair, artifact, api in (
                ("LiteRT (signature tensors set once, invoke)", litert_pair, "m_fp32.tflite", "signature runner call"),
                ("ONNX Runtime (io_binding, run_with_iobinding)", ort_pair, "m_fp32.onnx", "session.run")):
            raws, ours, apis = [], [], []
            for _ in range(REPEATS):
                r, e, a = pair(tmp / "exp" / artifact, x)
                raws.append(r)
                ours.append(e)
                apis.append(a)
            r, e, a = median(raws), median(ours), median(apis)
            within_band(res, f"edgekit vs raw {label}", e, r, pct=BAND_PCT, raw_repeats_ms=raws, edgekit_repeats_ms=ours)
            res.add(f"  the {api} (sets inputs and copies outputs each call)", f"{a * 1000:.2f} us", "information", None)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
