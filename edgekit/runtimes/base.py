"""The runtime interface: ``load`` once, ``run`` many (load time is measured apart).

A :class:`Session` takes and returns float32 NumPy arrays whatever the artifact's own
input/output types are (int8 models are quantized and dequantized at the boundary), so
parity and accuracy compare like with like. ``bind`` sets the inputs once and returns a
zero-argument callable that performs exactly one inference: the thing a latency loop times.

Example:
    >>> session = LiteRTRuntime().load("model_int8.tflite", threads=2)   # doctest: +SKIP
    >>> session.run(x[:1]).shape                                        # doctest: +SKIP
    (1, 10)
    >>> invoke = session.bind(x[:1]); invoke()                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Session(Protocol):
    input_shape: tuple[int | None, ...]  # without the batch axis

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs (float32) for a batch of prepared float32 inputs."""
        ...

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """Set one sample as input; return a callable that runs one inference."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts about the loaded artifact (dtypes, quantization, op counts)."""
        ...


class PackageRuntime:
    """``is_available`` and ``version`` for a runtime that is one installed package.

    Subclasses set ``module`` (what they import) and ``distribution`` (its PyPI name).
    """

    module: str
    distribution: str

    def is_available(self) -> bool:
        import importlib.util

        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def version(self) -> str:
        from importlib import metadata

        return metadata.version(self.distribution)


class Runtime(Protocol):
    name: str
    formats: tuple[str, ...]

    def is_available(self) -> bool: ...

    def version(self) -> str: ...

    def load(self, artifact: str, *, threads: int | None = None) -> Session: ...
