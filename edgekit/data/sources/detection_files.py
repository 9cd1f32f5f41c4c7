"""Detection data in the formats people have: a COCO JSON file, or a YOLO folder (``images/`` + ``labels/``).

Images are decoded, converted to RGB and resized to ``image_size`` squared (boxes are kept in 0..1 of
the image, so a resize moves none); labels become edgekit's padded box labels
(:mod:`edgekit.detection.boxes`). A fixed seeded split holds out a fifth for the test split.

COCO: ``DATA`` is the JSON file; each image's ``file_name`` is looked for next to the JSON, in an
``images/`` folder beside it, and in ``../images/``. Categories become classes 0.. in id order.
YOLO: ``DATA`` is the folder; ``labels/NAME.txt`` holds ``class cx cy w h`` lines (0..1) for
``images/NAME.*``; class names come from ``classes.txt`` (one per line) or ``data.yaml`` (``names``).
An image without a label file shows no object; an *empty* label file is refused (a file that lost
its content is the likelier story: delete it for an image with no object).

Bad input (a box outside the image, an empty label file, a class id out of range, a COCO file that
names images that are not there) is one :class:`~edgekit.errors.InputError` naming the file and line.

Example:
    >>> ds = load_coco(Path("annotations/instances.json"), 96)   # doctest: +SKIP
    >>> ds.task, ds.y_train.shape[2]                              # doctest: +SKIP
    ('detection', 5)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgekit.data.dataset import TEST_FRACTION, Dataset, from_train_test, split_off
from edgekit.data.preprocessing import Preprocessing
from edgekit.data.sources.images import IMAGE_SUFFIXES, decode_image
from edgekit.detection.boxes import padded_labels
from edgekit.errors import InputError

EDGE = 0.01  # a box may overrun the image by 1% of its size (annotation rounding)


def load_coco(path: Path, image_size: int) -> Dataset:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"Data {path} is not a readable COCO JSON file ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(doc, dict) or not {"images", "annotations", "categories"} <= set(doc):
        raise InputError(f"Data {path} is not a COCO detection file: it needs 'images', 'annotations' and 'categories'")
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(cats)}
    images = {im["id"]: im for im in doc["images"]}
    missing = [im["file_name"] for im in doc["images"] if _image_file(path, im["file_name"]) is None]
    if missing:
        raise InputError(f"Data {path} names {len(missing)} image(s) that are not there, first '{missing[0]}'",
                         hint="put the images next to the JSON file or in an images/ folder beside it")
    boxes: dict = {i: [] for i in images}
    for a in doc["annotations"]:
        im = images.get(a.get("image_id"))
        if im is None:
            raise InputError(f"Data {path}: annotation {a.get('id')} names image {a.get('image_id')}, which the file does not list")
        if a.get("category_id") not in index:
            raise InputError(f"Data {path}: annotation {a.get('id')} has category_id {a.get('category_id')}, which is "
                             f"not among the categories ({', '.join(str(c['id']) for c in cats)})")
        x, y, w, h = (float(v) for v in a["bbox"])
        W, H = float(im["width"]), float(im["height"])
        box = (x / W, y / H, (x + w) / W, (y + h) / H)
        _check_box(box, f"{path}: annotation {a.get('id')} (image '{im['file_name']}', bbox {a['bbox']} in {W:g}x{H:g})")
        boxes[im["id"]].append((index[a["category_id"]], *np.clip(box, 0, 1)))
    files = [_image_file(path, images[i]["file_name"]) for i in images]
    return _dataset(str(path), files, [boxes[i] for i in images], [str(c.get("name", c["id"])) for c in cats], image_size)


def load_yolo(folder: Path, image_size: int) -> Dataset:
    names = _yolo_names(folder)
    files = sorted(f for f in (folder / "images").rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"Data {folder}/images holds no images", hint="put the images in images/ and their labels in labels/")
    per_image = []
    for f in files:
        label = folder / "labels" / f.relative_to(folder / "images").with_suffix(".txt")
        rows = []
        if label.is_file():
            text = label.read_text()
            if not text.strip():
                raise InputError(f"Data {label} is empty", hint=f"delete it if {f.name} shows no object; else write its "
                                 "'class cx cy w h' lines")
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split()
                try:
                    cls, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
                except (ValueError, IndexError):
                    raise InputError(f"Data {label}:{n} is not 'class cx cy w h': {line.strip()[:60]}") from None
                if not 0 <= cls < len(names):
                    raise InputError(f"Data {label}:{n} has class id {cls}, out of range: there are {len(names)} class "
                                     f"names (0..{len(names) - 1})", hint="fix the id, or add the class's name")
                box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                _check_box(box, f"{label}:{n} ({line.strip()[:60]})")
                rows.append((cls, *np.clip(box, 0, 1)))
        per_image.append(rows)
    return _dataset(str(folder), files, per_image, names, image_size)


def is_yolo_folder(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "labels").is_dir()


def _yolo_names(folder: Path) -> list[str]:
    if (folder / "classes.txt").is_file():
        names = [ln.strip() for ln in (folder / "classes.txt").read_text().splitlines() if ln.strip()]
    elif (folder / "data.yaml").is_file():
        import yaml

        raw = (yaml.safe_load((folder / "data.yaml").read_text()) or {}).get("names") or []
        names = [str(raw[k]) for k in sorted(raw)] if isinstance(raw, dict) else [str(n) for n in raw]
    else:
        raise InputError(f"Data {folder} has no class names", hint="add classes.txt (one name per line) or data.yaml with names:")
    if not names:
        raise InputError(f"Data {folder} lists no class names", hint="one name per line in classes.txt")
    return names


def _check_box(box, where: str) -> None:
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"Data {where}: the box has no area", hint="boxes are x, y, width, height with width and height > 0")
    if min(x0, y0) < -EDGE or max(x1, y1) > 1 + EDGE:
        raise InputError(f"Data {where}: the box lies outside the image", hint="fix the box, or the image's size")


def _image_file(json_path: Path, name: str) -> Path | None:
    for base in (json_path.parent, json_path.parent / "images", json_path.parent.parent / "images"):
        if (base / name).is_file():
            return base / name
    return None


def _dataset(spec: str, files: list[Path], per_image: list, names: list[str], image_size: int) -> Dataset:
    if len(files) < 2:
        raise InputError(f"Data {spec} has {len(files)} image(s); a detector needs at least 2 (train and test)")
    x = np.stack([decode_image(f, image_size) for f in files])
    y = padded_labels(per_image)
    x_tr, y_tr, x_te, y_te = split_off(x, y, TEST_FRACTION)
    prep = Preprocessing(scale=1 / 255, image_size=[image_size, image_size], notes="RGB pixels 0..255 scaled to 0..1")
    ds = from_train_test(spec, x_tr, y_tr, x_te, y_te, names, prep)
    ds.task = "detection"
    return ds
