"""``edgekit inspect MODEL --quant``: which layers int8 hurts, before (or instead of) exporting.

LiteRT's quantization debugger calibrates the model on ``--calib`` data (default: the run's own)
and measures every quantized layer's output against the float model: ``rmse/scale`` is the root
mean square error in units of the layer's quantization step. Layers above 0.7 (the threshold of
LiteRT's own debugger tutorial) are flagged: they are where ``export --max-drop`` looks first.
``--format onnx`` measures the ONNX quantization with ONNX Runtime's ``qdq_loss_debug`` instead
(SQNR per node, flagged below 20 dB).

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


def quant_report(model: str | Path, calib: str | None, *, fmt: str = "tflite", safe_mode: bool = True,
                 options: ExportOptions | None = None) -> dict[str, Any]:
    """Per-layer int8 error of ``model`` in ``fmt``, worst first, and the flagged layers.

    TFLite: ``rmse/scale`` from LiteRT's debugger (flagged above 0.7). ONNX: SQNR in dB from ONNX
    Runtime's ``qdq_loss_debug``, local and cumulative (flagged when either is below 20 dB: a tenth
    of the signal's amplitude is noise)."""
    from edgekit.exporters.pipeline import calibration_data
    from edgekit.source_model import load_source

    options = options or ExportOptions()
    source = load_source(model, safe_mode=safe_mode)
    try:
        calibration, note = calibration_data(source, calib, options.calib_samples)
        if fmt == "onnx":
            layers = _onnx_layers(source, calibration, options)
            flagged = [layer for layer in layers if min(layer["sqnr_db"], layer["sqnr_cumulative_db"] or 1e9) < FLAG_SQNR_DB]
            threshold = {"sqnr_db_below": FLAG_SQNR_DB}
        else:
            layers, _ = layer_errors(source.saved_model_dir(), calibration, options)
            flagged = [layer for layer in layers if layer["rmse_scale"] > FLAG_RMSE_SCALE]
            threshold = {"rmse_scale_above": FLAG_RMSE_SCALE}
    finally:
        source.close()
    return {"model": str(model), "format": fmt, "quant": "int8", "data": note, "threshold": threshold,
            "layers": layers, "flagged": flagged}


FLAG_SQNR_DB = 20.0


def _onnx_layers(source, calibration, options) -> list[dict]:
    import tempfile

    from edgekit.exporters.onnx import ONNXExporter, _typed, default_opset
    from edgekit.exporters.onnx_int8_repair import rank_nodes
    from edgekit.io_spec import take

    samples = _typed(take(calibration, 0, options.calib_samples), source)
    with tempfile.TemporaryDirectory(prefix="edgekit-quant-report-") as tmp:
        tmp = Path(tmp)
        pre, reader = ONNXExporter._preprocessed(ONNXExporter._convert(source, default_opset(), None), tmp, samples)
        return rank_nodes(pre, tmp, reader, samples, options)
