"""Training throughput: ``edgekit train`` against a plain ``model.fit`` of the same model on the same arrays.

Both train the ``cnn`` recipe on ``builtin:mnist`` (7,200 training rows, 800 for validation) for
3 epochs, batch 64, Adam 1e-3, in this process, after one warm-up fit, in ABBA order; samples/s counts
training rows per second of ``fit`` (validation included in both). edgekit adds early stopping, the best-checkpoint
save per improving epoch, NaN termination and the training-history bookkeeping.

Target: edgekit within 5% of plain fit, either way (plain / edgekit samples-per-second ratio in
0.95-1.05): slower is overhead, and faster means edgekit's run does less work than the same fit.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import Results

EPOCHS, BATCH = 3, 64
BAND = 0.05  # either way: an edgekit run that trains on less data, or skips epochs, is faster and wrong


def plain_fit() -> float:
    import keras

    from edgekit.data import load_data
    from edgekit.trainer.recipes import build_recipe

    ds = load_data("builtin:mnist")
    x, y = ds.prepared("train"), ds.y_train
    keras.utils.set_random_seed(0)
    model = build_recipe("cnn", ds.input_shape, ds.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, validation_data=(ds.prepared("val"), ds.y_val), verbose=0)
    return len(y) * EPOCHS / (time.perf_counter() - t0)


def edgekit_fit(tmp: Path, i: int) -> float:
    from edgekit.trainer.fit import train

    record = train("cnn", "builtin:mnist", tmp / f"run{i}", epochs=EPOCHS, batch_size=BATCH, patience=EPOCHS,
                   verbose=0, log=lambda s: None)
    return record.training["samples_per_s"]


def main() -> bool:
    res = Results("train_throughput")
    print(f"training throughput: edgekit train vs plain model.fit (cnn, builtin:mnist, {EPOCHS} epochs)")
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        plain_fit()  # warm-up, discarded: the first fit in a process pays for TensorFlow's start (kernels, threads)
        for i in range(2):  # ABBA order, so drift in the machine hits both sides alike
            if i % 2 == 0:
                plain.append(plain_fit())
                ours.append(edgekit_fit(Path(tmp), i))
            else:
                ours.append(edgekit_fit(Path(tmp), i))
                plain.append(plain_fit())
    p, e = statistics.median(plain), statistics.median(ours)
    ratio = p / e
    res.add("samples/s plain fit vs edgekit train", f"{p:.0f} vs {e:.0f} (ratio {ratio:.3f})",
            f"ratio within 1 +/- {BAND:g}", abs(ratio - 1) <= BAND, plain=plain, edgekit=ours)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
