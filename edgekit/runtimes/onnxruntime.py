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

from edgekit.errors import ModelLoadError, first_line
from edgekit.io_spec import interface_names
from edgekit.runtimes.base import PackageRuntime
from edgekit.runtimes.binding import BoundTensor, dims, feeds, io_record, rows_of

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
           "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


class ONNXRuntime(PackageRuntime):
    module = "onnxruntime"
    distribution = "onnxruntime"
    name = "onnxruntime"
    formats = ("onnx",)

    def load(self, artifact: str, *, threads: int | None = None) -> ONNXSession:
        return ONNXSession(artifact, threads=threads)


def session_options(threads: int | None, profile_prefix: str | None = None):
    """How edgekit runs ONNX Runtime: full graph optimisation, sequential, ``threads`` intra-op threads,
    one inter-op thread; with ``profile_prefix``, its profiler on (edgekit.profiling)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return opts


class ONNXSession:
    def __init__(self, path: str, *, threads: int | None = None):
        import onnxruntime as ort

        self.path, self.threads = str(path), threads
        try:
            self.session = ort.InferenceSession(self.path, sess_options=session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            msg = first_line(e)
            raise ModelLoadError(f"{path} cannot be loaded by ONNX Runtime: {msg[:300]}") from None
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        in_names, out_names = interface_names([t.name for t in ins], [t.name for t in outs])
        self.inputs = [_bound(n, t) for n, t in zip(in_names, ins, strict=True)]
        self.outputs = [_bound(n, t) for n, t in zip(out_names, outs, strict=True)]
        fixed = self.inputs[0].shape[0] if self.inputs[0].shape else None
        self._fixed_batch = fixed  # a graph made for a fixed batch size: the last chunk is padded to it

    def run(self, batch) -> dict[str, np.ndarray]:
        x = feeds(batch, self.inputs)
        n, step = rows_of(x), self._fixed_batch or 64
        graph_names = [t.artifact_name for t in self.outputs]
        outs: dict[str, list] = {t.name: [] for t in self.outputs}
        for i in range(0, n, step):
            chunk = {t.artifact_name: t.quantize(x[t.name][i : i + step]) for t in self.inputs}
            rows = len(next(iter(chunk.values())))
            if self._fixed_batch and rows < self._fixed_batch:
                chunk = {k: np.concatenate([v, np.zeros((self._fixed_batch - rows, *v.shape[1:]), v.dtype)])
                         for k, v in chunk.items()}
            for t, y in zip(self.outputs, self.session.run(graph_names, chunk), strict=True):
                outs[t.name].append(t.dequantize(np.asarray(y)[:rows]))
        return {k: np.concatenate(v) for k, v in outs.items()}

    def bind(self, batch) -> Callable[[], Any]:
        x = feeds(batch, self.inputs)
        repeat = self._fixed_batch or 1
        bound = {t.artifact_name: np.ascontiguousarray(np.repeat(t.quantize(x[t.name][:1]), repeat, axis=0))
                 for t in self.inputs}
        self._bound = bound  # keep the buffers alive while they are bound
        binding = self.session.io_binding()
        for k, v in bound.items():
            binding.bind_cpu_input(k, v)
        for t in self.outputs:
            binding.bind_output(t.artifact_name, "cpu")
        run = self.session.run_with_iobinding
        return lambda: run(binding)

    def profile_ops(self, batch, runs: int) -> dict[str, Any]:
        """Each node's mean time over ``runs`` inferences of the first sample (edgekit.profiling):
        ONNX Runtime's own profiler on the graph as it optimises it, each node given its layer scope
        and MACs through the node it was made from."""
        from edgekit.profiling.onnx_ops import attach_origins, profile_onnx

        x = feeds(batch, self.inputs)
        prof = profile_onnx(self.path, {t.artifact_name: t.quantize(x[t.name][:1]) for t in self.inputs},
                            threads=self.threads, runs=runs)
        return attach_origins(prof, self.path)

    def describe(self) -> dict[str, Any]:
        meta = self.session.get_modelmeta()
        info: dict[str, Any] = {**io_record(self.inputs, self.outputs), "producer": meta.producer_name}
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


def _bound(name: str, t) -> BoundTensor:
    """An ONNX Runtime graph input or output as a BoundTensor (a QDQ model's boundary is float32)."""
    return BoundTensor(name, t.name, dims(t.shape), np.dtype(_DTYPES.get(t.type, np.float32)).name)
