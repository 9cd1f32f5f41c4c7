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

import numpy as np

from edgekit.errors import ShapeError
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
        from edgekit.source_model import load_source

        return KerasSession(load_source(artifact, safe_mode=self.safe_mode))


class KerasSession:
    def __init__(self, source):
        import tensorflow as tf

        self.source = source
        self.input_shape = tuple(source.input_shape)
        self._graph_fn = tf.function(source.call, reduce_retracing=True)

    def _check(self, x: np.ndarray) -> None:
        if not fits(self.input_shape, x.shape[1:]):
            raise ShapeError(f"input shape {tuple(x.shape[1:])} does not fit the model's {self.input_shape}")

    def run(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        return self.source.predict(x)

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        import tensorflow as tf

        self._check(x)
        xt = tf.constant(x[:1])
        fn = self._graph_fn
        return lambda: fn(xt)

    def describe(self) -> dict[str, Any]:
        from edgekit.macs import graph_macs

        return {"input_dtype": self.source.input_dtype, "input_shape": [None, *self.input_shape], "quant_guess": "fp32",
                "framework": self.source.framework, "macs": graph_macs(self.source)}
