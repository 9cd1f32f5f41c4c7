"""A ``.csv``: numeric feature columns and an integer label column (the last), standardised.

Example:
    >>> ds = load_csv(Path("iris.csv"))   # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgekit.data.dataset import TEST_FRACTION, Dataset, from_train_test, split_off
from edgekit.data.preprocessing import Preprocessing
from edgekit.data.spill import spill_rows
from edgekit.errors import InputError


def load_csv(path: Path) -> Dataset:
    """Features parsed a line at a time into an unnamed temporary file (edgekit.data.spill),
    memory-mapped; only the labels (one string per row) are held in memory."""
    raw_labels: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = (r for r in csv.reader(fh) if r)
            header = next(reader, None)
            if header is None:
                raise InputError(f"Data {path} needs a header row and at least two samples")
            label_col = header.index("label") if "label" in header else len(header) - 1
            width = len(header) - 1

            def features():
                for line, r in enumerate(reader, start=2):
                    if len(r) != len(header):
                        raise InputError(f"Data {path}: line {line} has {len(r)} values, the header {len(header)}",
                                         hint="every row needs one value per column")
                    raw_labels.append(r[label_col])
                    try:
                        yield [float(v) for i, v in enumerate(r) if i != label_col]
                    except ValueError as e:
                        raise InputError(f"Data {path}: a feature on line {line} is not a number ({e})",
                                         hint="features must be numeric; the label column is 'label' or the last one") from None

            feats = spill_rows(features(), width)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"Data {path} cannot be read as CSV: {e}") from None
    if len(raw_labels) < 2:
        raise InputError(f"Data {path} needs a header row and at least two samples")
    classes = sorted(set(raw_labels), key=lambda s: (not _is_int(s), int(s) if _is_int(s) else 0, s))
    index = {c: i for i, c in enumerate(classes)}
    y = np.asarray([index[v] for v in raw_labels], dtype=np.int64)
    x_tr, y_tr, x_te, y_te = split_off(feats, y, TEST_FRACTION)
    mean, std = _mean_std(x_tr)
    std[std == 0] = 1.0
    prep = Preprocessing(mean=mean.tolist(), std=std.tolist(), notes="features standardised on train")
    return from_train_test(str(path), x_tr, y_tr, x_te, y_te, classes, prep)


def _mean_std(x, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of rows on disk, a chunk of rows at a time."""
    n, total, squares = 0, 0.0, 0.0
    for i in range(0, len(x), chunk):
        part = np.asarray(x[i : i + chunk], dtype=np.float64)
        n, total, squares = n + len(part), total + part.sum(axis=0), squares + (part**2).sum(axis=0)
    mean = total / max(n, 1)
    return mean.astype(np.float32), np.sqrt(np.maximum(squares / max(n, 1) - mean**2, 0)).astype(np.float32)


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False
