"""Decoding and non-max suppression as Keras layers: what puts a detector's boxes inside its artifact.

:class:`GridDecode` turns an anchor-free head (per grid cell: distances to the box's left, top, right
and bottom in strides, then one logit per class) into boxes in 0..1 and class scores.
:class:`NonMaxSuppression` keeps the best ``max_detections`` per image: each cell's best class, then
one NMS over all classes at once, with each class's boxes shifted by ``2 x class`` (boxes live in
0..1, so boxes of two classes never overlap: per-class NMS in one operator every format has). It is
``NonMaxSuppressionV4`` with padding, which converts to TFLite's builtin ``NON_MAX_SUPPRESSION_V4``,
ONNX's ``NonMaxSuppression`` and TF.js's ``NonMaxSuppressionV4`` kernel; outputs are fixed-size:
``boxes (n, K, 4)``, ``scores (n, K)``, ``classes (n, K)``, ``count (n,)``, zeros past ``count``.

An artifact holds one image per call (batch 1: what a phone runs, and what keeps NMS one operator);
a Keras model with these layers takes any batch (images one at a time, ``tf.map_fn``).

Example:
    >>> inference = with_postprocess(trained, max_detections=20, iou=0.5, score=0.25)   # doctest: +SKIP
    >>> sorted(inference.output_names)                                                 # doctest: +SKIP
    ['boxes', 'classes', 'count', 'scores']
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from edgekit.detection.boxes import DETECTION_OUTPUTS

DEFAULTS = {"max_detections": 20, "iou": 0.5, "score": 0.1}


@keras.saving.register_keras_serializable(package="edgekit")
class GridDecode(keras.layers.Layer):
    """Raw head ``(n, gh, gw, 4 + classes)`` to boxes ``(n, gh*gw, 4)`` in 0..1 and sigmoid scores ``(n, gh*gw, classes)``.

    Box of cell (i, j), centre ``c = ((j + 0.5) s, (i + 0.5) s)``: ``c - relu(l, t) s`` to ``c + relu(r, b) s``,
    divided by the image size and clipped to 0..1 (element-wise ops: they stay exact in int8 graphs' float part)."""

    def __init__(self, stride: int, image_size: tuple[int, int], **kwargs):
        super().__init__(**kwargs)
        self.stride, self.image_size = int(stride), tuple(int(v) for v in image_size)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "image_size": list(self.image_size)}

    def call(self, raw):
        h, w = self.image_size
        gh, gw = h // self.stride, w // self.stride
        cy, cx = np.meshgrid((np.arange(gh) + 0.5) * self.stride, (np.arange(gw) + 0.5) * self.stride, indexing="ij")
        centres = np.stack([cx / w, cy / h, cx / w, cy / h], -1).reshape(1, gh * gw, 4).astype(np.float32)
        scale = np.array([-self.stride / w, -self.stride / h, self.stride / w, self.stride / h], np.float32)
        raw = tf.reshape(raw, [-1, gh * gw, raw.shape[-1]])
        boxes = tf.clip_by_value(centres + tf.nn.relu(raw[..., :4]) * scale, 0.0, 1.0)
        return boxes, tf.sigmoid(raw[..., 4:])

    def compute_output_shape(self, input_shape):
        n, gh, gw, c = input_shape
        return (n, gh * gw, 4), (n, gh * gw, c - 4)


