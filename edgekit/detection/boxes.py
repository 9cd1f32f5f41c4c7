"""Boxes as edgekit carries them: ``[x0, y0, x1, y1]`` in 0..1 of the image's width and height.

Labels of a detection data set are one array ``(n, max_boxes, 5)``: rows ``[class, x0, y0, x1, y1]``,
padded with class ``-1`` (a fixed shape: splits, fingerprints and batches treat it as any label array).
A detector's outputs are ``boxes (n, K, 4)``, ``scores (n, K)``, ``classes (n, K)`` and ``count (n,)``:
the first ``count`` of the K slots are detections, best first; the rest are zeros.

Example:
    >>> import numpy as np
    >>> lab = padded_labels([[(3, 0.1, 0.1, 0.5, 0.5)], []], max_boxes=2)
    >>> lab.shape, unpad(lab[0]).tolist()
    ((2, 2, 5), [[3.0, 0.10000000149011612, 0.10000000149011612, 0.5, 0.5]])
    >>> float(iou(np.array([[0, 0, 1, 1]]), np.array([[0, 0, 0.5, 1]]))[0, 0])
    0.5
"""

from __future__ import annotations

import numpy as np

DETECTION_OUTPUTS = ("boxes", "scores", "classes", "count")


def is_detections(outputs) -> bool:
    """True when a model's outputs (a dict by name, or a list of names) are detections."""
    return set(DETECTION_OUTPUTS) <= set(outputs)


def padded_labels(per_image: list, *, max_boxes: int | None = None) -> np.ndarray:
    """Per-image lists of ``(class, x0, y0, x1, y1)`` as one ``(n, max_boxes, 5)`` array, padded with class -1."""
    width = max_boxes if max_boxes is not None else max((len(b) for b in per_image), default=0)
    out = np.full((len(per_image), max(width, 1), 5), -1.0, np.float32)
    for i, boxes in enumerate(per_image):
        if len(boxes):
            out[i, : len(boxes)] = np.asarray(boxes, np.float32)
    return out


def unpad(labels: np.ndarray) -> np.ndarray:
    """One image's label rows without the padding."""
    labels = np.asarray(labels)
    return labels[labels[:, 0] >= 0]


def detections_of(outputs: dict, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image ``i``'s detections from a detector's outputs: (boxes (k, 4), scores (k,), classes (k,))."""
    k = int(round(float(np.asarray(outputs["count"]).reshape(-1)[i])))
    boxes = np.asarray(outputs["boxes"])[i, :k]
    return boxes, np.asarray(outputs["scores"])[i, :k], np.rint(np.asarray(outputs["classes"])[i, :k]).astype(int)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (m, 4) with every box in ``b`` (n, 4): an (m, n) matrix."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
