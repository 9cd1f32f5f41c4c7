"""LiteRT (ai-edge-litert) runtime for ``.tflite`` files, with XNNPACK as LiteRT ships it.

Example:
    >>> s = LiteRTRuntime().load("pretrainedResnet_quant.tflite", threads=1)   # doctest: +SKIP
    >>> s.describe()["input_dtype"]                                           # doctest: +SKIP
    'int8'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError, ShapeError, first_line
from edgekit.macs import tflite_macs
from edgekit.runtimes.base import PackageRuntime

# Builtin ops whose state lives in variable tensors that persist between invocations.
STATEFUL_OPS = frozenset({"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN",
                          "BIDIRECTIONAL_SEQUENCE_RNN", "SVDF", "LSTM"})


class LiteRTRuntime(PackageRuntime):
    module = "ai_edge_litert.interpreter"
    distribution = "ai-edge-litert"
    name = "litert"
    formats = ("tflite",)

    def load(self, artifact: str, *, threads: int | None = None) -> LiteRTSession:
        return LiteRTSession(artifact, threads=threads)


class LiteRTSession:
    def __init__(self, path: str, *, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = first_line(e)
            raise ModelLoadError(f"{path} is not a valid .tflite model: {msg}") from None
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        self.multi = len(inputs) > 1 or len(outputs) > 1
        if self.multi:  # bound by name through the signature (converters reorder and rename tensors)
            signatures = self.interpreter.get_signature_list()
            if not signatures:
                raise ModelLoadError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs but no signature to "
                                     "bind them by name", hint="convert it from a SavedModel or Keras model (a serving signature)")
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            runner = self.interpreter.get_signature_runner(key)
            self.input_details, self.output_details = runner.get_input_details(), runner.get_output_details()
        else:
            self.input_details, self.output_details = {"input": inputs[0]}, {"output": outputs[0]}
        self._in, self._out = next(iter(self.input_details.values())), next(iter(self.output_details.values()))
        # Fused sequence ops keep their state in variable tensors that persist between invocations
        # (made for streaming); each input here is independent, so the state is reset before each.
        ops = {op["op_name"] for op in self._ops_details()}
        self.stateful = bool(ops & STATEFUL_OPS)
        self.input_shape = tuple(int(d) if d > 0 else None for d in self._in["shape_signature"][1:])
        self._batch_shape = tuple(int(d) for d in self._in["shape"])

    def quantize(self, x: np.ndarray, detail: dict | None = None) -> np.ndarray:
        detail = detail or self._in
        dtype = detail["dtype"]
        if dtype in (np.int8, np.uint8, np.int16) and detail["quantization"][0]:  # quantized at the boundary
            scale, zero = detail["quantization"]
            info = np.iinfo(dtype)
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        return x.astype(dtype, copy=False)

    def dequantize(self, y: np.ndarray, detail: dict | None = None) -> np.ndarray:
        detail = detail or self._out
        if detail["dtype"] in (np.int8, np.uint8, np.int16) and detail["quantization"][0]:
            scale, zero = detail["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32, copy=False)

    def _feeds(self, x) -> dict[str, np.ndarray]:
        """Inputs by signature name, each checked against its shape."""
        if not self.multi:
            want = self._batch_shape[1:]
            if tuple(x.shape[1:]) != want:
                raise ShapeError(f"input shape {tuple(x.shape[1:])} does not fit the model's {want}")
            return {"input": x}
        if not isinstance(x, dict):
            x = {next(iter(self.input_details)): x}
        missing = [n for n in self.input_details if n not in x]
        if missing:
            raise ShapeError(f"no data for input {', '.join(missing)}; the model takes {', '.join(self.input_details)}")
        for name, d in self.input_details.items():
            want = tuple(int(v) for v in d["shape"][1:])
            if tuple(x[name].shape[1:]) != want:
                raise ShapeError(f"input '{name}' has shape {tuple(x[name].shape[1:])}, the model's is {want}")
        return {n: x[n] for n in self.input_details}

    def run(self, x):
        feeds = self._feeds(x)
        it, outs = self.interpreter, {n: [] for n in self.output_details}
        for i in range(len(next(iter(feeds.values())))):
            if self.stateful:
                it.reset_all_variables()
            for name, d in self.input_details.items():
                it.set_tensor(d["index"], self.quantize(feeds[name][i : i + 1], d))
            it.invoke()
            for name, d in self.output_details.items():
                outs[name].append(self.dequantize(it.get_tensor(d["index"]), d))
        joined = {n: np.concatenate(v) for n, v in outs.items()}
        return joined if len(joined) > 1 else next(iter(joined.values()))

    def bind(self, x) -> Callable[[], Any]:
        feeds = self._feeds(x)
        for name, d in self.input_details.items():
            self.interpreter.set_tensor(d["index"], self.quantize(feeds[name][:1], d))
        if not self.stateful:
            return self.interpreter.invoke
        reset, invoke = self.interpreter.reset_all_variables, self.interpreter.invoke

        def invoke_from_zero_state():
            reset()
            invoke()

        return invoke_from_zero_state

    def _ops_details(self) -> list[dict]:
        try:
            return self.interpreter._get_ops_details()
        except Exception:
            return []

    def _float_ops(self, tensors: list[dict]) -> dict[str, int]:
        """In an integer model, the operators that still compute in float32 (the converter wraps an op
        without an integer kernel in DEQUANTIZE/QUANTIZE, even in full-integer mode)."""
        dtype = {t["index"]: np.dtype(t["dtype"]).name for t in tensors}
        plumbing = {"QUANTIZE", "DEQUANTIZE", "DELEGATE"}
        return dict(Counter(op["op_name"] for op in self._ops_details() if op["op_name"] not in plumbing
                            and any(dtype.get(i) == "float32" for i in op["outputs"])))

    def describe(self) -> dict[str, Any]:
        tensors = self.interpreter.get_tensor_details()
        dtypes = Counter(np.dtype(t["dtype"]).name for t in tensors)
        ops = Counter(op["op_name"] for op in self._ops_details())
        in_dt = np.dtype(self._in["dtype"]).name
        if in_dt == "int16" and self._in["quantization"][0]:
            guess = "int16x8"
        elif in_dt in ("int8", "uint8"):
            guess = "int8"
        elif dtypes.get("float16"):
            guess = "fp16"
        elif dtypes.get("int8"):
            guess = "dynamic"
        else:
            guess = "fp32"
        return {
            "io": {"inputs": [_io_entry(n, d) for n, d in self.input_details.items()],
                   "outputs": [_io_entry(n, d) for n, d in self.output_details.items()]},
            "input_dtype": in_dt,
            "output_dtype": np.dtype(self._out["dtype"]).name,
            "input_shape": [int(d) for d in self._in["shape_signature"]],
            "tensor_dtypes": dict(dtypes),
            "ops": dict(ops),
            "quant_guess": guess,
            "float_ops": self._float_ops(tensors) if guess in ("int8", "int16x8") else {},
            "macs": tflite_macs(None, self.interpreter),
        }


def _io_entry(name: str, detail: dict) -> dict[str, Any]:
    """One input or output as the manifest records it: source name, the artifact's tensor name, shape, dtype, int8 params."""
    scale, zero = detail.get("quantization", (0.0, 0))
    entry = {"name": name, "artifact_name": detail["name"],
             "shape": [int(d) for d in detail.get("shape_signature", detail["shape"])],
             "dtype": np.dtype(detail["dtype"]).name}
    if scale:
        entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
    return entry
