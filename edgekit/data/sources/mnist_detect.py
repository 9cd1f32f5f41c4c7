"""``builtin:mnist-detect``: detection scenes composed from the real MNIST digits edgekit ships.

Each 64x64 scene holds 1 to 4 digits at random scale (14 to 30 px) and position, placed so that no
two boxes overlap by more than IoU 0.1, over clutter: 2 to 5 fragments (6 to 10 px crops) of other
digits and faint noise. A box is the tight box of its digit's ink (pixels above 0.25 of full scale)
after scaling; its class is the digit. Train scenes are made from MNIST's train digits, test scenes
from its test digits, so no digit is in both; the seed fixes every scene.

Example:
    >>> ds = load_mnist_detect("builtin:mnist-detect")
    >>> ds.x_train.shape[1:], ds.task, ds.y_test.shape[2]
    ((64, 64, 1), 'detection', 5)
"""

from __future__ import annotations

import numpy as np

from edgekit.data.dataset import Dataset, from_train_test
from edgekit.data.preprocessing import Preprocessing
from edgekit.data.sources.builtin import BUILTIN_DIR

CANVAS = 64
DIGITS_PER_SCENE = (1, 4)
DIGIT_SIZE = (14, 30)
TRAIN_SCENES, TEST_SCENES = 6000, 1000
MAX_BOXES = DIGITS_PER_SCENE[1]
INK = 64  # of 255: a pixel at or above it is ink (the box's extent)
SEED = 2026


def load_mnist_detect(spec: str) -> Dataset:
    """The scenes, split 6,000 train (a tenth held out for validation) and 1,000 test; labels are boxes
    (:func:`edgekit.detection.boxes.padded_labels`: ``[class, x0, y0, x1, y1]`` in 0..1, padding class -1)."""
    with np.load(BUILTIN_DIR / "mnist.npz") as d:
        x_tr, y_tr, x_te, y_te = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    xs_tr, ys_tr = compose_scenes(x_tr, y_tr, TRAIN_SCENES, seed=SEED)
    xs_te, ys_te = compose_scenes(x_te, y_te, TEST_SCENES, seed=SEED + 1)
    prep = Preprocessing(scale=1 / 255, notes="mnist-detect pixels 0..255 scaled to 0..1")
    ds = from_train_test(spec, xs_tr, ys_tr, xs_te, ys_te, [str(i) for i in range(10)], prep)
    ds.task = "detection"
    return ds


def compose_scenes(digits: np.ndarray, classes: np.ndarray, n: int, *, seed: int,
                   canvas: int = CANVAS) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes (uint8, ``(n, canvas, canvas, 1)``) and their padded labels ``(n, MAX_BOXES, 5)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    scenes = np.zeros((n, canvas, canvas), np.float32)
    labels = np.full((n, MAX_BOXES, 5), -1.0, np.float32)
    for s in range(n):
        img = scenes[s]
        img += rng.uniform(0, 12, size=img.shape).astype(np.float32)  # faint sensor noise
        for _ in range(rng.integers(2, 6)):  # clutter: fragments of digits that carry no label
            d = digits[rng.integers(len(digits))]
            size = int(rng.integers(6, 11))
            y0, x0 = (int(v) for v in rng.integers(4, 28 - size, size=2))
            frag = d[y0 : y0 + size, x0 : x0 + size].astype(np.float32) * 0.8
            py, px = (int(v) for v in rng.integers(0, canvas - size, size=2))
            np.maximum(img[py : py + size, px : px + size], frag, out=img[py : py + size, px : px + size])
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(rng.integers(DIGITS_PER_SCENE[0], DIGITS_PER_SCENE[1] + 1)):
            k = int(rng.integers(len(digits)))
            size = int(rng.integers(DIGIT_SIZE[0], DIGIT_SIZE[1] + 1))
            digit = np.asarray(Image.fromarray(digits[k]).resize((size, size), Image.BILINEAR), np.float32)
            ys, xs = np.nonzero(digit >= INK)
            if not len(ys):
                continue
            for _try in range(20):  # a place where it overlaps no other digit by more than IoU 0.1
                py, px = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
                box = (px + int(xs.min()), py + int(ys.min()), px + int(xs.max()) + 1, py + int(ys.max()) + 1)
                if all(_iou(box, b) <= 0.1 for b in placed):
                    break
            else:
                continue
            np.maximum(img[py : py + size, px : px + size], digit, out=img[py : py + size, px : px + size])
            labels[s, len(placed)] = [classes[k], *(v / canvas for v in box)]
            placed.append(box)
    return np.clip(scenes, 0, 255).astype(np.uint8)[..., None], labels


def _iou(a, b) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
