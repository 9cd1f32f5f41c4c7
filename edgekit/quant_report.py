"""``edgekit inspect MODEL --quant``: which layers int8 hurts, before (or instead of) exporting.

LiteRT's quantization debugger calibrates the model on ``--calib`` data (default: the run's own)
and measures every quantized layer's output against the float model: ``rmse/scale`` is the root
mean square error in units of the layer's quantization step. Layers above 0.7 (the threshold of
LiteRT's own debugger tutorial) are flagged: they are where ``export --max-drop`` looks first.
``--format onnx`` measures the ONNX quantization with ONNX Runtime's ``qdq_loss_debug`` instead
(SQNR per node, flagged below 20 dB). ``--format tfjs`` needs no data: TF.js's ``uint8`` mode
quantizes weights only (per tensor, affine), so each weight tensor goes through the converter's
own ``quantize_weights``/``dequantize_weights``. One range serves the whole tensor, so the
figure is the error against the typical weight (its median magnitude), in dB: about 37 for a
well-spread tensor, flagged below 20, where a few outliers stretch the range until most weights
round to zero (the share rounded to zero is reported too).

Example:
    >>> report = quant_report("runs/demo", "builtin:digits")          # doctest: +SKIP
    >>> [layer["op"] for layer in report["flagged"]]                   # doctest: +SKIP
    ['FULLY_CONNECTED']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.exporters.base import ExportOptions
from edgekit.quantize.tflite_repair import FLAG_RMSE_SCALE, layer_errors


def quant_report(model: str | Path, calib: str | None, *, fmt: str = "tflite", safe_mode: bool = True,
                 options: ExportOptions | None = None) -> dict[str, Any]:
    """Per-layer int8 error of ``model`` in ``fmt``, worst first, and the flagged layers.

    TFLite: ``rmse/scale`` from LiteRT's debugger (flagged above 0.7). ONNX: SQNR in dB from ONNX
    Runtime's ``qdq_loss_debug``, local and cumulative (flagged when either is below 20 dB: a tenth
    of the signal's amplitude is noise)."""
    from edgekit.exporters.pipeline import calibration_data
    from edgekit.model_loading import load_source

    options = options or ExportOptions()
    source = load_source(model, safe_mode=safe_mode)
    try:
        if fmt == "tfjs":
            layers = _tfjs_weights(source)
            return {"model": str(model), "format": fmt, "quant": "uint8", "data": "none needed (weights only)",
                    "threshold": {"sqnr_db_below": FLAG_WEIGHT_SQNR_DB}, "layers": layers,
                    "flagged": [w for w in layers if w["sqnr_db"] < FLAG_WEIGHT_SQNR_DB]}
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
FLAG_WEIGHT_SQNR_DB = 20.0


def _tfjs_weights(source) -> list[dict]:
    """Every float weight tensor's error under TF.js's uint8 weight quantization, worst (lowest SQNR) first."""
    import numpy as np

    from edgekit.exporters.tfjs import tfjs_converter

    tfjs_converter()  # imports tensorflowjs with its stand-ins for the modules it never uses here
    from tensorflowjs.quantization import dequantize_weights, quantize_weights

    out = []
    for name, w in _float_weights(source):
        q, meta = quantize_weights(w, np.uint8)
        err = dequantize_weights(q, meta, np.float32).astype(np.float64) - w
        nonzero = w != 0
        rmse = float(np.sqrt(np.mean(np.square(err))))
        # against the typical weight (the median magnitude), not the tensor's power: one range serves
        # the whole tensor, and a few outliers that dominate its power stretch it until the typical
        # weights round to zero, which a power-based SQNR would not show
        typical = float(np.median(np.abs(w[nonzero]))) if nonzero.any() else 0.0
        zero_q = round(-meta["min"] / meta["scale"]) if meta.get("scale") else None
        zeroed = float(np.mean(q[nonzero] == zero_q)) if zero_q is not None and nonzero.any() else 0.0
        out.append({"layer": name, "op": "weight " + "x".join(map(str, w.shape)), "params": int(w.size),
                    "min": float(w.min()), "max": float(w.max()), "scale": float(meta.get("scale", 0.0)),
                    "sqnr_db": round(float(_db(typical, rmse)), 2),
                    "sqnr_tensor_db": round(float(_db(float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))), rmse)), 2),
                    "zeroed_pct": round(100 * zeroed, 1)})
    return sorted(out, key=lambda r: r["sqnr_db"])


def _db(amplitude: float, rmse: float) -> float:
    """20 log10(amplitude / rmse), within [0, 99] (99: exact)."""
    import math

    if rmse <= 0:
        return 99.0
    return min(99.0, max(0.0, 20 * math.log10(amplitude / rmse))) if amplitude > 0 else 0.0


def _float_weights(source):
    """``(name, float32 array)`` for every float weight of the model as TF.js stores it: the fp32 graph
    model is converted here and its own weights read back (batch norms already folded into convolutions)."""
    import json
    import tempfile

    import numpy as np
    from tensorflowjs.read_weights import read_weights

    from edgekit.exporters.tfjs import TFJSExporter

    with tempfile.TemporaryDirectory(prefix="edgekit-quant-report-") as tmp:
        art = TFJSExporter().export(source, Path(tmp), quant="fp32")
        folder = Path(tmp) / art.path
        manifest = json.loads((folder / "model.json").read_text())["weightsManifest"]
        for w in read_weights(manifest, str(folder), flatten=True):
            a = np.asarray(w["data"])
            if a.dtype.kind == "f" and a.size > 1:
                yield w["name"], a.astype(np.float32)


def _onnx_layers(source, calibration, options) -> list[dict]:
    import tempfile

    from edgekit.exporters.onnx import ONNXExporter, typed_like_inputs
    from edgekit.exporters.onnx_opset import default_opset
    from edgekit.io_spec import take
    from edgekit.quantize.onnx_layouts import preprocessed
    from edgekit.quantize.onnx_repair import rank_nodes

    samples = typed_like_inputs(take(calibration, 0, options.calib_samples), source)
    with tempfile.TemporaryDirectory(prefix="edgekit-quant-report-") as tmp:
        tmp = Path(tmp)
        pre, reader = preprocessed(ONNXExporter.float_graph(source, default_opset(), None), tmp, samples)
        return rank_nodes(pre, tmp, reader, samples, options)
