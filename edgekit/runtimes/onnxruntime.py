"""ONNX Runtime (CPU execution provider) for ``.onnx`` files.

Sessions use full graph optimisation, ``threads`` intra-op threads and one inter-op thread.
``bind`` uses IO binding: the input is bound once and each call is ``run_with_iobinding``,
which skips the per-call dict, name lookup and output allocation of ``session.run``.

Example:
    >>> s = ONNXRuntime().load("model_int8.onnx", threads=1)   # doctest: +SKIP
    >>> s.describe()["opset"]                                  # doctest: +SKIP
    18
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError, ShapeError, first_line
from edgekit.runtimes.base import PackageRuntime
from edgekit.shapes import fits

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
           "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


class ONNXRuntime(PackageRuntime):
    module = "onnxruntime"
    distribution = "onnxruntime"
    name = "onnxruntime"
    formats = ("onnx",)

    def load(self, artifact: str, *, threads: int | None = None) -> ONNXSession:
        return ONNXSession(artifact, threads=threads)


class ONNXSession:
    def __init__(self, path: str, *, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.path = str(path)
        try:
            self.session = ort.InferenceSession(self.path, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            msg = first_line(e)
            raise ModelLoadError(f"{path} cannot be loaded by ONNX Runtime: {msg[:300]}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.multi = len(inputs) > 1 or len(outputs) > 1  # bound by graph input/output names
        self._ins, self._outs = inputs, outputs
        self._in, self._out = inputs[0], outputs[0]
        self._in_dtype = _DTYPES.get(self._in.type, np.float32)
        self.input_shape = tuple(d if isinstance(d, int) and d > 0 else None for d in self._in.shape[1:])

    def _check(self, x: np.ndarray) -> None:
        if not fits(self.input_shape, x.shape[1:]):
            raise ShapeError(f"input shape {tuple(x.shape[1:])} does not fit the model's {self.input_shape}")

    def _feeds(self, x) -> dict[str, np.ndarray]:
        if not isinstance(x, dict):
            x = {self._in.name: x}
        missing = [i.name for i in self._ins if i.name not in x]
        if missing:
            raise ShapeError(f"no data for input {', '.join(missing)}; the model takes {', '.join(i.name for i in self._ins)}")
        for i in self._ins:
            want = tuple(d if isinstance(d, int) and d > 0 else None for d in i.shape[1:])
            if not fits(want, x[i.name].shape[1:]):
                raise ShapeError(f"input '{i.name}' has shape {tuple(x[i.name].shape[1:])}, the model's is {want}")
        return {i.name: x[i.name] for i in self._ins}

    def _run_multi(self, x):
        feeds = self._feeds(x)
        n = len(next(iter(feeds.values())))
        names = [o.name for o in self._outs]
        outs: dict[str, list] = {name: [] for name in names}
        for i in range(0, n, 64):
            chunk = {k: v[i : i + 64].astype(_DTYPES.get(t.type, np.float32), copy=False)
                     for (k, v), t in zip(feeds.items(), self._ins, strict=True)}
            for name, y in zip(names, self.session.run(names, chunk), strict=True):
                outs[name].append(np.asarray(y).astype(np.float32, copy=False))
        joined = {k: np.concatenate(v) for k, v in outs.items()}
        return joined if len(joined) > 1 else next(iter(joined.values()))

    def run(self, x):
        if self.multi:
            return self._run_multi(x)
        self._check(x)
        batch = self._in.shape[0] if isinstance(self._in.shape[0], int) else None
        step = batch or 64
        outs = []
        for i in range(0, len(x), step):
            chunk = x[i : i + step].astype(self._in_dtype, copy=False)
            if batch and len(chunk) < batch:  # a fixed batch size: pad the last chunk
                pad = np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
                y = self.session.run([self._out.name], {self._in.name: np.concatenate([chunk, pad])})[0][: len(chunk)]
            else:
                y = self.session.run([self._out.name], {self._in.name: chunk})[0]
            outs.append(y.astype(np.float32, copy=False))
        return np.concatenate(outs)

    def bind(self, x) -> Callable[[], Any]:
        if self.multi:
            feeds = {k: np.ascontiguousarray(v[:1].astype(_DTYPES.get(t.type, np.float32)))
                     for (k, v), t in zip(self._feeds(x).items(), self._ins, strict=True)}
            self._bound = feeds
            binding = self.session.io_binding()
            for k, v in feeds.items():
                binding.bind_cpu_input(k, v)
            for o in self._outs:
                binding.bind_output(o.name, "cpu")
            run = self.session.run_with_iobinding
            return lambda: run(binding)
        self._check(x)
        batch = self._in.shape[0] if isinstance(self._in.shape[0], int) else 1
        x = np.ascontiguousarray(np.repeat(x[:1], batch, axis=0).astype(self._in_dtype))
        self._bound = x  # keep the buffer alive while it is bound
        binding = self.session.io_binding()
        binding.bind_cpu_input(self._in.name, x)
        binding.bind_output(self._out.name, "cpu")
        run = self.session.run_with_iobinding
        return lambda: run(binding)

    def describe(self) -> dict[str, Any]:
        meta = self.session.get_modelmeta()
        info: dict[str, Any] = {
            "io": {"inputs": [_io_entry(t, "input" if not self.multi else t.name) for t in self._ins],
                   "outputs": [_io_entry(t, "output" if not self.multi else t.name) for t in self._outs]},
            "input_dtype": np.dtype(self._in_dtype).name,
            "output_dtype": np.dtype(_DTYPES.get(self._out.type, np.float32)).name,
            "input_shape": [d if isinstance(d, int) else None for d in self._in.shape],
            "producer": meta.producer_name,
        }
        try:
            import onnx

            model = onnx.load(self.path, load_external_data=False)
            ops = Counter(n.op_type for n in model.graph.node)
            info["ops"] = dict(ops)
            info["opset"] = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
            inits = Counter(onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name for t in model.graph.initializer)
            info["quant_guess"] = (
                "int8" if ops.get("QuantizeLinear") else "dynamic" if ops.get("DynamicQuantizeLinear")
                else "fp16" if inits.get("float16") else "fp32"
            )
        except Exception:
            info["quant_guess"] = "?"
        return info


def _io_entry(t, name: str) -> dict[str, Any]:
    """One graph input or output as the manifest records it: source name, graph name, shape, dtype."""
    return {"name": name, "artifact_name": t.name, "shape": [d if isinstance(d, int) else None for d in t.shape],
            "dtype": np.dtype(_DTYPES.get(t.type, np.float32)).name}
