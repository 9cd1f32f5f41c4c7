"""Inputs and outputs by name: what a model takes and returns, and batches of them.

Inside edgekit a batch is a dict of arrays by name: the Keras input names (the ``name=`` of each
``keras.Input``) and output names (``model.output_names``), or ``input`` and ``output`` for a model
with one of each (:func:`interface_names`). Every artifact binds its inputs and outputs by these
names, never by position: converters reorder outputs and rename them (``StatefulPartitionedCall:1``).
At the public API's edge a one-input model also takes its array (:func:`by_name`, :func:`as_named`).

Example:
    >>> import numpy as np
    >>> b = {"image": np.zeros((4, 8, 8, 1)), "features": np.ones((4, 5))}
    >>> rows(b), rows(take(b, 1, 3))
    (4, 2)
    >>> sorted(concat([take(b, 0, 1), take(b, 1, 4)])["features"].shape)
    [4, 5]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

Batch = Union[np.ndarray, dict]  # noqa: UP007  (what the public API takes: {name: array}, or one input's array)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its source name, shape without the batch axis (``None`` = any), dtype."""

    name: str
    shape: tuple
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


def interface_names(inputs: list[str], outputs: list[str]) -> tuple[list[str], list[str]]:
    """The names edgekit gives a model's tensors, the source's and every artifact's alike: ``input`` and
    ``output`` for a model with one input and one output (whatever a converter called them), else the
    model's own names.

    >>> interface_names(["serving_default_x:0"], ["StatefulPartitionedCall:0"])
    (['input'], ['output'])
    >>> interface_names(["image", "meta"], ["label"])
    (['image', 'meta'], ['label'])
    """
    if len(inputs) == 1 and len(outputs) == 1:
        return ["input"], ["output"]
    return list(inputs), list(outputs)


def by_name(batch: Batch, specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """A batch as a dict by input name: the public API's edge, where a one-input model also takes its array."""
    if len(specs) != 1 and not isinstance(batch, dict):
        from edgekit.errors import ShapeError

        raise ShapeError(f"the model takes {len(specs)} inputs ({', '.join(s.name for s in specs)}), not one array",
                         hint="pass a dict of arrays by input name")
    return as_named(batch, specs[0].name if specs else "input")


def as_named(batch: Batch, name: str = "input") -> dict[str, np.ndarray]:
    """A batch as a dict: one array under ``name`` (every session binds a one-input model's array
    under any name). The public API's edge: inside edgekit a batch is always a dict by name."""
    return batch if isinstance(batch, dict) else {name: batch}


def rows(batch: dict[str, np.ndarray]) -> int:
    """The number of samples in a batch."""
    return len(next(iter(batch.values()))) if batch else 0


def take(batch: dict[str, np.ndarray], start: int, stop: int | None = None) -> dict[str, np.ndarray]:
    """Rows ``start:stop`` of every tensor."""
    return {k: v[start:stop] for k, v in batch.items()}


def concat(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batches joined along the batch axis."""
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]} if batches else {}


def as_float32(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float32) for k, v in batch.items()}


def check_batch(batch: dict[str, np.ndarray], specs: list[TensorSpec], *, what: str = "data") -> None:
    """A ShapeError naming the keys and shapes the model expects when ``batch`` does not fit ``specs``."""
    from edgekit.errors import ShapeError
    from edgekit.generated_inputs import is_integer
    from edgekit.shapes import fits

    expected = ", ".join(f"{s.name} {tuple(s.shape)} {s.dtype}" for s in specs)
    if set(batch) != {s.name for s in specs}:
        got = ", ".join(sorted(batch))
        raise ShapeError(f"{what} has inputs {got}, but the model takes {expected}",
                         hint="name each input array after the model's input (an .npz key per input)")
    for s in specs:
        x = batch[s.name]
        if not fits(s.shape, x.shape[1:]):
            raise ShapeError(f"{what}: input '{s.name}' has samples of shape {tuple(x.shape[1:])}, but the model takes "
                             f"{tuple(s.shape)} (expected: {expected})")
        if is_integer(s.dtype):
            values = np.asarray(x[: min(len(x), 4096)])
            if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
                raise ShapeError(f"{what}: input '{s.name}' takes integer ids ({s.dtype}) but was given fractional "
                                 "values", hint="pass the ids themselves, not scaled or normalised values")


def save_batch(stem: Path, batch: dict[str, np.ndarray], *, float_dtype=np.float32) -> None:
    """Write a batch for another process: a folder ``STEM/`` of ``0.npy``, ``1.npy``... (each memory-mappable)
    and ``names.json``. Float inputs are written as ``float_dtype``, integer ones as they are."""
    stem = Path(stem)

    def typed(a):
        a = np.asarray(a)
        return np.ascontiguousarray(a if np.issubdtype(a.dtype, np.integer) else a.astype(float_dtype))

    stem.mkdir(parents=True, exist_ok=True)
    (stem / "names.json").write_text(json.dumps(list(batch)))
    for i, a in enumerate(batch.values()):
        np.save(stem / f"{i}.npy", typed(a))


def load_batch(stem: Path, *, mmap_mode: str | None = None) -> dict[str, np.ndarray]:
    """Read what :func:`save_batch` wrote."""
    stem = Path(stem)
    names = json.loads((stem / "names.json").read_text())
    return {n: np.load(stem / f"{i}.npy", mmap_mode=mmap_mode, allow_pickle=False) for i, n in enumerate(names)}


def unknown_dims(specs: list[TensorSpec]) -> list[TensorSpec]:
    """The inputs with a dimension other than batch left unknown (a sequence length, an audio length)."""
    return [s for s in specs if any(d is None for d in s.shape)]


def parse_input_shapes(text: str, specs: list[TensorSpec], aliases: dict[str, str] | None = None) -> dict[str, tuple[int, ...]]:
    """``--input-shape``: ``D1,D2`` (one input) or ``NAME=D1,D2;NAME=D1`` (shapes without the batch axis).

    Example:
        >>> parse_input_shapes("tokens=128", [TensorSpec("tokens", (None,), "int32")])
        {'tokens': (128,)}
    """
    from edgekit.errors import UsageError

    names = [s.name for s in specs]
    shown = {v: k for k, v in (aliases or {}).items()}  # messages use the name the user knows
    expected = "; ".join(f"{shown.get(s.name, s.name)}={','.join('D' if d is None else str(d) for d in s.shape)}"
                         for s in specs)
    shapes: dict[str, tuple[int, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, dims = part.rpartition("=")
        name = name.strip() or (names[0] if len(names) == 1 else "")
        name = (aliases or {}).get(name, name)  # a single input's Keras name
        if name not in names:
            raise UsageError(f"--input-shape {text} names no input '{name}'; the model's inputs are "
                             f"{', '.join(shown.get(n, n) for n in names)}",
                             hint=f"e.g. --input-shape '{expected}'")
        try:
            shapes[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise UsageError(f"--input-shape {text}: dimensions must be whole numbers, as in '{expected}'") from None
    for s in specs:
        if s.name not in shapes:
            continue
        got = shapes[s.name]
        if len(got) != len(s.shape) or any(k is not None and k != g for k, g in zip(s.shape, got, strict=False)) \
                or any(g < 1 for g in got):
            raise UsageError(f"--input-shape {shown.get(s.name, s.name)}={','.join(map(str, got))} does not fit the input's shape "
                             f"{tuple(s.shape)} (without the batch axis)", hint=f"e.g. --input-shape '{expected}'")
    return shapes
