"""The TFLite converter set up for full-integer quantization: calibration data, input and output
types, weight scales. What the int8 export converts with, and what the repair hands to LiteRT's
quantization debugger.

Example:
    >>> converter = int8_converter(tf, Path("saved_model"), x, ExportOptions(), details := {})  # doctest: +SKIP
    >>> flatbuffer = converter.convert()                                                       # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.io_spec import rows, take

if TYPE_CHECKING:
    from edgekit.exporters.base import ExportOptions


def int8_converter(tf, saved_model: Path, calibration, options: ExportOptions, details: dict, *,
                   float_fallback: bool = False, activations16: bool = False):
    """A converter set up for full-integer int8 (calibration, IO types, weight scales); fills ``details``.
    Also what the int8 repair hands to LiteRT's quantization debugger. ``activations16``: the 16x8
    mode (16-bit activations, int16 inputs and outputs unless ``--int8-io float``)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = {k: v if np.issubdtype(v.dtype, np.integer) else v.astype(np.float32)
               for k, v in take(calibration, 0, options.calib_samples).items()}
    integer_input = all(np.issubdtype(v.dtype, np.integer) for v in samples.values())
    in_dtype = next(iter(samples.values())).dtype.name
    converter.representative_dataset = representative_rows(samples)
    if activations16:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        io_name = "float32" if options.int8_io == "float" else "int16"
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_name)
        details.update(weights="int8", compute="int16 activations x int8 weights (LiteRT reference kernels)",
                       input_dtype=in_dtype if integer_input else io_name, output_dtype=io_name,
                       calibration_samples=rows(samples))
    elif float_fallback:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        details.update(weights="int8", compute="int8 where int8 kernels exist, float32 elsewhere",
                       input_dtype=in_dtype if integer_input else "float32", output_dtype="float32",
                       calibration_samples=rows(samples))
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[options.int8_io]
        converter.inference_input_type = io
        converter.inference_output_type = io
        io_name = "float32" if options.int8_io == "float" else options.int8_io
        # an integer input (token ids) is never quantized: it keeps its own type
        details.update(weights="int8", compute="int8", input_dtype=in_dtype if integer_input else io_name,
                       output_dtype=io_name, calibration_samples=rows(samples))
    weight_scales(converter, options, details)
    return converter


NMS_SCOPE = re.compile(r"(^|/)nms(_\d+)?/")  # the ops of edgekit's NonMaxSuppression layer (Keras names it "nms")


def has_nms(saved_model: Path) -> bool:
    """True when the SavedModel holds a NonMaxSuppression op (a detector with NMS inside)."""
    return b"NonMaxSuppressionV" in (Path(saved_model) / "saved_model.pb").read_bytes()


def quantize_keeping_nms_float(tf, converter, options: ExportOptions, details: dict) -> bytes:
    """Full-integer int8 with a detector's NMS layer in float32: calibrated once, then quantized with
    the NMS layer's ops denylisted (as LiteRT's quantization debugger keeps layers in float).

    In int8 the layer's per-class shift (each box moved by 2 x its class, so one NMS separates the
    classes) spans 0..2C in 256 steps: 0.08 of the image for 10 classes, 5 px on 64 px. NMS then
    compares coarse boxes and suppresses the wrong ones: measured on the demo detector, 2.2 points
    of mAP@0.5 lost with it in int8, 0.4 with it in float32 (and the same latency)."""
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python.convert import mlir_quantize

    from edgekit.files import captured_stderr_fd

    converter._experimental_calibrate_only = True
    with captured_stderr_fd():
        calibrated = converter.convert()
    it = Interpreter(model_content=calibrated)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    keep = sorted({names[o] for op in it._get_ops_details() for o in op["outputs"]
                   if o in names and NMS_SCOPE.search(names[o])})
    io = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[options.int8_io]
    with captured_stderr_fd():
        flatbuffer = mlir_quantize(calibrated, disable_per_channel=options.per_tensor,
                                   disable_per_channel_for_dense_layers=options.per_tensor,
                                   fully_quantize=options.int8_io != "float", input_data_type=io, output_data_type=io,
                                   denylisted_nodes=keep)
    details["float_layers"] = {"nms": f"{len(keep)} ops of the NMS layer in float32: its per-class box shift is "
                                      "too coarse in int8 (docs/formats.md)"}
    return flatbuffer


def weight_scales(converter, options: ExportOptions, details: dict) -> None:
    # Per-channel weight scales are the converter's default (better accuracy); per-tensor
    # scales make smaller files for dense-heavy models (MLPerf ad01: 311 KB -> 272 KB).
    if options.per_tensor:
        converter._experimental_disable_per_channel = True
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    details["weight_scales"] = "per-tensor" if options.per_tensor else "per-channel"


def representative_rows(samples, limit: int | None = None):
    """The converter's representative dataset over ``samples`` (arrays by input name): one row at a time,
    as a dict by signature name for several inputs, as a list of the one array for one input (whose
    signature name is Keras's, not edgekit's ``input``)."""
    n = rows(samples) if limit is None else min(rows(samples), limit)

    def dataset():
        for i in range(n):
            row = take(samples, i, i + 1)
            yield row if len(row) > 1 else list(row.values())

    return dataset
