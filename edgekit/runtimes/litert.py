"""LiteRT (ai-edge-litert) runtime for ``.tflite`` files, with XNNPACK as LiteRT ships it.

Example:
    >>> s = LiteRTRuntime().load("pretrainedResnet_quant.tflite", threads=1)   # doctest: +SKIP
    >>> s.describe()["input_dtype"]                                           # doctest: +SKIP
    'int8'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError, first_line
from edgekit.io_spec import interface_names
from edgekit.macs import tflite_macs
from edgekit.runtimes.base import PackageRuntime
from edgekit.runtimes.binding import BoundTensor, dims, feeds, io_record, rows_of

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

        self.path, self.threads = str(path), threads
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            msg = first_line(e)
            raise ModelLoadError(f"{path} is not a valid .tflite model: {msg}") from None
        ins, outs = self._details(path)
        in_names, out_names = interface_names(list(ins), list(outs))
        self.inputs = [_bound(n, d) for n, d in zip(in_names, ins.values(), strict=True)]
        self.outputs = [_bound(n, d) for n, d in zip(out_names, outs.values(), strict=True)]
        self._index = {t.name: d["index"] for t, d in zip(self.inputs + self.outputs, [*ins.values(), *outs.values()],
                                                            strict=True)}
        # LiteRT runs at the shapes its tensors were allocated with: feeds are checked against those
        self._allocated = [replace(t, shape=dims(d["shape"])) for t, d in zip(self.inputs, ins.values(), strict=True)]
        # Fused sequence ops keep their state in variable tensors that persist between invocations
        # (made for streaming); each input here is independent, so the state is reset before each.
        ops = {op["op_name"] for op in self._ops_details()}
        self.stateful = bool(ops & STATEFUL_OPS)

    def _details(self, path) -> tuple[dict[str, dict], dict[str, dict]]:
        """Input and output details by the artifact's names: a signature's, for several (converters
        reorder and rename tensors, a signature keeps the source's names), else the tensors' own."""
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) == 1 and len(outputs) == 1:
            return {inputs[0]["name"]: inputs[0]}, {outputs[0]["name"]: outputs[0]}
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise ModelLoadError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs but no signature to "
                                 "bind them by name", hint="convert it from a SavedModel or Keras model (a serving signature)")
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        runner = self.interpreter.get_signature_runner(key)
        return runner.get_input_details(), runner.get_output_details()

    def run(self, batch) -> dict[str, np.ndarray]:
        x = feeds(batch, self._allocated)
        it, outs = self.interpreter, {t.name: [] for t in self.outputs}
        for i in range(rows_of(x)):
            if self.stateful:
                it.reset_all_variables()
            for t in self.inputs:
                it.set_tensor(self._index[t.name], t.quantize(x[t.name][i : i + 1]))
            it.invoke()
            for t in self.outputs:
                outs[t.name].append(t.dequantize(it.get_tensor(self._index[t.name])))
        return {n: np.concatenate(v) for n, v in outs.items()}

    def bind(self, batch) -> Callable[[], Any]:
        x = feeds(batch, self._allocated)
        for t in self.inputs:
            self.interpreter.set_tensor(self._index[t.name], t.quantize(x[t.name][:1]))
        if not self.stateful:
            return self.interpreter.invoke
        reset, invoke = self.interpreter.reset_all_variables, self.interpreter.invoke

        def invoke_from_zero_state():
            reset()
            invoke()

        return invoke_from_zero_state

    def profile_ops(self, batch, runs: int) -> dict[str, Any]:
        """Each operator's mean time over ``runs`` inferences of the first sample (edgekit.profiling):
        LiteRT's own profiler, XNNPACK's operators given the TFLite node, layer scope and MACs they ran for."""
        from edgekit.layer_names import scope_of
        from edgekit.macs import tflite_op_macs
        from edgekit.profiling.litert_ops import attribute, profile_tflite

        x = feeds(batch, self._allocated)
        prof = profile_tflite(self.path, {t.name: t.quantize(x[t.name][:1]) for t in self.inputs},
                              threads=self.threads, runs=runs)
        nodes = self._ops_details()
        attribute(prof["ops"], nodes)
        names = {t["index"]: t["name"] for t in self.interpreter.get_tensor_details()}
        shapes = {t["index"]: [int(d) for d in t["shape"]] for t in self.interpreter.get_tensor_details()}
        by_index = {n["index"]: n for n in nodes}
        for op in prof["ops"]:
            index = op.pop("node")
            node = by_index.get(index)
            op["graph_node"] = str(index) if node is not None else None  # Model Explorer's node id
            op["name"] = names.get(node["outputs"][0], "") if node is not None and len(node["outputs"]) else ""
            op["node_type"] = node["op_name"] if node is not None else op["op"]
            op["scope"] = scope_of(op["name"])
            # the node's own operator carries its MACs (a Clamp or Static Reshape XNNPACK adds beside it, none)
            op["macs"] = tflite_op_macs(node, shapes) if node is not None and op.pop("main") else 0
        return prof

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
        first = self.inputs[0]
        if first.dtype == "int16" and first.quantized:
            guess = "int16x8"
        elif first.dtype in ("int8", "uint8"):
            guess = "int8"
        elif dtypes.get("float16"):
            guess = "fp16"
        elif dtypes.get("int8"):
            guess = "dynamic"
        else:
            guess = "fp32"
        return {
            **io_record(self.inputs, self.outputs),
            "tensor_dtypes": dict(dtypes),
            "ops": dict(ops),
            "quant_guess": guess,
            "float_ops": self._float_ops(tensors) if guess in ("int8", "int16x8") else {},
            "macs": tflite_macs(None, self.interpreter),
        }


def _bound(name: str, detail: dict) -> BoundTensor:
    """A LiteRT tensor detail as a BoundTensor (its signature shape: ``-1`` for a dynamic size)."""
    scale, zero = detail.get("quantization", (0.0, 0))
    return BoundTensor(name, detail["name"], dims(detail.get("shape_signature", detail["shape"])),
                       np.dtype(detail["dtype"]).name, float(scale), int(zero))
