"""A data split fed to Keras a batch at a time: rows on disk are read and preprocessed per batch.

Training on an image folder, a memory-mapped ``.npz`` or a parsed ``.csv`` (all read lazily,
see :mod:`edgekit.data.loaders`) goes through :class:`SplitBatches`, so memory holds one
batch, not the split. Arrays already in memory (the built-in digits) are passed to Keras
whole, as before: that is faster and costs nothing more.

Example:
    >>> ds = load_data("my_images/")                                        # doctest: +SKIP
    >>> model.fit(**fit_arguments(ds, batch_size=64), epochs=10)            # doctest: +SKIP
"""

from __future__ import annotations

import math

import keras  # imported by the trainer only: this module is not on the CLI's start-up path
import numpy as np


def is_lazy(x) -> bool:
    """True when ``x`` is read from disk on demand (not a plain in-memory array)."""
    return not isinstance(x, np.ndarray) or isinstance(x, np.memmap)


def fit_arguments(ds, *, batch_size: int, seed: int = 0) -> dict:
    """``model.fit`` keyword arguments for the train and val splits: arrays, or batches read lazily."""
    if not is_lazy(ds.x_train) and not is_lazy(ds.x_val):
        return {"x": ds.prepared("train"), "y": ds.y_train, "batch_size": batch_size,
                "validation_data": (ds.prepared("val"), ds.y_val)}
    return {"x": SplitBatches(ds, "train", batch_size=batch_size, shuffle=True, seed=seed),
            "validation_data": SplitBatches(ds, "val", batch_size=batch_size)}


def predict_arguments(ds, split: str, *, batch_size: int = 256) -> dict:
    """``model.predict`` keyword arguments for ``split``'s inputs."""
    if not is_lazy(ds.inputs_of(split)):
        return {"x": ds.prepared(split), "batch_size": batch_size}
    return {"x": SplitBatches(ds, split, batch_size=batch_size, with_labels=False)}


class SplitBatches(keras.utils.PyDataset):
    """Batches of one split, preprocessed as the model expects; reshuffled every epoch if asked."""

    def __init__(self, ds, split: str, *, batch_size: int, shuffle: bool = False, seed: int = 0,
                 with_labels: bool = True):
        super().__init__()
        self.x = ds.inputs_of(split)
        self.y = ds.labels_of(split) if with_labels else None
        self.prep, self.batch_size, self.shuffle = ds.preprocessing, batch_size, shuffle
        self.order = np.arange(len(self.x))
        self.rng = np.random.default_rng(seed)
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, i: int):
        idx = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])  # read in file order
        x = self.prep.apply(np.asarray(self.x[idx]))
        return (x, np.asarray(self.y)[idx]) if self.y is not None else x

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.rng.shuffle(self.order)
