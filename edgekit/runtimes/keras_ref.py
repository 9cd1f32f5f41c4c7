"""The source model itself as a runtime: the reference every artifact is compared with.

Latency is measured on a ``tf.function`` of the model's forward pass (graph mode), the
fair float baseline; eager calls are about 15x slower and would flatter the artifacts.

Example:
    >>> s = KerasRuntime().load("runs/demo")   # doctest: +SKIP
    >>> s.run(x)["output"].shape                # doctest: +SKIP
    (359, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgekit.io_spec import check_batch, take
from edgekit.runtimes.base import PackageRuntime
from edgekit.runtimes.binding import BoundTensor, feeds, io_record


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
        self.inputs = [BoundTensor(t.name, t.name, (None, *t.shape), t.dtype) for t in source.inputs]
        self.outputs = [BoundTensor(t.name, t.name, (None, *t.shape), t.dtype) for t in source.outputs]
        self._graph_fn = tf.function(source.call, reduce_retracing=True)

    def run(self, batch) -> dict:
        x = feeds(batch, self.inputs)
        check_batch(x, self.source.inputs, what="the inputs")
        return self.source.predict(x)

    def bind(self, batch) -> Callable[[], Any]:
        import tensorflow as tf

        first = take(feeds(batch, self.inputs), 0, 1)
        xt = {k: tf.constant(v) for k, v in first.items()}
        fn = self._graph_fn
        return lambda: fn(xt)

    def describe(self) -> dict[str, Any]:
        from edgekit.macs import graph_macs

        return {**io_record(self.inputs, self.outputs), "quant_guess": "fp32", "framework": self.source.framework,
                "macs": graph_macs(self.source)}
