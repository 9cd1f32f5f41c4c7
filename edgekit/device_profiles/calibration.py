"""Calibration: the reference workloads whose published device latencies tie this host to a device.

A profile says "MobileNet v1 1.0 224 runs in 75 ms on this device with LiteRT on 4 threads"
(a published figure, with its source). Calibration builds the same workload here
(``keras.applications`` with ``weights=None``: no download; weights do not change latency),
exports it to the profile's format, and measures it on this host with the same runtime and
the host's thread count, in the same bench run as the artifacts. Then::

    factor   = published device latency / reference latency measured here
    estimate = artifact latency measured here x factor

For int8 artifacts the int8 reference is measured here, and the device figure is the published
one when the device ran int8 (``reference.quant: int8``, the microcontrollers), else the fp32 one
divided by the profile's ``int8_gain``. Built references are cached in
``$EDGEKIT_CACHE`` (default ``~/.cache/edgekit``), keyed by the TensorFlow version.

Example:
    >>> art = reference_artifact("mobilenet_v1", "tflite", "fp32")   # doctest: +SKIP
    >>> art.name                                                      # doctest: +SKIP
    'mobilenet_v1_fp32.tflite'
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from edgekit.device_profiles.schema import Profile

INPUT_SHAPE = (224, 224, 3)
# The machine yardstick (bench --yardstick): a small, published workload (MLPerf Tiny's visual wake
# words network: MobileNet v1 0.25 at 96x96), timed beside the artifacts so that the gate can compare
# latency across machines and loads as a ratio to it.
YARDSTICK = "mobilenet_v1_025_96"
# TFLite Micro's person detection example: the same network on 96x96 grayscale (a board's camera)
PERSON_DETECTION = "person_detection"
SHAPES = {"mobilenet_v1": INPUT_SHAPE, "mobilenet_v2": INPUT_SHAPE, YARDSTICK: (96, 96, 3), PERSON_DETECTION: (96, 96, 1)}
# How a reference workload is timed, on this host (bench) and on a device (profiles calibrate) alike,
# so that their ratio (the factor) compares like with like: 5 bursts of at least 0.2 s, the best
# burst's p50 (slow spells of a shared machine only ever slow a burst down).
REFERENCE_TIMING = {"warmup": 5, "runs": 10, "min_time_s": 0.2, "rounds": 5}
_FORMAT_OF_RUNTIME = {"litert": "tflite", "onnxruntime": "onnx", "tfjs-browser": "tfjs", "tfjs-node": "tfjs",
                      "litert-browser": "tflite", "ort-browser": "onnx", "tflm": "tflite"}
_SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "tfjs": "_tfjs"}


def cache_dir() -> Path:
    root = Path(os.environ.get("EDGEKIT_CACHE", Path.home() / ".cache" / "edgekit"))
    try:
        tf_version = metadata.version("tensorflow-cpu")
    except metadata.PackageNotFoundError:
        tf_version = metadata.version("tensorflow")
    return root / "calibration" / f"tf-{tf_version}"


INT8_COMPUTE = ("int8", "dynamic", "mixed")  # quant modes whose convolutions and matmuls run int8 kernels


def reference_quant(fmt: str, quant: str, profile: Profile | None = None) -> str:
    """The reference an artifact's estimate uses: int8 for TFLite/ONNX files whose compute is int8,
    else fp32.

    Dynamic-range files compute in int8 too: LiteRT's XNNPACK runs them with its QD8 kernels
    (activations quantized per inference, int8 weights: the demo CNN's dynamic file runs at its int8
    file's speed here, 3.5x its fp32 one), ONNX Runtime with ConvInteger/MatMulInteger. Scaled by the
    fp32 reference, the demo CNN's dynamic .tflite came out at 169% of a phone's fp32 peak: faster
    than the device can be. ``mixed`` files are int8 but for the operators kept in float.

    A profile whose reference runs TF.js (the browsers) has no int8 reference: TF.js computes in
    float32. Its factor (device / host, on the fp32 reference) then scales every engine's latency
    measured here, int8 included, so an int8 artifact's own speed-up on this host carries over.

    >>> [reference_quant("tflite", q) for q in ("fp32", "fp16", "dynamic", "int8", "mixed", "int16x8")]
    ['fp32', 'fp32', 'int8', 'int8', 'int8', 'fp32']
    >>> reference_quant("tfjs", "uint8"), reference_quant("onnx", "dynamic")
    ('fp32', 'int8')
    """
    int8_ref = profile is None or reference_format(profile) in ("tflite", "onnx")
    return "int8" if quant in INT8_COMPUTE and fmt in ("tflite", "onnx") and int8_ref else "fp32"


def reference_format(profile: Profile) -> str:
    return _FORMAT_OF_RUNTIME[profile.throughput.reference.runtime]


def reference_artifact(workload: str, fmt: str, quant: str) -> Path:
    """The reference workload exported to ``fmt`` in ``quant``; built once, then read from the cache."""
    target = cache_dir() / f"{workload}_{quant}{_SUFFIX[fmt]}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    from edgekit.exporters import get_exporter
    from edgekit.model_loading import load_source

    with tempfile.TemporaryDirectory(prefix="edgekit-calib-", dir=target.parent) as tmp:
        keras_path = _build_keras(workload, Path(tmp))
        source = load_source(keras_path)
        try:
            calibration = None
            if quant == "int8":
                x = np.random.default_rng(0).uniform(-1, 1, size=(16, *SHAPES[workload])).astype(np.float32)
                calibration = {source.inputs[0].name: x}
            art = get_exporter(fmt).export(source, Path(tmp), quant=quant, calibration=calibration)
        finally:
            source.close()
        built = Path(tmp) / art.path
        try:
            os.replace(built, target)
        except OSError:  # another process built it first
            if not target.exists():
                raise
            shutil.rmtree(built, ignore_errors=True)
    return target


def _build_keras(workload: str, folder: Path) -> Path:
    from edgekit.tf_env import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    builders = {
        "mobilenet_v1": lambda: keras.applications.MobileNet(input_shape=INPUT_SHAPE, alpha=1.0, weights=None),
        "mobilenet_v2": lambda: keras.applications.MobileNetV2(input_shape=INPUT_SHAPE, alpha=1.0, weights=None),
        YARDSTICK: lambda: keras.applications.MobileNet(input_shape=SHAPES[YARDSTICK], alpha=0.25, weights=None,
                                                        classes=2),
        PERSON_DETECTION: lambda: keras.applications.MobileNet(input_shape=SHAPES[PERSON_DETECTION], alpha=0.25,
                                                               weights=None, classes=2),
    }
    model = builders[workload]()
    if workload in (YARDSTICK, PERSON_DETECTION):
        # Untrained, its logits span ~1e-8, and TFLite Micro's int8 softmax aborts on an input scale that
        # small; a bias of +-1 gives them a trained model's range (the operators and the time are the same).
        head = model.get_layer("conv_preds")
        head.bias.assign(np.array([1.0, -1.0], dtype=np.float32))
    path = folder / f"{workload}.keras"
    model.save(path)
    return path


def calibrate_on_device(profile: Profile, device, *, runs: int = 50) -> tuple[dict, str]:
    """Measure ``profile``'s reference workload (fp32, and int8 for a LiteRT/ONNX reference) on a remote
    ``device`` (an :class:`edgekit.agent.client.RemoteDevice`); returns the profile of that device as a
    dict (the reference's latency now the measured one, its source saying so) and a one-line summary."""
    import time as _time

    from edgekit.errors import RuntimeFailure

    t = profile.throughput
    ref = t.reference
    fmt = reference_format(profile)
    threads = min(ref.threads, device.info.get("cores") or ref.threads)
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, *SHAPES[ref.workload])).astype(np.float32)
    timing = {**REFERENCE_TIMING, "runs": runs}
    measured = {}
    for quant in ("fp32", "int8") if fmt in ("tflite", "onnx") else ("fp32",):
        r = device.run(ref.runtime, reference_artifact(ref.workload, fmt, quant), x, threads=threads, timing=timing,
                       want_outputs=False, pin_cpus=True)
        if not r.ok:
            raise RuntimeFailure(f"the reference {ref.workload} {quant} did not run on {device.info.get('name')}: {r.error}")
        measured[quant] = r.reply["latency_ms"]["p50"]
    name = str(device.info.get("name"))
    when = _time.strftime("%Y-%m-%d")
    doc = profile.to_dict()
    doc.pop("path", None)
    doc["name"] = name
    doc["description"] = f"{name}: {profile.description} Calibrated on the device itself ({device.info.get('cpu')})."
    doc["threads"] = threads
    doc["cpu"] = {"model": device.info.get("cpu"), "cores": device.info.get("cores")}  # peaks stay the base profile's
    doc["throughput"]["reference"].update(
        latency_ms=round(measured["fp32"], 4), threads=threads,
        source=f"measured on {name} ({device.info.get('cpu')}, {device.info.get('cores')} cores) by edgekit agent, "
               f"{ref.runtime}, {threads} threads, {when} (was: {ref.latency_ms:g} ms, {ref.source})")
    if "int8" in measured:
        doc["throughput"]["int8_gain"] = round(measured["fp32"] / measured["int8"], 3)
        doc["throughput"]["int8_gain_source"] = f"{ref.workload} fp32 / int8 measured on {name}, {when}"
    summary = (f"{ref.workload} on {name}: {measured['fp32']:.3g} ms fp32"
               + (f", {measured['int8']:.3g} ms int8" if "int8" in measured else "")
               + f" ({threads} threads; the profile said {ref.latency_ms:g} ms)")
    return doc, summary
