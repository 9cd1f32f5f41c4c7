"""Runtimes, one module per runtime, and the registry that maps formats to them.

Example:
    >>> runtime_for_format("tflite")
    'litert'
    >>> format_of_path("model_int8.tflite")
    'tflite'
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edgekit.errors import UsageError, suggest

# name -> (module, class, formats it runs)
RUNTIMES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "litert": ("edgekit.runtimes.litert", "LiteRTRuntime", ("tflite",)),
    "onnxruntime": ("edgekit.runtimes.onnxruntime", "ONNXRuntime", ("onnx",)),
    "keras": ("edgekit.runtimes.keras_ref", "KerasRuntime", ("keras",)),
}

# file suffix -> format
SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}


def get_runtime(name: str, **kwargs):
    if name not in RUNTIMES:
        raise UsageError(f"Unknown runtime '{name}'.{suggest(name, RUNTIMES)} Runtimes: {', '.join(RUNTIMES)}")
    module, cls, _ = RUNTIMES[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)


def runtime_for_format(fmt: str) -> str:
    for name, (_, _, formats) in RUNTIMES.items():
        if fmt in formats:
            return name
    raise UsageError(f"No runtime runs format '{fmt}'")


def format_of_path(path: str | Path) -> str | None:
    return SUFFIXES.get(Path(path).suffix.lower())
