"""The runtime interface: ``load`` once, ``run`` many (load time is measured apart).

A :class:`Session` takes feeds by input name and returns outputs by output name, float32
whatever the artifact's own types are (int8 models are quantized and dequantized at the
boundary, by each tensor's :class:`~edgekit.runtimes.binding.BoundTensor`), so parity and
accuracy compare like with like. A one-input model may be fed its array alone. ``bind`` sets
the inputs once and returns a zero-argument callable that performs exactly one inference: the
thing a latency loop times.

Example:
    >>> session = LiteRTRuntime().load("model_int8.tflite", threads=2)   # doctest: +SKIP
    >>> session.run({"input": x[:1]})["output"].shape                   # doctest: +SKIP
    (1, 10)
    >>> invoke = session.bind(x[:1]); invoke()                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from edgekit.runtimes.binding import BoundTensor


class Session(Protocol):
    inputs: list[BoundTensor]
    outputs: list[BoundTensor]

    def run(self, feeds: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """Outputs (float32) by name for a batch of prepared inputs by name."""
        ...

    def bind(self, feeds: dict[str, np.ndarray] | np.ndarray) -> Callable[[], Any]:
        """Set one sample as input; return a callable that runs one inference."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts about the loaded artifact: ``io`` (every tensor, :func:`binding.io_record`), dtypes,
        quantization, op counts."""
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
