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
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; edgekit handles one of each for now")
        self._in, self._out = inputs[0], outputs[0]
        # Fused sequence ops keep their state in variable tensors that persist between invocations
        # (made for streaming); each input here is independent, so the state is reset before each.
        ops = {op["op_name"] for op in self._ops_details()}
        self.stateful = bool(ops & STATEFUL_OPS)
        self.input_shape = tuple(int(d) if d > 0 else None for d in self._in["shape_signature"][1:])
        self._batch_shape = tuple(int(d) for d in self._in["shape"])

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zero = self._in["quantization"]
            info = np.iinfo(dtype)
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        return x.astype(dtype, copy=False)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self._out["dtype"] in (np.int8, np.uint8):
            scale, zero = self._out["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32, copy=False)

    def _check(self, x: np.ndarray) -> None:
        want = self._batch_shape[1:]
        if tuple(x.shape[1:]) != want:
            raise ShapeError(f"input shape {tuple(x.shape[1:])} does not fit the model's {want}")

    def run(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        it, outs = self.interpreter, []
        for i in range(len(x)):
            if self.stateful:
                it.reset_all_variables()
            it.set_tensor(self._in["index"], self._quantize(x[i : i + 1]))
            it.invoke()
            outs.append(self._dequantize(it.get_tensor(self._out["index"])))
        return np.concatenate(outs)

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        self._check(x)
        self.interpreter.set_tensor(self._in["index"], self._quantize(x[:1]))
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

    def describe(self) -> dict[str, Any]:
        tensors = self.interpreter.get_tensor_details()
        dtypes = Counter(np.dtype(t["dtype"]).name for t in tensors)
        ops = Counter(op["op_name"] for op in self._ops_details())
        in_dt = np.dtype(self._in["dtype"]).name
        if in_dt in ("int8", "uint8"):
            guess = "int8"
        elif dtypes.get("float16"):
            guess = "fp16"
        elif dtypes.get("int8"):
            guess = "dynamic"
        else:
            guess = "fp32"
        return {
            "input_dtype": in_dt,
            "output_dtype": np.dtype(self._out["dtype"]).name,
            "input_shape": [int(d) for d in self._in["shape_signature"]],
            "tensor_dtypes": dict(dtypes),
            "ops": dict(ops),
            "quant_guess": guess,
            "macs": tflite_macs(None, self.interpreter),
        }
