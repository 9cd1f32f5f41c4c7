"""Runtimes, one module per runtime, and the registry that maps formats to them.

Example:
    >>> runtime_for_format("tflite")
    'litert'
    >>> format_of_path("model_int8.tflite")
    'tflite'
    >>> runtimes_for_format("tfjs")
    ['tfjs-node', 'tfjs-browser']
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edgekit.errors import UsageError, suggest

# name -> (module, class, formats it runs)
RUNTIMES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "litert": ("edgekit.runtimes.litert", "LiteRTRuntime", ("tflite",)),
    "onnxruntime": ("edgekit.runtimes.onnxruntime", "ONNXRuntime", ("onnx",)),
    "tfjs-node": ("edgekit.runtimes.tfjs_node", "TFJSNodeRuntime", ("tfjs",)),
    "tfjs-browser": ("edgekit.runtimes.tfjs_browser", "TFJSBrowserRuntime", ("tfjs",)),
    "tfjs-browser-webgl": ("edgekit.runtimes.tfjs_browser", "TFJSBrowserWebGLRuntime", ("tfjs",)),
    "litert-browser": ("edgekit.runtimes.litert_browser", "LiteRTBrowserRuntime", ("tflite",)),
    "ort-browser": ("edgekit.runtimes.ort_web", "ORTBrowserRuntime", ("onnx",)),
    "ort-web-node": ("edgekit.runtimes.ort_web", "ORTNodeRuntime", ("onnx",)),
    "tfjs-node-cpu": ("edgekit.runtimes.tfjs_node", "TFJSNodeCPURuntime", ("tfjs",)),
    "keras": ("edgekit.runtimes.keras_ref", "KerasRuntime", ("keras",)),
    "tflm": ("edgekit.runtimes.tflm", "TFLMRuntime", ("tflite",)),  # TFLite Micro's kernels: a microcontroller's answers
}

# The runtimes `edgekit bench` uses for a format when none is asked for, in order; the first
# one also validates exports. The others (WebGL, the plain-JS cpu backend) run on request.
DEFAULT_RUNTIMES: dict[str, tuple[str, ...]] = {
    "tflite": ("litert",),
    "onnx": ("onnxruntime",),
    "tfjs": ("tfjs-node", "tfjs-browser"),
    "keras": ("keras",),
}

# file suffix -> format
SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}


def get_runtime(name: str, **kwargs):
    if name not in RUNTIMES:
        raise UsageError(f"Unknown runtime '{name}'.{suggest(name, RUNTIMES)} Runtimes: {', '.join(RUNTIMES)}")
    module, cls, _ = RUNTIMES[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)


def runtime_for_format(fmt: str) -> str:
    """The runtime that validates ``fmt`` at export: the first of its default runtimes."""
    return runtimes_for_format(fmt)[0]


def runtimes_for_format(fmt: str, wanted: list[str] | None = None) -> list[str]:
    """The runtimes to bench ``fmt`` on: the defaults, or those of ``wanted`` that run it."""
    if wanted:
        return [r for r in wanted if fmt in RUNTIMES[r][2]]
    if fmt not in DEFAULT_RUNTIMES:
        raise UsageError(f"No runtime runs format '{fmt}'")
    return list(DEFAULT_RUNTIMES[fmt])


def format_of_path(path: str | Path) -> str | None:
    """``tflite`` for a .tflite file, ``tfjs`` for a TF.js model folder or its model.json."""
    from edgekit.tfjs_model import is_tfjs_path

    if is_tfjs_path(path):
        return "tfjs"
    return SUFFIXES.get(Path(path).suffix.lower())
