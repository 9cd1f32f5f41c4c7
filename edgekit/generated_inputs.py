"""Generated inputs for models that come without data: floats in a range, or valid integer ids.

An integer input (token ids, category ids) is never fed floats: its generated values are
integers in the range the model accepts, read from the ``Embedding`` layers it feeds
(``[0, input_dim)``), else ``[0, 100)``.

Example:
    >>> import numpy as np
    >>> generate((4,), "int32", 3, id_range=(0, 9)).dtype
    dtype('int32')
    >>> float(generate((2,), "float32", 5, value_range=(0, 1)).max()) <= 1
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_ID_RANGE = (0, 99)


def is_integer(dtype: Any) -> bool:
    """True for an integer input dtype (``"int32"``, ``np.int64`` ...)."""
    try:
        return np.issubdtype(np.dtype(dtype), np.integer)
    except TypeError:
        return False


def id_range(keras_model: Any) -> tuple[int, int]:
    """The inclusive range of valid ids for a model's integer input: ``[0, min(input_dim) - 1]`` over
    its ``Embedding`` layers (nested models too), else :data:`DEFAULT_ID_RANGE`."""
    dims = [int(layer.input_dim) for layer in _layers(keras_model) if type(layer).__name__ == "Embedding"]
    return (0, min(dims) - 1) if dims else DEFAULT_ID_RANGE


def generate(shape, dtype: Any, n: int, *, value_range: tuple[float, float] = (0.0, 1.0),
             id_range: tuple[int, int] = DEFAULT_ID_RANGE, seed: int = 0) -> np.ndarray:
    """``n`` seeded samples shaped ``shape`` (``None`` dims become 1): uniform floats in ``value_range``
    for a float input, uniform integers in ``id_range`` (inclusive) for an integer one."""
    rng = np.random.default_rng(seed)
    size = (n, *[d or 1 for d in shape])
    if is_integer(dtype):
        lo, hi = int(id_range[0]), int(id_range[1])
        return rng.integers(lo, hi + 1, size=size).astype(dtype)
    return rng.uniform(value_range[0], value_range[1], size=size).astype(np.float32)


def _layers(model: Any):
    for layer in getattr(model, "layers", None) or []:
        yield layer
        yield from _layers(layer)
