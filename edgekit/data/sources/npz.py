"""``.npz`` data: ``x_train``/``y_train``/``x_test``/``y_test`` arrays (read memory-mapped, row by row
when large), or, for a model with several inputs, one array per input name
(:func:`load_named_npz`).

Example:
    >>> ds = load_npz(Path("data.npz"))   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.data.dataset import SPLIT_SEED, TEST_FRACTION, Dataset, from_train_test
from edgekit.data.preprocessing import Preprocessing
from edgekit.data.spill import spill_stream
from edgekit.errors import InputError, UsageError
from edgekit.generated_inputs import is_integer
from edgekit.io_spec import TensorSpec, check_batch


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, memory-mapped: only the rows used are ever read. Members stored
    uncompressed (``np.savez``) are mapped where they lie; compressed ones (``np.savez_compressed``)
    are decompressed a chunk at a time into an unnamed temporary file (edgekit.data.spill)."""
    import zipfile

    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as member:  # decompressed as it streams to an unnamed file, then mapped
                    version = np.lib.format.read_magic(member)
                    shape, fortran, dtype = _read_npy_header(member, version)
                    arrays[name] = spill_stream(member, shape, dtype, fortran=fortran)
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            fh.seek(start)
            version = np.lib.format.read_magic(fh)
            shape, fortran, dtype = _read_npy_header(fh, version)
            if not shape or 0 in shape:
                arrays[name] = np.zeros(shape, dtype)
            else:
                arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape,
                                         order="F" if fortran else "C")
    return arrays


def _read_npy_header(fh, version) -> tuple:
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(fh)
    if dtype.hasobject:
        raise ValueError("object arrays are not read (no pickles)")
    return shape, fortran, dtype


def load_npz(path: Path) -> Dataset:
    try:
        arrays = npz_arrays(path)
    except Exception as e:  # zipfile/pickle/format errors all mean "not a readable npz"
        raise InputError(f"Data {path} is not a readable .npz file: {type(e).__name__}") from None
    if not arrays:
        raise InputError(f"Data {path} holds no arrays", hint="save x_train/y_train/x_test/y_test")
    labels_arr = arrays.pop("labels", None)
    for k in ("y_train", "y_test", "y"):  # labels are small: in memory
        if k in arrays:
            arrays[k] = np.asarray(arrays[k])
    if "x_train" in arrays:
        missing = [k for k in ("x_test",) if k not in arrays]
        if missing:
            raise InputError(f"Data {path} has x_train but no {missing[0]}", hint="save x_test too")
        x_tr, x_te = arrays["x_train"], arrays["x_test"]
        y_tr, y_te = arrays.get("y_train"), arrays.get("y_test")
    elif len(arrays) == 1 or "x" in arrays:
        # Unlabelled samples, e.g. calibration inputs: all of them are held out.
        x = arrays["x"] if "x" in arrays else next(iter(arrays.values()))
        x_tr, y_tr, x_te, y_te = x, None, x, None
    else:
        raise InputError(
            f"Data {path} has arrays {sorted(arrays)}, not x_train/y_train/x_test/y_test",
            hint="save them under those names, or save one array of inputs",
        )
    if x_tr.ndim < 2 or x_te.ndim < 2:
        raise InputError(f"Data {path} inputs must have a sample axis; got shape {x_tr.shape}")
    if len(x_tr) == 0 or len(x_te) == 0:
        raise InputError(f"Data {path} holds no samples (x_train {x_tr.shape}, x_test {x_te.shape})",
                         hint="save at least one sample in each split")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise InputError(f"Data {path}: x_train {x_tr.shape} and x_test {x_te.shape} differ")
    for name, x_, y_ in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if y_ is not None and len(y_) != len(x_):
            raise InputError(f"Data {path}: x_{name} has {len(x_)} samples but y_{name} {len(y_)}")
    if not np.issubdtype(x_tr.dtype, np.number):
        raise InputError(f"Data {path}: inputs must be numbers, got dtype {x_tr.dtype}")
    if y_tr is not None:
        y_tr = _class_indices(y_tr, path)
        y_te = _class_indices(y_te, path) if y_te is not None else None
    n_classes = int(max(y_tr.max(), y_te.max() if y_te is not None else 0)) + 1 if y_tr is not None else 0
    labels = [str(v) for v in labels_arr.tolist()] if labels_arr is not None else [str(i) for i in range(n_classes)]
    prep = Preprocessing(scale=1 / 255, notes="uint8 scaled to 0..1") if x_tr.dtype == np.uint8 else Preprocessing()
    return from_train_test(str(path), x_tr, y_tr, x_te, y_te, labels, prep)


def _class_indices(y: np.ndarray, path: Path) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise InputError(f"Data {path}: labels must be class indices, got dtype {y.dtype}")
    if (y < 0).any():
        raise InputError(f"Data {path}: labels must be class indices >= 0")
    return y.astype(np.int64)


def load_named_npz(path: str | Path, specs: list[TensorSpec]) -> tuple[dict, dict, dict]:
    """``(train inputs, test inputs, test labels by key)`` from an ``.npz`` keyed by input names."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Data {path} does not exist", hint="pass an .npz with one array per input name")
    if path.suffix.lower() != ".npz":
        raise UsageError(f"A model with several inputs takes DATA as an .npz with one array per input "
                         f"({', '.join(s.name for s in specs)}), or uniform:LO,HI; got {path}")
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except Exception as e:
        raise InputError(f"Data {path} is not a readable .npz: {type(e).__name__}") from None
    inputs = {s.name: arrays[s.name] for s in specs if s.name in arrays}
    if len(inputs) != len(specs):
        expected = ", ".join(f"{s.name} {tuple(s.shape)}" for s in specs)
        raise InputError(f"Data {path} has keys {', '.join(arrays) or 'none'}, but the model's inputs are {expected}",
                         hint="save one array per input under its name, labels as y or y_<output name>")
    lengths = {len(v) for v in inputs.values()}
    if len(lengths) != 1:
        raise InputError(f"Data {path}: the input arrays have different numbers of rows "
                         f"({', '.join(f'{k} {len(v)}' for k, v in inputs.items())})")
    check_batch(inputs, specs, what=f"Data {path}")
    n = lengths.pop()
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, int(round(n * TEST_FRACTION))) if n > 1 else 0
    test, train = order[:n_test], order[n_test:]
    labels = {k: v[test] for k, v in arrays.items() if (k == "y" or k.startswith("y_")) and len(v) == n}
    cast = {s.name: (np.int64 if is_integer(s.dtype) else np.float32) for s in specs}
    return ({k: v[train].astype(cast[k]) for k, v in inputs.items()},
            {k: v[test].astype(cast[k]) for k, v in inputs.items()}, labels)
