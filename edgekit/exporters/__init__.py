"""Exporters, one module per format, and the registry that is their single source of truth.

Adding a format means one module plus one line in :data:`EXPORTERS`.

Example:
    >>> sorted(EXPORTERS)
    ['onnx', 'tfjs', 'tflite']
    >>> get_exporter("tflite").quant_modes
    ('fp32', 'fp16', 'dynamic', 'int8', 'int16x8', 'mixed')
    >>> all_quant_modes(["tflite"], on_request=False)
    ['fp32', 'fp16', 'dynamic', 'int8']
"""

from __future__ import annotations

import importlib

from edgekit.errors import UsageError, suggest

# The quant modes, listed once: here, so that the CLI can validate flags without importing a
# converter; each exporter class reads its own from this table.
GRAPH_QUANTS = ("fp32", "fp16", "dynamic", "int8", "int16x8", "mixed")  # TFLite and ONNX
CALIBRATED = ("int8", "int16x8", "mixed")  # modes whose calibration runs the model (they need DATA)

# name -> (module, class, quant modes)
EXPORTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "tflite": ("edgekit.exporters.tflite", "TFLiteExporter", GRAPH_QUANTS),
    "onnx": ("edgekit.exporters.onnx", "ONNXExporter", GRAPH_QUANTS),
    "tfjs": ("edgekit.exporters.tfjs", "TFJSExporter", ("fp32", "fp16", "uint8")),
}


def format_names() -> list[str]:
    return list(EXPORTERS)


# Quant modes made only when named, never by ``--quant all``: the 16x8 mode (16-bit activations,
# int8 weights) runs on LiteRT's reference kernels, not XNNPACK, and in ONNX Runtime as float
# between quantize/dequantize pairs, so it is slow in both;
# ``mixed`` is a measured search (edgekit.quantize.speed_mix), seconds to minutes.
ON_REQUEST = ("int16x8", "mixed")


def all_quant_modes(formats: list[str] | None = None, *, on_request: bool = True) -> list[str]:
    """The quant modes of ``formats``; ``on_request=False``: what ``--quant all`` means."""
    modes: list[str] = []
    for f in formats or EXPORTERS:
        modes += [m for m in EXPORTERS[f][2] if m not in modes and (on_request or m not in ON_REQUEST)]
    return modes


def get_exporter(name: str):
    if name not in EXPORTERS:
        raise UsageError(f"Unknown format '{name}'.{suggest(name, EXPORTERS)} Formats: {', '.join(EXPORTERS)}")
    module, cls, _ = EXPORTERS[name]
    return getattr(importlib.import_module(module), cls)()