@keras.saving.register_keras_serializable(package="edgekit")
class AnchorDecode(keras.layers.Layer):
    """Anchor-based box deltas ``(n, A, 4)`` (``center_xywh``: ``dx, dy, dw, dh`` against each anchor, as
    RetinaNet and SSD encode them) to boxes ``(n, A, 4)`` ``[x0, y0, x1, y1]`` in 0..1: the decoding a
    published detector does outside its graph, put inside it. ``anchors`` ``(A, 4)`` are ``[x0, y0, x1, y1]``
    in 0..1; ``variance`` scales the deltas first (1 for RetinaNet as keras-hub trains it, (0.1, 0.1, 0.2, 0.2) for SSD).

    >>> d = AnchorDecode([[0.0, 0.0, 0.5, 0.5]])
    >>> np.asarray(d(np.zeros((1, 1, 4), np.float32))).round(3).tolist()
    [[[0.0, 0.0, 0.5, 0.5]]]
    """

    def __init__(self, anchors, variance=(1.0, 1.0, 1.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.anchors = np.asarray(anchors, np.float32).reshape(-1, 4)
        self.variance = tuple(float(v) for v in variance)

    def get_config(self):
        return {**super().get_config(), "anchors": self.anchors.tolist(), "variance": list(self.variance)}

    def call(self, deltas):
        a = self.anchors
        size = (a[:, 2:] - a[:, :2])[None]
        centre = ((a[:, 2:] + a[:, :2]) / 2)[None]
        v = np.asarray(self.variance, np.float32)
        c = deltas[..., :2] * v[:2] * size + centre
        wh = tf.exp(deltas[..., 2:] * v[2:]) * size
        return tf.clip_by_value(tf.concat([c - wh / 2, c + wh / 2], -1), 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="edgekit")
class NonMaxSuppression(keras.layers.Layer):
    """Boxes ``(n, A, 4)`` and class scores ``(n, A, C)`` to the best ``max_detections`` detections per image."""

    def __init__(self, max_detections: int = 20, iou: float = 0.5, score: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.max_detections, self.iou, self.score = int(max_detections), float(iou), float(score)

    def get_config(self):
        return {**super().get_config(), "max_detections": self.max_detections, "iou": self.iou, "score": self.score}

    def call(self, boxes, scores):
        if boxes.shape[0] == 1:  # an artifact's graph: one image, one NMS operator
            return tuple(t[None] for t in self._one(boxes[0], scores[0]))
        k = self.max_detections
        sig = (tf.TensorSpec([k, 4], tf.float32), tf.TensorSpec([k], tf.float32), tf.TensorSpec([k], tf.float32),
               tf.TensorSpec([], tf.float32))
        return tf.map_fn(lambda t: self._one(*t), (boxes, scores), fn_output_signature=sig)

    def _one(self, boxes, scores):
        k = self.max_detections
        best = tf.reduce_max(scores, -1)
        classes = tf.cast(tf.argmax(scores, -1), tf.float32)
        shifted = boxes + classes[:, None] * 2.0  # classes apart: per-class NMS in one operator
        selected, valid = tf.raw_ops.NonMaxSuppressionV4(
            boxes=shifted, scores=best, max_output_size=k, iou_threshold=self.iou, score_threshold=self.score,
            pad_to_max_output_size=True)
        keep = tf.cast(tf.range(k) < valid, tf.float32)
        return (tf.gather(boxes, selected) * keep[:, None], tf.gather(best, selected) * keep,
                tf.gather(classes, selected) * keep, tf.cast(valid, tf.float32))

    def compute_output_shape(self, boxes_shape, scores_shape=None):
        n, k = boxes_shape[0], self.max_detections
        return (n, k, 4), (n, k), (n, k), (n,)


def with_postprocess(model, *, stride: int | None = None, max_detections: int = DEFAULTS["max_detections"],
                     iou: float = DEFAULTS["iou"], score: float = DEFAULTS["score"]):
    """A detector with decoding and NMS on top, outputs named ``boxes``, ``scores``, ``classes``, ``count``.

    ``model`` is a raw grid head (one output ``(n, gh, gw, 4 + classes)``; ``stride``: its cell size, by
    default the image size over the grid's), a model that already decodes (two outputs: ``boxes (n, A, 4)``
    in 0..1 and ``scores (n, A, C)``), or a detector with NMS already, whose NMS is replaced."""
    base = without_nms(model)
    outs = base.outputs
    if len(outs) == 1:  # a raw grid head: decoded here
        if len(outs[0].shape) != 4:
            raise ValueError(f"a detector's head should be a grid (n, rows, cols, 4 + classes), not {outs[0].shape}")
        h = base.inputs[0].shape[1]
        boxes, scores = GridDecode(stride or h // outs[0].shape[1], base.inputs[0].shape[1:3], name="decode")(outs[0])
    elif len(outs) == 2:  # (names freed: an Identity naming an output is looked through)
        boxes, scores = (_unnamed(t) for t in outs)
    else:
        raise ValueError(f"a detector should have a grid head, or boxes and scores; this one has {len(outs)} outputs")
    found = NonMaxSuppression(max_detections, iou, score, name="nms")(boxes, scores)
    named = [keras.layers.Identity(name=n)(t) for n, t in zip(DETECTION_OUTPUTS, found, strict=True)]
    return keras.Model(base.inputs, named, name=base.name)


def _unnamed(tensor):
    layer = tensor._keras_history[0]
    return layer.input if isinstance(layer, keras.layers.Identity) else tensor


def without_nms(model):
    """A detector with NMS as the model before it: outputs ``boxes (n, A, 4)`` and ``scores (n, A, C)``
    (``--nms off``: the app keeps each box's best class and runs NMS itself); any other model as it is."""
    nms = next((layer for layer in model.layers if isinstance(layer, NonMaxSuppression)), None)
    if nms is None:
        return model
    boxes, scores = nms.input
    named = [keras.layers.Identity(name=n)(t) for n, t in (("boxes", boxes), ("scores", scores))]
    return keras.Model(model.inputs, named, name=model.name)


def settings_of(model) -> dict | None:
    """The NMS settings inside a Keras detector, or None when it has no NMS layer."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, NonMaxSuppression):
            return {"max_detections": layer.max_detections, "iou": layer.iou, "score": layer.score}
    return None
