"""TFLite (LiteRT) export: fp32, fp16, dynamic-range int8, full-integer int8, and int16x8.

``int16x8`` is LiteRT's 16x8 mode: int8 weights, 16-bit activations (256 times the resolution of
int8 activations, for layers with wide ranges), int16 inputs and outputs. Its kernels are LiteRT's
reference ones (XNNPACK has none), so it is made only when named, never by ``--quant all``.

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
from edgekit.exporters import CALIBRATED, EXPORTERS
from edgekit.exporters.base import ExportOptions, artifact_name
from edgekit.files import atomic_write_bytes, captured_stderr_fd
from edgekit.generated_inputs import is_integer
from edgekit.io_spec import rows, save_batch, take
from edgekit.quantize.backends import FloatModel
from edgekit.quantize.tflite_converter import has_nms, int8_converter, quantize_keeping_nms_float, weight_scales
from edgekit.source_model import SourceModel
from edgekit.tracing.recurrent import fused_lstm_beside_loop, recurrent_details


class TFLiteExporter:
    name = "tflite"
    suffix = ".tflite"
    quant_modes = EXPORTERS["tflite"][2]
    needs_calibration = CALIBRATED
    runtime = "litert"

    def export(
        self,
        source: SourceModel,
        out_dir: Path,
        *,
        quant: str,
        calibration: dict[str, np.ndarray] | None = None,
        options: ExportOptions | None = None,
    ) -> Artifact:
        options = options or ExportOptions()
        if quant not in self.quant_modes:
            raise UsageError(f"TFLite has no quant mode '{quant}'; choose from {', '.join(self.quant_modes)}")
        from edgekit.tf_env import import_tensorflow

        tf = import_tensorflow()

        in_dtype = source.input_dtype if is_integer(source.input_dtype) else "float32"
        details = {"weights": "float32", "compute": "float32", "input_dtype": in_dtype, "output_dtype": "float32"}
        if calibration is not None:  # integer inputs (token ids) are fed to the converter as the integers they are
            calibration = {t.name: np.asarray(calibration[t.name]).astype(t.dtype, copy=False) for t in source.inputs}
        if source.has_recurrent_layers:
            # Keras recurrent layers (Keras 3 or tf_keras), traced with batch 1 (edgekit.tracing.recurrent): LSTMs become
            # the fused UNIDIRECTIONAL_SEQUENCE_LSTM builtin; other loops stay a WHILE op (the smaller
            # file), except for int8, whose calibration crashes on loops: there they are unrolled.
            # --unroll: every recurrent layer unrolled (no fused op; faster with XNNPACK, larger).
            # A fused LSTM beside a WHILE loop computes wrong in LiteRT: then the loops are unrolled too.
            unroll = quant == "int8" or options.unroll or fused_lstm_beside_loop(source.keras_model)
            fuse = not options.unroll
            saved_model = source.saved_model_dir(batch=1, unroll_loops=unroll, fuse_lstm=fuse)
            flatbuffer = self._convert(tf, saved_model, quant, calibration, options, details)
            details.update(recurrent_details(source, unroll_loops=unroll, fuse_lstm=fuse))
        else:
            try:
                flatbuffer = self._convert(tf, source.saved_model_dir(), quant, calibration, options, details)
            except ExportError as e:
                if not _needs_static_shapes(e.message) or source.framework not in ("keras3", "tf_keras"):
                    raise
                # other layers the converter takes only with static shapes (recurrent ones inside
                # a layer edgekit does not look into): re-exported with batch 1, what devices use.
                flatbuffer = self._convert(tf, source.saved_model_dir(batch=1), quant, calibration, options, details)
                details["batch"] = "fixed at 1: recurrent layers need static shapes in TFLite"
        name = artifact_name(source, quant, self.suffix)
        atomic_write_bytes(Path(out_dir) / name, flatbuffer)
        return Artifact(format=self.name, quant=quant, path=name, details=details)

    def float_model(self, source: SourceModel, calibration, options: ExportOptions, details: dict) -> FloatModel:
        """What the int8 searches start from (:mod:`edgekit.quantize.backends`): the source's SavedModel,
        the calibration samples, and the plain fp32 flatbuffer when a search asks for it."""
        from edgekit.tf_env import import_tensorflow

        saved_model = source.saved_model_dir()
        return FloatModel(saved_model, calibration,
                          fp32=lambda: convert(import_tensorflow(), saved_model, "fp32", None, options, {}))

    @staticmethod
    def _convert(tf, saved_model: Path, quant: str, calibration, options: ExportOptions, details: dict) -> bytes:
        if quant == "mixed":  # plain int8 here; the pipeline then measures which operators to keep in float
            quant = "int8"
        if quant == "int16x8":
            if calibration is None or rows(calibration) == 0:
                raise UsageError("int16x8 export needs calibration data", hint="pass --calib DATA")
            return _full_integer(saved_model, calibration, options, details, float_fallback=False, quant="int16x8")
        if quant != "int8":
            return convert(tf, saved_model, quant, calibration, options, details)
        # Full-integer calibration runs the model inside the converter, and can crash it (a
        # recurrent layer's loop, seen: SIGSEGV): see _full_integer. A conversion that fails is
        # tried again with ops without int8 kernels allowed to stay float, and the manifest says so.
        if calibration is None or rows(calibration) == 0:
            raise UsageError("int8 export needs calibration data", hint="pass --calib DATA")
        try:
            return _full_integer(saved_model, calibration, options, details, float_fallback=False)
        except ExportError as full:
            try:
                flatbuffer = _full_integer(saved_model, calibration, options, details, float_fallback=True)
            except ExportError as mixed:
                raise ExportError(f"{full.message}; with float fallback for ops without int8 kernels: {mixed.message}",
                                  hint="--quant dynamic (int8 weights, float activations) is the int8 option for such "
                                       "models, recurrent ones among them") from None
            details["fallback"] = (f"full-integer conversion failed ({full.message}); ops without int8 kernels "
                                   "run in float32, inputs and outputs are float32")
            return flatbuffer


def convert(tf, saved_model: Path, quant: str, calibration, options: ExportOptions, details: dict,
            float_fallback: bool = False) -> bytes:
    """One TFLite conversion of ``saved_model``; fills ``details``. Used in-process and by the child worker."""
    if quant == "int8":
        converter = int8_converter(tf, saved_model, calibration, options, details, float_fallback=float_fallback)
        if not float_fallback and has_nms(saved_model):  # a detector: its NMS stays float32, the rest int8
            return quantize_keeping_nms_float(tf, converter, options, details)
    elif quant == "int16x8":
        converter = int8_converter(tf, saved_model, calibration, options, details, activations16=True)
    else:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        if quant != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quant == "fp16":
            converter.target_spec.supported_types = [tf.float16]
            details.update(weights="float16", compute="float32 (fp16 weights dequantized at load)")
        elif quant == "dynamic":
            details.update(weights="int8", compute="int8 where kernels allow, activations quantized at run time")
            weight_scales(converter, options, details)
    try:
        with captured_stderr_fd():
            return converter.convert()
    except Exception as e:
        raise ExportError(f"TFLite converter failed for {quant}: {_converter_message(e)}") from None


CONVERT_HERE_ENV = "EDGEKIT_CONVERT_INT8_HERE"  # "1": this process is an export child, a crash costs only it


def _full_integer(saved_model: Path, calibration, options: ExportOptions, details: dict, *, float_fallback: bool,
                  quant: str = "int8") -> bytes:
    """A full-integer conversion (int8, int16x8) where a crash of the converter costs no more than
    the conversion: in this process when it is a supervised export child (``edgekit export``,
    :mod:`edgekit.exporters.supervised`, which retries a crashed int8 conversion in a child of its
    own), else in a child process of its own (:func:`_convert_in_child`). In the export child it
    saves the second child's TensorFlow import, 4 of the 6.5 s a small model's int8 export took."""
    import os

    if os.environ.get(CONVERT_HERE_ENV) == "1":
        from edgekit.tf_env import import_tensorflow

        if os.environ.get("EDGEKIT_FAULT_INJECT") == "tflite-calibration":  # tests: the converter crashes here
            import signal

            os.kill(os.getpid(), signal.SIGSEGV)

        return convert(import_tensorflow(), saved_model, quant, take(calibration, 0, options.calib_samples), options,
                       details, float_fallback=float_fallback)
    return _convert_in_child(saved_model, calibration, options, details, float_fallback=float_fallback, quant=quant)


def _convert_in_child(saved_model: Path, calibration: np.ndarray, options: ExportOptions, details: dict, *,
                      float_fallback: bool, timeout_s: float = 1800, quant: str = "int8") -> bytes:
    """Full-integer conversion in ``python -m edgekit.exporters.tflite_worker``: a crash is an ExportError."""
    import dataclasses
    import json
    import signal
    import subprocess
    import sys
    import tempfile

    from edgekit.runtimes.process_tree import child_env

    with tempfile.TemporaryDirectory(prefix="edgekit-tflite-") as tmp:
        tmp = Path(tmp)
        calib = take(calibration, 0, options.calib_samples)
        save_batch(tmp / "calibration", calib)
        request = {"saved_model": str(saved_model), "calibration": str(tmp / "calibration"),
                   "out": str(tmp / "model.tflite"), "options": dataclasses.asdict(options), "float_fallback": float_fallback,
                   "quant": quant}
        (tmp / "request.json").write_text(json.dumps(request))
        env = child_env(TF_CPP_MIN_LOG_LEVEL="3")  # it dies with this process (a killed CLI stops converting)
        try:
            proc = subprocess.run([sys.executable, "-m", "edgekit.exporters.tflite_worker", str(tmp / "request.json")],
                                  capture_output=True, text=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ExportError(f"the TFLite converter hung quantizing to int8 and was stopped after {timeout_s:.0f} s") from None
        if proc.returncode < 0:
            raise ExportError(f"the TFLite converter crashed ({signal.Signals(-proc.returncode).name}) quantizing to int8")
        reply_path = tmp / "reply.json"
        if not reply_path.is_file():
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise ExportError(f"the TFLite converter failed quantizing to int8: {tail[0][:300]}")
        reply = json.loads(reply_path.read_text())
        if not reply["ok"]:
            raise ExportError(reply["error"])
        details.update(reply["details"])
        return (tmp / "model.tflite").read_bytes()


def _needs_static_shapes(message: str) -> bool:
    return "TensorListReserve" in message or "element_shape to be static" in message


def _converter_message(e: Exception) -> str:
    """The converter's own line that names the unsupported op, else its first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "not supported" in ln or "failed to legalize" in ln.lower() or "op " in ln.lower():
            return ln[:400]
    return (lines[0][:400] if lines else type(e).__name__)
