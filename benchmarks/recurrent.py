"""Recurrent layers in TFLite: edgekit's fused LSTM against the converter's WHILE loop.

A Keras 3 LSTM and a GRU classifier are trained on real data (the built-in digits, read as
8 rows of 8 pixels: a sequence of 8 steps), then exported by edgekit. The baseline is what
the TFLite converter makes of the same Keras 3 model without edgekit's tracing: the layer's
loop as a ``WHILE`` op (the batch fixed at 1 as well, which the converter needs). Same runtime
(LiteRT, 1 thread), same run, interleaved.

Targets: the fused LSTM no slower and no larger than the WHILE loop; int8 of both models exports
(it crashed the converter on loops) and keeps accuracy within 2 points of float on the real test
set. Informational: GRU (no fused op in TFLite: WHILE for float, unrolled for int8) and TF.js.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from common import Results

from edgekit.runtimes.isolated import run_isolated


def trained(kind: str, x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    i = keras.Input(x.shape[1:])
    h = keras.layers.LSTM(64)(i) if kind == "lstm" else keras.layers.GRU(64)(i)
    model = keras.Model(i, keras.layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)
    model.save(path)
    return path


def while_loop_tflite(model_path: Path, out: Path, shape: tuple[int, ...]) -> Path:
    """The baseline: the converter's own handling of a Keras 3 recurrent layer (a WHILE op)."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(model_path)
    sm = out.with_suffix(".savedmodel")
    model.export(str(sm), format="tf_saved_model", input_signature=[tf.TensorSpec([1, *shape], tf.float32)],
                 verbose=False)
    out.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(sm)).convert())
    return out


def p50_us(path: Path, x: np.ndarray, runtime: str = "litert") -> float:
    r = run_isolated(runtime, path, x[:1], threads=1, timing={"warmup": 50, "runs": 500, "min_time_s": 0.5},
                     want_outputs=False, pin_cpus=True)
    return r.reply["latency_ms"]["p50"] * 1e3


def main() -> bool:
    from edgekit.data import load_data
    from edgekit.exporters.pipeline import export_model

    res = Results("recurrent")
    print("Recurrent layers in TFLite: fused LSTM vs the converter's WHILE loop (digits as 8-step sequences)")
    ds = load_data("builtin:digits")
    prep = lambda a: (np.asarray(a, np.float32) / 16.0).reshape(len(a), 8, 8)  # noqa: E731
    x_train, y_train = prep(ds.x_train), np.asarray(ds.y_train)
    x_test, y_test = prep(ds.x_test), np.asarray(ds.y_test)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "seq.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        for kind in ("lstm", "gru"):
            src = trained(kind, x_train, y_train, tmp / f"{kind}.keras")
            m = export_model(src, ["tflite"], ["fp32", "int8"], tmp / kind, calib=str(tmp / "seq.npz"), log=lambda s: None)
            arts = {a.quant: a for a in m.artifacts}
            baseline = while_loop_tflite(src, tmp / f"{kind}_while.tflite", x_train.shape[1:])
            acc = {}
            for name, path in (("while", baseline), ("fp32", tmp / kind / arts["fp32"].path),
                               ("int8", tmp / kind / arts["int8"].path)):
                out = run_isolated("litert", path, x_test).outputs
                acc[name] = float((out.argmax(1) == y_test).mean())
            keras_acc = float((run_isolated("keras", src, x_test).outputs.argmax(1) == y_test).mean())
            fused, loop = tmp / kind / arts["fp32"].path, baseline
            lat = {"fp32": [], "while": [], "int8": []}
            for _ in range(3):  # interleaved
                for name, path in (("fp32", fused), ("while", loop), ("int8", tmp / kind / arts["int8"].path)):
                    lat[name].append(p50_us(path, x_test))
            p = {k: float(np.median(v)) for k, v in lat.items()}
            ops = ", ".join(sorted(arts["fp32"].details["operators"]))
            label = "fused LSTM" if kind == "lstm" else "GRU"
            res.add(f"{kind}: accuracy on the real test set: Keras {keras_acc:.3f}, WHILE {acc['while']:.3f}, edgekit fp32 "
                    f"{acc['fp32']:.3f}, int8 {acc['int8']:.3f} ({arts['int8'].details.get('recurrent', '')})",
                    f"{(acc['int8'] - keras_acc) * 100:+.1f} pt int8", "int8 within 2 pt of float",
                    acc["int8"] >= keras_acc - 0.02)
            rows = f"p50 1 thread: {label} fp32 {p['fp32']:.1f} us vs WHILE {p['while']:.1f} us (int8 {p['int8']:.1f} us)"
            sizes = (fused.stat().st_size, loop.stat().st_size)
            if kind == "lstm":
                res.add(f"{kind}: {rows}; ops {ops}", f"{p['fp32'] / p['while']:.2f}x", "<= 1.0x", p["fp32"] <= p["while"])
                res.add(f"{kind}: size fused {sizes[0]} B vs WHILE {sizes[1]} B", f"{sizes[0] / sizes[1]:.2f}x", "<= 1.0x",
                        sizes[0] <= sizes[1])
            else:
                res.add(f"{kind}: {rows}; ops {ops}", f"{p['fp32'] / p['while']:.2f}x", "informational (same WHILE op)", None)
            tfjs = export_model(src, ["tfjs"], ["fp32"], tmp / f"{kind}-tfjs", log=lambda s: None).artifacts[0]
            if tfjs.ok:
                t = p50_us(tmp / f"{kind}-tfjs" / tfjs.path, x_test, runtime="tfjs-node")
                res.add(f"{kind}: TF.js (unrolled, tfjs-node wasm) p50 {t:.1f} us, agreement {tfjs.parity['top1_agreement']:.3f}",
                        f"{t / p['fp32']:.2f}x TFLite fp32", "informational", None)
            else:
                res.add(f"{kind}: TF.js export", tfjs.error or tfjs.status, "exports and runs", False)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
