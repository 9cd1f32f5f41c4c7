"""The source model itself as a runtime: the reference every artifact is compared with.

Latency is measured on a ``tf.function`` of the model's forward pass (graph mode), the
fair float baseline; eager calls are about 15x slower and would flatter the artifacts.

Example:
    >>> s = KerasRuntime().load("runs/demo")   # doctest: +SKIP
    >>> s.run(x).shape                          # doctest: +SKIP
    (359, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgekit.errors import ShapeError
from edgekit.io_spec import check_batch, take
from edgekit.runtimes.base import PackageRuntime
from edgekit.shapes import fits


class KerasRuntime(PackageRuntime):
    module = "keras"
    distribution = "keras"
    name = "keras"
    formats = ("keras",)

    def __init__(self, *, safe_mode: bool = True):
        self.safe_mode = safe_mode

    def load(self, artifact: str, *, threads: int | None = None) -> KerasSession:
        from edgekit.tf_env import import_tensorflow

        tf = import_tensorflow()

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # already initialised in this process
        from edgekit.model_loading import load_source

        return KerasSession(load_source(artifact, safe_mode=self.safe_mode))


class KerasSession:
    def __init__(self, source):
        import tensorflow as tf

        self.source = source
        self.input_shape = tuple(source.input_shape)
        self._graph_fn = tf.function(source.call, reduce_retracing=True)

    def _check(self, x) -> None:
        if self.source.multi_input:
            check_batch(x, self.source.inputs, what="the inputs")
        elif not fits(self.input_shape, x.shape[1:]):
            raise ShapeError(f"input shape {tuple(x.shape[1:])} does not fit the model's {self.input_shape}")

    def run(self, x):
        self._check(x)
        return self.source.predict(x)

    def bind(self, x) -> Callable[[], Any]:
        import tensorflow as tf

        self._check(x)
        first = take(x, 0, 1)
        xt = {k: tf.constant(v) for k, v in first.items()} if isinstance(first, dict) else tf.constant(first)
        fn = self._graph_fn
        return lambda: fn(xt)

    def describe(self) -> dict[str, Any]:
        from edgekit.macs import graph_macs

        io = {k: [{**t.to_dict(), "shape": [None, *t.shape]} for t in specs]  # with the batch axis, as the runtimes say
              for k, specs in (("inputs", self.source.inputs), ("outputs", self.source.outputs))}
        return {"io": io, "input_dtype": self.source.input_dtype, "input_shape": [None, *self.input_shape],
                "quant_guess": "fp32", "framework": self.source.framework,
                "macs": graph_macs(self.source)}
