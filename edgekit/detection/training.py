"""Training an anchor-free detector: which grid cells answer for which box, and the loss.

A cell is responsible for a box when its centre lies inside the box and within ``CENTRE_RADIUS``
strides of the box's centre (the cell holding the centre always is); where boxes compete, the
smaller wins. Its targets are the distances from its centre to the box's four sides, in strides,
and the box's class; every other cell's target is "no object". Every batch is moved at random with its
boxes (:func:`translated`, up to an eighth of the image each way): the scenes' digits land at every
offset from the grid's cells. The loss is a focal loss on the
class logits of every cell plus, on responsible cells, 1 - IoU of the predicted and true sides
(and an L1 term that pulls negative predicted distances up: decoding clips them at 0).

Example:
    >>> import numpy as np
    >>> labels = np.array([[[3, 0.25, 0.25, 0.75, 0.75]]], np.float32)
    >>> y = encode_targets(labels, grid=(8, 8), num_classes=10)
    >>> y.shape, int(y[..., -1].sum()) > 0
    ((1, 8, 8, 15), True)
"""

from __future__ import annotations

import numpy as np

from edgekit.detection.boxes import unpad

CENTRE_RADIUS = 1.5  # strides: a box is answered by the cells around its centre
SHIFT = 1 / 8  # training moves each image by up to this share of its size, with its boxes
KEEP_VISIBLE = 0.5  # a box pushed half out of the image is no longer labelled


def translated(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, shift: float = SHIFT):
    """Each image moved by a random whole number of pixels (up to ``shift`` of its size each way, the
    uncovered part zero), its boxes with it: clipped to the image, dropped when less than
    ``KEEP_VISIBLE`` of a box is left. The detector's training augmentation (every epoch, every batch).

    >>> x = np.zeros((1, 8, 8, 1), np.float32); x[0, 2, 2] = 1
    >>> y = np.array([[[1, 0.25, 0.25, 0.375, 0.375]]], np.float32)
    >>> xs, ys = translated(x, y, np.random.default_rng(0), shift=0.25)
    >>> float(xs.sum()), bool(ys[0, 0, 0] == 1)
    (1.0, True)
    """
    n, h, w = x.shape[:3]
    out, boxes = np.zeros_like(x), labels.copy()
    for i in range(n):
        dy, dx = (int(v) for v in rng.integers(-int(shift * h), int(shift * h) + 1, size=2))
        src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
        src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
        out[i, dst_y, dst_x] = x[i, src_y, src_x]
        b = boxes[i]
        real = b[:, 0] >= 0
        moved = b[:, 1:] + np.array([dx / w, dy / h, dx / w, dy / h], np.float32)
        clipped = np.clip(moved, 0, 1)
        area = lambda c: np.clip(c[:, 2] - c[:, 0], 0, None) * np.clip(c[:, 3] - c[:, 1], 0, None)  # noqa: E731
        keep = real & (area(clipped) >= KEEP_VISIBLE * np.maximum(area(moved), 1e-9))
        b[:, 1:] = np.where(keep[:, None], clipped, -1)
        b[:, 0] = np.where(keep, b[:, 0], -1)
    return out, boxes


def encode_targets(labels: np.ndarray, *, grid: tuple[int, int], num_classes: int) -> np.ndarray:
    """``(n, gh, gw, 4 + num_classes + 1)``: side distances in strides, one-hot class, responsible-cell flag."""
    gh, gw = grid
    out = np.zeros((len(labels), gh, gw, 4 + num_classes + 1), np.float32)
    cy, cx = np.meshgrid((np.arange(gh) + 0.5) / gh, (np.arange(gw) + 0.5) / gw, indexing="ij")
    area = np.full((len(labels), gh, gw), np.inf, np.float32)
    for i, rows in enumerate(labels):
        for cls, x0, y0, x1, y1 in unpad(rows):
            bx, by = (x0 + x1) / 2, (y0 + y1) / 2
            inside = (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
            near = (np.abs(cx - bx) <= CENTRE_RADIUS / gw) & (np.abs(cy - by) <= CENTRE_RADIUS / gh)
            cells = inside & near
            cells[min(int(by * gh), gh - 1), min(int(bx * gw), gw - 1)] = True
            a = (x1 - x0) * (y1 - y0)
            cells &= a < area[i]  # the smaller box wins a contested cell
            area[i][cells] = a
            t = out[i][cells]
            t[:, :4] = np.stack([(cx - x0) * gw, (cy - y0) * gh, (x1 - cx) * gw, (y1 - cy) * gh], -1)[cells]
            t[:, 4:-1] = 0
            t[:, 4 + int(cls)] = 1
            t[:, -1] = 1
            out[i][cells] = t
    return out


def detection_loss(num_classes: int):
    """The Keras loss of a grid head ``(n, gh, gw, 4 + num_classes)`` against :func:`encode_targets`."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="edgekit")
    class DetectionLoss(keras.losses.Loss):
        def __init__(self, gamma: float = 2.0, alpha: float = 0.25, **kwargs):
            super().__init__(**kwargs)
            self.gamma, self.alpha = gamma, alpha

        def call(self, y_true, y_pred):
            pos = y_true[..., -1]
            npos = ops.maximum(ops.sum(pos, axis=(1, 2)), 1.0)
            target, logits = y_true[..., 4:-1], y_pred[..., 4:]
            p = ops.sigmoid(logits)
            ce = ops.maximum(logits, 0) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
            p_t = p * target + (1 - p) * (1 - target)
            a_t = self.alpha * target + (1 - self.alpha) * (1 - target)
            cls_loss = ops.sum(a_t * (1 - p_t) ** self.gamma * ce, axis=(1, 2, 3)) / npos
            d_true, d_raw = y_true[..., :4], y_pred[..., :4]
            d_pred = ops.relu(d_raw)
            area_t = (d_true[..., 0] + d_true[..., 2]) * (d_true[..., 1] + d_true[..., 3])
            area_p = (d_pred[..., 0] + d_pred[..., 2]) * (d_pred[..., 1] + d_pred[..., 3])
            m = ops.minimum(d_true, d_pred)
            inter = (m[..., 0] + m[..., 2]) * (m[..., 1] + m[..., 3])
            iou = inter / ops.maximum(area_t + area_p - inter, 1e-6)
            box_loss = ops.sum(pos * (1 - iou), axis=(1, 2)) / npos
            l1 = ops.sum(pos[..., None] * ops.abs(d_raw - d_true), axis=(1, 2, 3)) / npos
            return cls_loss + 2.0 * box_loss + 0.1 * l1

    return DetectionLoss(name="detection_loss")


def _batches_base():
    import keras

    return keras.utils.PyDataset


class DetectionBatches(_batches_base()):
    """The train split a batch at a time: shuffled every epoch, each batch moved with its boxes
    (:func:`translated`) and its targets encoded for the model's grid."""

    def __init__(self, x: np.ndarray, labels: np.ndarray, *, grid: tuple[int, int], num_classes: int,
                 batch_size: int, seed: int = 0):
        super().__init__()
        self.x, self.labels, self.grid, self.num_classes, self.batch_size = x, labels, grid, num_classes, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int):
        idx = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        x, labels = translated(self.x[idx], self.labels[idx], self.rng)
        return x, encode_targets(labels, grid=self.grid, num_classes=self.num_classes)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))
