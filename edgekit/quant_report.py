"""``edgekit inspect MODEL --quant``: which layers int8 hurts, before (or instead of) exporting.

LiteRT's quantization debugger calibrates the model on ``--calib`` data (default: the run's own)
and measures every quantized layer's output against the float model: ``rmse/scale`` is the root
mean square error in units of the layer's quantization step. Layers above 0.7 (the threshold of
LiteRT's own debugger tutorial) are flagged: they are where ``export --max-drop`` looks first.

Example:
    >>> report = quant_report("runs/demo", "builtin:digits")          # doctest: +SKIP
    >>> [layer["op"] for layer in report["flagged"]]                   # doctest: +SKIP
    ['FULLY_CONNECTED']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.exporters.base import ExportOptions
from edgekit.exporters.int8_repair import FLAG_RMSE_SCALE, layer_errors


def quant_report(model: str | Path, calib: str | None, *, safe_mode: bool = True,
                 options: ExportOptions | None = None) -> dict[str, Any]:
    """Per-layer int8 error of ``model`` (TFLite, full integer), worst first, and the flagged layers."""
    from edgekit.exporters.pipeline import calibration_data
    from edgekit.source_model import load_source

    options = options or ExportOptions()
    source = load_source(model, safe_mode=safe_mode)
    try:
        calibration, note = calibration_data(source, calib, options.calib_samples)
        layers, _ = layer_errors(source.saved_model_dir(), calibration, options)
    finally:
        source.close()
    return {"model": str(model), "format": "tflite", "quant": "int8", "data": note, "threshold": FLAG_RMSE_SCALE,
            "layers": layers, "flagged": [layer for layer in layers if layer["rmse_scale"] > FLAG_RMSE_SCALE]}
