"""One binding for every runtime: a model's tensors as typed records, feeds by name, and the
quantize/dequantize at an integer boundary.

Every session (LiteRT, ONNX Runtime, the JS engines, the Keras reference) describes each of its
inputs and outputs as a :class:`BoundTensor`, takes feeds as a dict by name and returns a dict by
name: ``run(feeds) -> outputs``. A model with one input may be fed its array alone; that is the
public edge, and :func:`feeds` is the one place it becomes a dict.

Names: the artifact's own (a signature's input and output names, which edgekit's exporters set to
the source model's), except that a model with one input and one output binds them as ``input``
and ``output``, the names a single-tensor source model carries (:func:`edgekit.io_spec.interface_names`).

Example:
    >>> import numpy as np
    >>> t = BoundTensor("input", "serving_default_x:0", (None, 4), "int8", scale=0.5, zero_point=-3)
    >>> t.quantize(np.array([[0.0, 1.0, 100.0, -100.0]], np.float32)).tolist()
    [[-3, -1, 127, -128]]
    >>> sorted(feeds(np.zeros((2, 4), np.float32), [t]))
    ['input']
    >>> t.to_dict()["quantization"]
    {'scale': 0.5, 'zero_point': -3}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import ShapeError
from edgekit.io_spec import by_name
from edgekit.shapes import fits

INTEGER_BOUNDARY = ("int8", "uint8", "int16")


@dataclass(frozen=True)
class BoundTensor:
    """One input or output of a loaded artifact.

    ``name`` is what edgekit binds by (the source model's name); ``artifact_name`` the tensor's
    name inside the file; ``shape`` has the batch axis first (``None`` = any size); ``dtype`` is the
    artifact's type at its boundary, with ``scale`` and ``zero_point`` when it is quantized there."""

    name: str
    artifact_name: str
    shape: tuple
    dtype: str = "float32"
    scale: float = 0.0
    zero_point: int = 0

    @property
    def sample_shape(self) -> tuple:
        """The shape without the batch axis."""
        return tuple(self.shape[1:])

    @property
    def quantized(self) -> bool:
        return self.dtype in INTEGER_BOUNDARY and bool(self.scale)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float32 values as this tensor takes them: quantized with its scale and zero point at an
        integer boundary, else cast to its dtype (ids stay ids)."""
        if self.quantized:
            info = np.iinfo(self.dtype)
            return np.clip(np.round(x / self.scale + self.zero_point), info.min, info.max).astype(self.dtype)
        return np.asarray(x).astype(self.dtype, copy=False)

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        """This tensor's values as float32 (dequantized at an integer boundary)."""
        if self.quantized:
            return (y.astype(np.float32) - self.zero_point) * self.scale
        return np.asarray(y).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """The record a manifest and ``describe()`` carry for this tensor."""
        d: dict[str, Any] = {"name": self.name, "artifact_name": self.artifact_name, "shape": list(self.shape),
                             "dtype": self.dtype}
        if self.scale:
            d["quantization"] = {"scale": float(self.scale), "zero_point": int(self.zero_point)}
        return d


def dims(shape: Sequence) -> tuple:
    """A runtime's shape with unknown sizes (``-1``, ``0``, a symbolic name, ``None``) as ``None``."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape)


def feeds(batch, inputs: Sequence[BoundTensor]) -> dict[str, np.ndarray]:
    """``batch`` as a dict by input name, each array checked against its input's shape (``None`` fits
    any size). A model with one input takes its array, or a dict of one array under any name (a
    converter may have renamed it); a ShapeError names what is missing or does not fit."""
    names = [t.name for t in inputs]
    batch = by_name(batch, inputs)
    if len(batch) == 1 and len(inputs) == 1:  # one input: no name to get wrong (a file may call it `inputs`)
        batch = {names[0]: next(iter(batch.values()))}
    missing = [n for n in names if n not in batch]
    if missing:
        raise ShapeError(f"no data for input {', '.join(missing)}; the model takes {', '.join(names)}")
    for t in inputs:
        got = tuple(np.shape(batch[t.name])[1:])
        if not fits(t.sample_shape, got):
            label = "input shape" if len(inputs) == 1 else f"input '{t.name}' has shape"
            raise ShapeError(f"{label} {got} does not fit the model's {t.sample_shape}")
    return {n: batch[n] for n in names}


def rows_of(feeds_: dict[str, np.ndarray]) -> int:
    return len(next(iter(feeds_.values()))) if feeds_ else 0


def io_record(inputs: Sequence[BoundTensor], outputs: Sequence[BoundTensor]) -> dict[str, Any]:
    """What every session's ``describe()`` says of its tensors: ``io`` (every input and output) and the
    first input's and output's dtype and shape, the summary a bench row and a manifest show."""
    return {
        "io": {"inputs": [t.to_dict() for t in inputs], "outputs": [t.to_dict() for t in outputs]},
        "input_dtype": inputs[0].dtype,
        "output_dtype": outputs[0].dtype,
        "input_shape": list(inputs[0].shape),
    }


def only(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The one output of a single-output model, as an array (the public edge: ``session.run(x)`` for
    a classifier); a ValueError naming the outputs when there are several."""
    if len(outputs) != 1:
        raise ValueError(f"the model has {len(outputs)} outputs ({', '.join(outputs)}): pick one by name")
    return next(iter(outputs.values()))
