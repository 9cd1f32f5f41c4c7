"""An image folder: one sub-folder per class, images decoded and resized only when read.

Example:
    >>> ds = load_image_folder(Path("flowers/"), 32)   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.data.dataset import TEST_FRACTION, Dataset, from_train_test, split_off
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


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
            return decode_image(self.files[int(idx)], self.size)
        return ImageFiles([self.files[int(i)] for i in idx], self.size)

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=np.uint8)
        for i, f in enumerate(self.files):
            out[i] = decode_image(f, self.size)
        return out if dtype is None else out.astype(dtype)


def decode_image(f: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(f) as im:
            return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"Image {f} cannot be read: {e}") from None


def load_image_folder(path: Path, size: int) -> Dataset:
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
    decode_image(files[0], size)  # a folder of unreadable files fails here, not half-way through
    x, y = ImageFiles(files, size), np.asarray(ys, dtype=np.int64)
    x_tr, y_tr, x_te, y_te = split_off(x, y, TEST_FRACTION)
    prep = Preprocessing(scale=1 / 255, image_size=[size, size], notes="RGB resized, scaled to 0..1")
    return from_train_test(str(path), x_tr, y_tr, x_te, y_te, classes, prep)
