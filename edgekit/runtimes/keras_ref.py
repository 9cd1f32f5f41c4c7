"""The source model itself as a runtime: the reference every artifact is compared with.

Latency is measured on a ``tf.function`` of the model's forward pass (graph mode), the
fair float baseline; eager calls are about 15x slower and would flatter the artifacts.

Example:
    >>> s = KerasRuntime().load("runs/demo")   # doctest: +SKIP
    >>> s.run(x).shape                          # doctest: +SKIP
    (359, 10)
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from edgekit.errors import ShapeError


class KerasRuntime:
    name = "keras"
    formats = ("keras",)

    def __init__(self, *, safe_mode: bool = True):
        self.safe_mode = safe_mode

    def is_available(self) -> bool:
        try:
            import keras  # noqa: F401
        except ImportError:
            return False
        return True

    def version(self) -> str:
        from importlib import metadata

        return metadata.version("keras")

    def load(self, artifact: str, *, threads: int | None = None) -> KerasSession:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

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
        want = tuple(d for d in self.input_shape)
        got = tuple(x.shape[1:])
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            raise ShapeError(f"input shape {got} does not fit the model's {want}")

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
        return {"input_dtype": self.source.input_dtype, "input_shape": [None, *self.input_shape], "quant_guess": "fp32", **({"framework": self.source.framework})}
