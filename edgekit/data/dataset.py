"""A data set edgekit reads: raw arrays split into train/val/test (seeded, so ``bench`` evaluates
on the same held-out rows ``train`` never saw), with the preprocessing that maps them to model
inputs; rows of arrays on disk read only when asked for.

Example:
    >>> ds = from_train_test("builtin:x", np.zeros((10, 2)), np.arange(10) % 2, np.ones((4, 2)), np.arange(4) % 2,
    ...                      ["a", "b"], Preprocessing())
    >>> len(ds.x_train), len(ds.x_val), len(ds.x_test)
    (9, 1, 4)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from edgekit.data.preprocessing import Preprocessing
from edgekit.data.spill import CHUNK_BYTES, spill_blocks
from edgekit.errors import InputError

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
PREPARED_IN_MEMORY_BYTES = 64 << 20  # larger prepared inputs are spilled to disk and memory-mapped


@dataclass
class Dataset:
    """Raw arrays of one data source, split into train/val/test, with its preprocessing."""

    spec: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_val: np.ndarray
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    labels: list[str] = field(default_factory=list)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    # classification: one class id per sample; detection: boxes per sample, ``(n, max_boxes, 5)`` rows
    # ``[class, x0, y0, x1, y1]`` in 0..1 of the image, padded with class -1 (edgekit.detection.boxes)
    task: str = "classification"

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def has_labels(self) -> bool:
        return self.y_test is not None

    def prepared(self, split: str, preprocessing: Preprocessing | None = None, *, limit: int | None = None) -> np.ndarray:
        """Model-ready float32 inputs of ``split`` ('train', 'val' or 'test'), the first ``limit`` of them.

        Image folders are read lazily: only the samples asked for are decoded (export calibrates
        on 200 and checks parity on 200, however large the folder). Inputs over
        ``PREPARED_IN_MEMORY_BYTES`` are prepared a block of rows at a time onto disk and come
        back memory-mapped (``bench --samples`` on large inputs)."""
        x = self.inputs_of(split)
        if limit is not None:
            x = x[:limit]
        preprocessing = preprocessing or self.preprocessing
        row_shape = tuple(x.shape[1:])  # preprocessing is element-wise: float32 rows of the same shape
        row_bytes = 4 * int(np.prod(row_shape))
        if len(x) * row_bytes <= PREPARED_IN_MEMORY_BYTES:
            return preprocessing.apply(np.asarray(x))
        per_block = max(1, CHUNK_BYTES // row_bytes)
        blocks = (preprocessing.apply(np.asarray(x[i : i + per_block])) for i in range(0, len(x), per_block))
        return spill_blocks(blocks, row_shape, np.float32)

    def inputs_of(self, split: str):
        """The raw inputs of ``split`` as stored: an array, or rows still on disk."""
        return {"train": self.x_train, "val": self.x_val, "test": self.x_test}[split]

    def labels_of(self, split: str) -> np.ndarray | None:
        return {"train": self.y_train, "val": self.y_val, "test": self.y_test}[split]

    def fingerprint(self) -> str:
        """A short hash of the raw data, so a run records exactly what it learned from."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            if a is not None:  # a chunk of rows at a time: data on disk stays on disk
                for i in range(0, len(a), 4096):
                    h.update(np.ascontiguousarray(np.asarray(a[i : i + 4096])).tobytes())
        return h.hexdigest()[:16]

    def split_info(self) -> dict:
        return {
            "seed": SPLIT_SEED,
            "train": len(self.x_train),
            "val": len(self.x_val),
            "test": len(self.x_test),
        }


class Rows:
    """Rows ``idx`` of an array on disk (a memory-mapped .npz member), read only when asked for.

    Example:
        >>> r = Rows(np.arange(10).reshape(5, 2), np.array([4, 0]))
        >>> r.shape, np.asarray(r[:1]).tolist()
        ((2, 2), [[8, 9]])
    """

    def __init__(self, base, idx: np.ndarray):
        self.base, self.idx = base, np.asarray(idx)

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.idx), *self.base.shape[1:])

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, idx):
        if isinstance(idx, slice) or np.asarray(idx).ndim:
            return Rows(self.base, self.idx[idx])
        return np.asarray(self.base[int(self.idx[idx])])

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.base[np.sort(self.idx)])[np.argsort(np.argsort(self.idx))] if len(self.idx) else \
            np.empty(self.shape, self.base.dtype)
        return out if dtype is None else out.astype(dtype)


def split_off(x, y: np.ndarray | None, fraction: float) -> tuple:
    """Deterministic, stratified-when-possible split into (rest, held-out). Arrays on disk
    (memory-mapped) and image files stay on disk: their splits are index views."""
    n = len(x)
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(n)
    n_out = max(1, int(round(n * fraction))) if n > 1 else 0
    out, rest = order[:n_out], order[n_out:]

    def pick(a, idx):
        if a is None:
            return None
        if isinstance(a, np.memmap):
            return Rows(a, idx)
        return a[idx]

    return pick(x, rest), pick(y, rest), pick(x, out), pick(y, out)


def from_train_test(spec, x_tr, y_tr, x_te, y_te, labels, prep) -> Dataset:
    if len(x_tr) == 0:
        raise InputError(f"Data {spec} has no training samples", hint="add samples to the data set")
    x_tr, y_tr, x_va, y_va = split_off(x_tr, y_tr, VAL_FRACTION)
    return Dataset(spec, x_tr, y_tr, x_va, y_va, x_te, y_te, labels, prep)
