"""TFLite (LiteRT) export: fp32, fp16, dynamic-range int8 and full-integer int8.

Converts from the source's TF SavedModel with ``tf.lite.TFLiteConverter.from_saved_model``
(never ``from_concrete_functions`` with a Keras 3 model: that silently yields NaN models).

Example:
    >>> art = TFLiteExporter().export(src, out, quant="int8", calibration=x)   # doctest: +SKIP
    >>> art.details["input_dtype"]                                            # doctest: +SKIP
    'int8'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.artifact import Artifact
from edgekit.errors import ExportError, UsageError
from edgekit.exporters.base import ExportOptions, artifact_name
from edgekit.files import atomic_write_bytes, captured_stderr_fd
from edgekit.source_model import SourceModel


class TFLiteExporter:
    name = "tflite"
    suffix = ".tflite"
    quant_modes = ("fp32", "fp16", "dynamic", "int8")
    needs_calibration = ("int8",)
    runtime = "litert"

    def export(
        self,
        source: SourceModel,
        out_dir: Path,
        *,
        quant: str,
        calibration: np.ndarray | None = None,
        options: ExportOptions | None = None,
    ) -> Artifact:
        options = options or ExportOptions()
        if quant not in self.quant_modes:
            raise UsageError(f"TFLite has no quant mode '{quant}'; choose from {', '.join(self.quant_modes)}")
        from edgekit.tf_env import import_tensorflow

        tf = import_tensorflow()

        converter = tf.lite.TFLiteConverter.from_saved_model(str(source.saved_model_dir()))
        details = {"weights": "float32", "compute": "float32", "input_dtype": "float32", "output_dtype": "float32"}
        if quant != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quant == "fp16":
            converter.target_spec.supported_types = [tf.float16]
            details.update(weights="float16", compute="float32 (fp16 weights dequantized at load)")
        elif quant == "dynamic":
            details.update(weights="int8", compute="int8 where kernels allow, activations quantized at run time")
        elif quant == "int8":
            if calibration is None or len(calibration) == 0:
                raise UsageError("int8 export needs calibration data", hint="pass --calib DATA")
            samples = calibration[: options.calib_samples].astype(np.float32)

            def representative():
                for i in range(len(samples)):
                    yield [samples[i : i + 1]]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[options.int8_io]
            converter.inference_input_type = io
            converter.inference_output_type = io
            io_name = "float32" if options.int8_io == "float" else options.int8_io
            details.update(
                weights="int8", compute="int8", input_dtype=io_name, output_dtype=io_name,
                calibration_samples=len(samples),
            )
        try:
            with captured_stderr_fd():
                flatbuffer = converter.convert()
        except Exception as e:
            raise ExportError(f"TFLite converter failed for {quant}: {_converter_message(e)}") from None
        name = artifact_name(source, quant, self.suffix)
        atomic_write_bytes(Path(out_dir) / name, flatbuffer)
        return Artifact(format=self.name, quant=quant, path=name, details=details)


def _converter_message(e: Exception) -> str:
    """The converter's own line that names the unsupported op, else its first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "not supported" in ln or "failed to legalize" in ln.lower() or "op " in ln.lower():
            return ln[:400]
    return (lines[0][:400] if lines else type(e).__name__)
