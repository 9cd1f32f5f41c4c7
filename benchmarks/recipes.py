"""The recipes on real data: every image recipe and Keras's "Simple MNIST convnet", trained by
``edgekit train`` on ``builtin:mnist`` (8,000 real digits to train, 2,000 to test), 15 epochs,
default settings, in one run; each exported to TFLite int8 and run on the test set.

Targets (issue "recipes that win on real data"): every image recipe within 1 point of the Keras
example's test accuracy, the best recipe at or above it, and no recipe dominated by the Keras
example on all of accuracy, int8 host p50 latency and int8 size. The table goes to docs/training.md
by hand from runs/bench/recipes.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import REPO, Results

from edgekit.bench.runner import run_bench
from edgekit.exporters.supervised import export_supervised
from edgekit.trainer.fit import train

RECIPES = ["cnn", "ds-cnn", "mobilenet-v2", "resnet8"]
KERAS_EXAMPLE = str(REPO / "benchmarks" / "keras_mnist_convnet.py")
EPOCHS = 15


def measure(name: str, recipe: str, tmp: Path) -> dict:
    run = tmp / name
    record = train(recipe, "builtin:mnist", run, epochs=EPOCHS, verbose=0, log=lambda s: None)
    export_supervised(run, ["tflite"], ["int8"], tmp / f"{name}_export", log=lambda s: None)
    report = run_bench([str(tmp / f"{name}_export")], runs=200, min_time_s=0.5, runtimes=["litert"])
    int8 = next(r for r in report["rows"] if r["quant"] == "int8")
    row = {"recipe": name, "accuracy": record.metrics["test_accuracy"], "train_s": record.training["seconds"],
           "epochs_run": record.training["epochs_run"], "samples_per_s": record.training.get("samples_per_s"),
           "params": record.metrics["params"], "int8_accuracy": int8.get("accuracy"), "int8_size_bytes": int8["size_bytes"],
           "int8_p50_ms": int8["latency_ms"]["p50"]}
    print(f"  {name}: accuracy {row['accuracy']:.4f} ({row['epochs_run']} epochs, {row['train_s']:.0f} s), int8 accuracy "
          f"{row['int8_accuracy']:.4f}, {row['int8_size_bytes'] / 1024:.0f} KB, p50 {row['int8_p50_ms']:.4f} ms", flush=True)
    return row


def main() -> bool:
    res = Results("recipes")
    print(f"recipes on builtin:mnist, {EPOCHS} epochs, default settings, against Keras's Simple MNIST convnet")
    with tempfile.TemporaryDirectory(prefix="edgekit-recipes-") as tmp:
        keras_row = measure("keras-example", KERAS_EXAMPLE, Path(tmp))
        rows = [measure(r, r, Path(tmp)) for r in RECIPES]
    base = keras_row["accuracy"]
    for r in rows:
        gap = (base - r["accuracy"]) * 100
        res.add(f"{r['recipe']} test accuracy vs Keras example {base:.4f}", f"{r['accuracy']:.4f} ({-gap:+.2f} points)",
                ">= -1 point", gap <= 1.0, **r)
        dominated = (keras_row["accuracy"] >= r["accuracy"] and keras_row["int8_p50_ms"] <= r["int8_p50_ms"]
                     and keras_row["int8_size_bytes"] <= r["int8_size_bytes"])
        res.add(f"{r['recipe']} not dominated by the Keras example (accuracy, int8 p50, int8 size)",
                "dominated" if dominated else "not dominated", "not dominated", not dominated)
    best = max(rows, key=lambda r: r["accuracy"])
    res.add("best recipe vs Keras example", f"{best['recipe']} {best['accuracy']:.4f} vs {base:.4f}", ">= Keras example",
            best["accuracy"] >= base, keras_example=keras_row)
    return res.save()


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
