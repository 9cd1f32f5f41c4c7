"""Recurrent layers in TFLite: edgekit's fused LSTM against the converter's WHILE loop.

A Keras 3 LSTM and a GRU classifier (and a tf_keras GRU) are trained on real data (the built-in digits, read as
8 rows of 8 pixels: a sequence of 8 steps), then exported by edgekit. The baseline is what
the TFLite converter makes of the same model without edgekit's tracing: the layer's
loop as a ``WHILE`` op (the batch fixed at 1 as well, which the converter needs). Same runtime
(LiteRT, 1 thread), same run, interleaved.

Targets: the fused LSTM no larger than the WHILE loop, ``--unroll`` no slower; int8 exports
(it crashed the converter on loops) and keeps accuracy within 2 points of Keras on the real test
set, fused and ``--unroll``; TF.js exports and agrees. Informational: ``--unroll`` against the
default (latency, size), a GRU (no fused op in TFLite: WHILE for float, unrolled for int8),
and the same GRU in a Keras 2 (tf_keras) file, traced the same way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from common import Results

from edgekit.runtimes.isolated import run_isolated


def trained(kind: str, x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    """An LSTM(64) or GRU(64) classifier trained on ``x``; ``keras2-`` kinds are built with tf_keras (a .h5)."""
    if kind.startswith("keras2-"):
        import tf_keras as keras

        path = path.with_suffix(".h5")
    else:
        import keras
    keras.utils.set_random_seed(0)
    i = keras.Input(x.shape[1:])
    h = keras.layers.LSTM(64)(i) if kind.endswith("lstm") else keras.layers.GRU(64)(i)
    model = keras.Model(i, keras.layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=30 if x.shape[1] <= 8 else 10, batch_size=64, verbose=0)
    model.save(path)
    return path


def while_loop_tflite(model_path: Path, out: Path, shape: tuple[int, ...]) -> Path:
    """The baseline: the converter's own handling of a recurrent layer (a WHILE op), batch fixed at 1."""
    import tensorflow as tf

    from edgekit.model_loading import load_source
    from edgekit.source_model import export_saved_model

    sm = out.with_suffix(".savedmodel")
    source = load_source(model_path)  # loaded only: none of edgekit's recurrent tracing
    export_saved_model(source.keras_model, sm, input_signature=[tf.TensorSpec([1, *shape], tf.float32)])
    out.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(sm)).convert())
    return out


def p50_us(path: Path, x: np.ndarray, runtime: str = "litert") -> float:
    r = run_isolated(runtime, path, x[:1], threads=1, timing={"warmup": 50, "runs": 500, "min_time_s": 0.5},
                     want_outputs=False, pin_cpus=True)
    return r.reply["latency_ms"]["p50"] * 1e3


# layer, sequence steps (digits as 8 rows, or 64 pixels); keras2-: a tf_keras (Keras 2) .h5 file
CASES = [("lstm", 8), ("lstm", 64), ("gru", 8), ("keras2-gru", 8)]


