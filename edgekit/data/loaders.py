"""DATA, from its spelling to a :class:`~edgekit.data.dataset.Dataset`: ``builtin:digits``,
``builtin:mnist``, ``.npz``, an image folder, a ``.csv``; for detectors ``builtin:mnist-detect``,
a COCO ``.json`` or a YOLO folder (``images/`` + ``labels/``); one module per source in
:mod:`edgekit.data.sources`.

Example:
    >>> ds = load_data("builtin:digits")
    >>> ds.x_train.shape[1:], ds.num_classes
    ((8, 8, 1), 10)
    >>> ds.prepared("test").dtype
    dtype('float32')
"""

from __future__ import annotations

from pathlib import Path

from edgekit.data.dataset import Dataset
from edgekit.data.sources.builtin import BUILTINS, load_digits, load_mnist
from edgekit.data.sources.csv_source import load_csv
from edgekit.data.sources.images import load_image_folder
from edgekit.data.sources.npz import load_npz
from edgekit.errors import InputError, UsageError, suggest


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
        if name == "mnist-detect":
            from edgekit.data.sources.mnist_detect import load_mnist_detect

            return load_mnist_detect(spec)
        return load_digits(spec) if name == "digits" else load_mnist(spec)
    path = Path(spec)
    if not path.exists():
        raise InputError(
            f"Data {spec} does not exist",
            hint="pass builtin:mnist, builtin:digits, an .npz, an image folder or a .csv",
        )
    if path.is_dir():
        from edgekit.data.sources.detection_files import is_yolo_folder, load_yolo

        if is_yolo_folder(path):
            return load_yolo(path, image_size or 96)
        return load_image_folder(path, image_size or 32)
    suffix = path.suffix.lower()
    if suffix == ".json":
        from edgekit.data.sources.detection_files import load_coco

        return load_coco(path, image_size or 96)
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path)
    raise InputError(
        f"Data {spec} is not a data set edgekit reads",
        hint="pass builtin:mnist, builtin:digits, an .npz with x_train/y_train/x_test/y_test, "
        "an image folder with one sub-folder per class, a .csv, or for a detector builtin:mnist-detect, "
        "a COCO .json or a YOLO folder (images/ + labels/)",
    )
