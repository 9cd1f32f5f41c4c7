"""One int8 search backend per format: what ``--max-drop`` and ``--quant mixed`` ask of a format.

An exporter hands a backend the float model as it makes it (a :class:`FloatModel`); the backend
searches which layers or operator types to keep in float and returns the chosen file's bytes and
the record for the manifest. How a candidate is judged (``evaluate``) and timed (``time_files``)
comes from the caller (:mod:`edgekit.exporters.int8_search`), the same for every format.

Example:
    >>> fm = get_exporter("onnx").float_model(source, calibration, options, art.details)   # doctest: +SKIP
    >>> data, record = backend_for("onnx").repair(fm, options, evaluate, budget=1.0)        # doctest: +SKIP
    >>> record["kept"]                                                                      # doctest: +SKIP
    ['/head/MatMul']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgekit.errors import UsageError

Evaluate = Callable[[bytes], Any]  # a candidate's bytes -> how it does (points lost, parity problems)
TimeFiles = Callable[[dict[str, bytes]], dict[str, float]]  # candidates by name -> p50 ms, timed together


@dataclass
class FloatModel:
    """The float model an exporter hands the int8 searches.

    ``model``: a SavedModel folder (TFLite) or an ONNX ``ModelProto`` (ONNX); ``samples``: the
    calibration inputs by name, in the model's dtypes; ``fp32``: the plain float file's bytes, made
    when a search first asks; ``layout``: the ONNX int8 layout the plain int8 file was made in."""

    model: Any
    samples: dict[str, np.ndarray]
    fp32: Callable[[], bytes]
    layout: str | None = None


class QuantBackend(Protocol):
    def repair(self, fm: FloatModel, options, evaluate: Evaluate, budget: float) -> tuple[bytes | None, dict]:
        """``--max-drop``: the int8 file with the fewest layers in float within ``budget``, or None; the record."""
        ...

    def mix(self, fm: FloatModel, options, evaluate: Evaluate, time_files: TimeFiles,
            budget: float) -> tuple[bytes, dict]:
        """``--quant mixed``: the fastest file within ``budget`` (operator types and layers in float); the record."""
        ...


class TFLiteBackend:
    """LiteRT's quantization debugger ranks the layers; the converter quantizes again with them denylisted."""

    def repair(self, fm: FloatModel, options, evaluate: Evaluate, budget: float) -> tuple[bytes | None, dict]:
        from edgekit.quantize.tflite_repair import repair_tflite_int8

        return repair_tflite_int8(fm.model, fm.samples, options, evaluate, budget)

    def mix(self, fm: FloatModel, options, evaluate: Evaluate, time_files: TimeFiles, budget: float) -> tuple[bytes, dict]:
        from edgekit.quantize.speed_mix import speed_mix_tflite

        return speed_mix_tflite(fm.model, fm.samples, options, evaluate, time_files, budget, fm.fp32())


class ONNXBackend:
    """ONNX Runtime's ``qdq_loss_debug`` ranks the nodes; ``quantize_static`` leaves them (or whole types) in float."""

    def repair(self, fm: FloatModel, options, evaluate: Evaluate, budget: float) -> tuple[bytes | None, dict]:
        from edgekit.quantize.onnx_repair import repair_from_float

        return repair_from_float(fm.model, fm.samples, options, fm.layout, evaluate, budget)

    def mix(self, fm: FloatModel, options, evaluate: Evaluate, time_files: TimeFiles, budget: float) -> tuple[bytes, dict]:
        from edgekit.quantize.speed_mix import speed_mix_onnx

        return speed_mix_onnx(fm.model, fm.samples, options, fm.layout, evaluate, time_files, budget)


BACKENDS: dict[str, QuantBackend] = {"tflite": TFLiteBackend(), "onnx": ONNXBackend()}


def backend_for(fmt: str) -> QuantBackend:
    """The int8 search backend of a format; a UsageError for a format without one (TF.js)."""
    if fmt not in BACKENDS:
        raise UsageError(f"{fmt} has no int8 search (--max-drop, --quant mixed); {', '.join(BACKENDS)} do")
    return BACKENDS[fmt]