def main() -> bool:
    from edgekit.data import load_data
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.pipeline import export_model

    res = Results("recurrent")
    print("Recurrent layers in TFLite: edgekit (fused LSTM / --unroll) vs the converter's WHILE loop, digits as sequences")
    ds = load_data("builtin:digits")
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind, steps in CASES:
            prep = lambda a, steps=steps: (np.asarray(a, np.float32) / 16.0).reshape(len(a), steps, 64 // steps)  # noqa: E731
            x_train, y_train = prep(ds.x_train), np.asarray(ds.y_train)
            x_test, y_test = prep(ds.x_test), np.asarray(ds.y_test)
            name = f"{kind}-{steps}"
            data = tmp / f"{name}.npz"
            np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
            src = trained(kind, x_train, y_train, tmp / f"{name}.keras")
            files = {"WHILE fp32": while_loop_tflite(src, tmp / f"{name}_while.tflite", x_train.shape[1:])}
            for how, options in (("edgekit", ExportOptions()), ("--unroll", ExportOptions(unroll=True))):
                m = export_model(src, ["tflite"], ["fp32", "int8"], tmp / f"{name}{how}", calib=str(data), options=options,
                                 log=lambda s: None)
                for a in m.artifacts:
                    assert a.ok, (name, how, a.error)
                    files[f"{how} {a.quant}"] = tmp / f"{name}{how}" / a.path
                    if a.quant == "fp32":
                        print(f"  {name} {how}: {a.details.get('recurrent')}; ops {', '.join(sorted(a.details['operators']))}")
            keras_acc = float((run_isolated("keras", src, x_test).output.argmax(1) == y_test).mean())
            acc = {k: float((run_isolated("litert", f, x_test).output.argmax(1) == y_test).mean()) for k, f in files.items()}
            lat: dict[str, list[float]] = {k: [] for k in files}
            for _ in range(3):  # interleaved
                for k, f in files.items():
                    lat[k].append(p50_us(f, x_test))
            p = {k: float(np.median(v)) for k, v in lat.items()}
            size = {k: f.stat().st_size for k, f in files.items()}
            table.append((name, keras_acc, acc, p, size))
            for how in ("edgekit", "--unroll"):
                res.add(f"{name}: {how} int8 accuracy {acc[f'{how} int8']:.3f} vs Keras {keras_acc:.3f} (real test set)",
                        f"{(acc[f'{how} int8'] - keras_acc) * 100:+.1f} pt", "within 2 pt", acc[f"{how} int8"] >= keras_acc - 0.02)
            f, w, u = "edgekit fp32", "WHILE fp32", "--unroll fp32"
            if kind.endswith("lstm"):
                res.add(f"{name}: fused LSTM fp32 size {size[f]} B vs WHILE {size[w]} B", f"{size[f] / size[w]:.2f}x", "<= 1.0x",
                        size[f] <= size[w])
                res.add(f"{name}: fused LSTM fp32 p50 {p[f]:.1f} us vs WHILE {p[w]:.1f} us", f"{p[f] / p[w]:.2f}x",
                        "informational (LiteRT's LSTM kernel vs XNNPACK inside the loop)", None)
            res.add(f"{name}: --unroll fp32 p50 {p[u]:.1f} us vs WHILE {p[w]:.1f} us", f"{p[u] / p[w]:.2f}x", "<= 1.0x",
                    p[u] <= p[w])
            u, f = "--unroll int8", "edgekit int8"
            res.add(f"{name}: --unroll int8 p50 {p[u]:.1f} us vs default int8 {p[f]:.1f} us; size {size[u]} B vs {size[f]} B",
                    f"{p[u] / p[f]:.2f}x latency, {size[u] / size[f]:.2f}x size", "informational", None)
            tfjs = export_model(src, ["tfjs"], ["fp32"], tmp / f"{name}-tfjs", log=lambda s: None).artifacts[0]
            ok = tfjs.ok and tfjs.parity["top1_agreement"] >= 0.99
            t = p50_us(tmp / f"{name}-tfjs" / tfjs.path, x_test, runtime="tfjs-node") if tfjs.ok else float("nan")
            res.add(f"{name}: TF.js fp32 (unrolled; tfjs-node) exports and agrees: {tfjs.status}, p50 {t:.0f} us",
                    f"agreement {tfjs.parity['top1_agreement']:.3f}" if tfjs.ok else str(tfjs.error), ">= 0.99", ok)
    keys = ["WHILE fp32", "edgekit fp32", "edgekit int8", "--unroll fp32", "--unroll int8"]
    print("\n| model | Keras acc | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, keras_acc, acc, p, size in table:
        cells = [f"{acc[k]:.3f}, {p[k]:.1f} us, {size[k] / 1024:.1f} KB" for k in keys]
        print(f"| {name} | {keras_acc:.3f} | " + " | ".join(cells) + " |")
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
