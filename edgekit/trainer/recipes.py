"""Built-in edge architectures. Each recipe is ``build(input_shape, num_classes, **opts)``.

The registry :data:`RECIPES` maps a name to ``(builder, one-line summary)``; the CLI,
the docs and the tests all read it.

Example:
    >>> model = build_recipe("cnn", (8, 8, 1), 10)   # doctest: +SKIP
    >>> model.count_params()                          # doctest: +SKIP
    75242
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgekit.errors import UsageError, suggest


def _keras():
    import keras

    return keras


def mlp(input_shape, num_classes, *, width: float = 1.0, layers: int = 2, dropout: float = 0.0):
    """Dense layers (128, 64, then 32 units, x ``width``) on the flattened input."""
    k = _keras()
    L = k.layers
    inp = k.Input(input_shape)
    x = L.Flatten()(inp)
    for units in (128, 64, 32)[:layers]:
        x = L.Dense(max(4, int(units * width)), activation="relu")(x)
    x = _dropout(x, dropout)
    out = L.Dense(num_classes, activation="softmax")(x)
    return k.Model(inp, out, name="mlp")


def cnn(input_shape, num_classes, *, width: float = 1.0, convs_per_block: int = 2, kernel_size: int = 3,
        dropout: float = 0.5):
    """A small CNN: conv/conv/max-pool blocks (32, 64, then 128 filters; two at least) until the map is 7x7
    or smaller, then flatten, dropout and a softmax layer (Keras's "Simple MNIST convnet" layout, one conv
    deeper per block). Digits 8x8: 8 -> 4 -> 4; MNIST 28x28: 28 -> 14 -> 7. ``convs_per_block``,
    ``kernel_size`` and ``dropout`` are what ``edgekit tune`` searches."""
    k = _keras()
    L = k.layers
    inp = k.Input(input_shape)
    x = _as_image(inp, input_shape)
    filters = 32
    for block in range(4):
        for _ in range(convs_per_block):
            x = L.Conv2D(max(4, int(filters * width)), kernel_size, padding="same", activation="relu")(x)
        if min(x.shape[1], x.shape[2]) >= 4 and (block == 0 or x.shape[1] * x.shape[2] > 49):
            x = L.MaxPooling2D(2)(x)
        if block >= 1 and x.shape[1] * x.shape[2] <= 49:  # two blocks at least, then until the map is 7x7 or smaller
            break
        filters = min(filters * 2, 128)
    x = L.Flatten()(x)
    x = _dropout(x, dropout)
    out = L.Dense(num_classes, activation="softmax")(x)
    return k.Model(inp, out, name="cnn")


def ds_cnn(input_shape, num_classes, *, width: float = 1.0, blocks: int = 4, kernel_size: int = 3,
           dropout: float = 0.0):
    """Depthwise-separable CNN, the keyword-spotting architecture (Zhang et al. 2017)."""
    k = _keras()
    L = k.layers
    f = max(4, int(64 * width))
    inp = k.Input(input_shape)
    x = _as_image(inp, input_shape)
    # The first convolution strides 2 on inputs of 16 or more (the KWS DS-CNN strides its spectrogram too):
    # the four separable blocks then run on a quarter of the positions.
    stride = 2 if min(x.shape[1], x.shape[2]) >= 16 else 1
    x = L.Conv2D(f, 3, strides=stride, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    for _ in range(blocks):
        x = L.DepthwiseConv2D(kernel_size, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.Conv2D(f, 1, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    x = _dropout(x, dropout)
    out = L.Dense(num_classes, activation="softmax")(x)
    return k.Model(inp, out, name="ds_cnn")


def mobilenet_v2(input_shape, num_classes, *, width: float = 1.0, expansion: int = 6, kernel_size: int = 3,
                 dropout: float = 0.0):
    """MobileNetV2-style inverted residuals with a width multiplier (``--width``)."""
    k = _keras()
    L = k.layers

    def ch(c):  # round to a multiple of 8, as MobileNetV2 does
        return max(8, int(c * width + 4) // 8 * 8)

    def block(x, out_c, stride, expand):
        in_c = x.shape[-1]
        y = L.Conv2D(in_c * expand, 1, use_bias=False)(x)
        y = L.BatchNormalization()(y)
        y = L.ReLU(6.0)(y)
        y = L.DepthwiseConv2D(kernel_size, strides=stride, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        y = L.ReLU(6.0)(y)
        y = L.Conv2D(out_c, 1, use_bias=False)(y)
        y = L.BatchNormalization()(y)
        return L.Add()([x, y]) if stride == 1 and in_c == out_c else y

    inp = k.Input(input_shape)
    x = _as_image(inp, input_shape)
    small = min(x.shape[1], x.shape[2]) < 32
    x = L.Conv2D(ch(32), 3, strides=1 if small else 2, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    for out_c, stride, expand, repeats in [(16, 1, 1, 1), (24, 2, expansion, 2), (32, 2, expansion, 2),
                                           (64, 2, expansion, 2)]:
        for i in range(repeats):
            s = stride if (i == 0 and min(x.shape[1], x.shape[2]) > 7) else 1  # maps stop at 7x7 (MNIST) or more
            x = block(x, ch(out_c), s, expand)
    x = L.Conv2D(ch(320), 1, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = _dropout(x, dropout)
    out = L.Dense(num_classes, activation="softmax")(x)
    return k.Model(inp, out, name="mobilenet_v2")


def resnet8(input_shape, num_classes, *, width: float = 1.0, dropout: float = 0.0):
    """ResNet-8, the MLPerf Tiny image-classification reference architecture."""
    k = _keras()
    L = k.layers
    reg = k.regularizers.l2(1e-4)

    def stack(x, filters, stride):
        y = L.Conv2D(filters, 3, strides=stride, padding="same", kernel_regularizer=reg)(x)
        y = L.BatchNormalization()(y)
        y = L.ReLU()(y)
        y = L.Conv2D(filters, 3, padding="same", kernel_regularizer=reg)(y)
        y = L.BatchNormalization()(y)
        if stride != 1 or x.shape[-1] != filters:
            x = L.Conv2D(filters, 1, strides=stride, kernel_regularizer=reg)(x)
        return L.ReLU()(L.Add()([x, y]))

    inp = k.Input(input_shape)
    x = _as_image(inp, input_shape)
    x = L.Conv2D(max(4, int(16 * width)), 3, padding="same", kernel_regularizer=reg)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = stack(x, max(4, int(16 * width)), 1)
    x = stack(x, max(4, int(32 * width)), 2)
    x = stack(x, max(4, int(64 * width)), 2)
    x = L.GlobalAveragePooling2D()(x)
    x = _dropout(x, dropout)
    out = L.Dense(num_classes, activation="softmax")(x)
    return k.Model(inp, out, name="resnet8")


def detector(input_shape, num_classes, *, width: float = 1.0, dropout: float = 0.0):
    """A small anchor-free single-stage detector (FCOS/YOLOv8-style, one scale, stride 8): a conv backbone
    down to stride 8, two 3x3 convs, then per grid cell 4 side distances and one logit per class.
    Trained with :func:`edgekit.detection.training.detection_loss`; decoding and NMS are put on top
    for inference (:func:`edgekit.detection.postprocess.with_postprocess`). 64x64 input: 58 M MACs, 565 k parameters."""
    k = _keras()
    L = k.layers

    def conv(x, filters, stride=1):
        x = L.Conv2D(max(8, int(filters * width)), 3, strides=stride, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.9)(x)  # statistics that keep up with a short training run
        return L.ReLU()(x)

    inp = k.Input(input_shape, name="image")
    x = _as_image(inp, input_shape)
    for filters, stride in ((24, 2), (48, 1), (48, 2), (96, 1), (96, 2), (128, 1), (128, 1)):
        x = conv(x, filters, stride)
    x = _dropout(x, dropout)
    x = L.Conv2D(max(8, int(128 * width)), 3, padding="same", activation="relu")(x)
    prior = -float(np.log((1 - 0.01) / 0.01))  # class logits start at p = 0.01 (RetinaNet's prior)
    out = L.Conv2D(4 + num_classes, 1, bias_initializer=k.initializers.Constant([1.0] * 4 + [prior] * num_classes),
                   name="head")(x)
    return k.Model(inp, out, name="detector")


def _dropout(x, rate: float):
    return _keras().layers.Dropout(rate)(x) if rate > 0 else x


def _as_image(inp, input_shape):
    """Conv recipes take images; a flat feature vector becomes a (n, 1, 1) image."""
    if len(input_shape) == 3:
        return inp
    k = _keras()
    if len(input_shape) == 2:
        return k.layers.Reshape((*input_shape, 1))(inp)
    return k.layers.Reshape((int(input_shape[0]), 1, 1))(inp)


RECIPES: dict[str, tuple[Callable, str]] = {
    "mlp": (mlp, "two dense layers; any input"),
    "cnn": (cnn, "small CNN, conv/conv/pool blocks, flatten, dropout (the demo model)"),
    "ds-cnn": (ds_cnn, "depthwise-separable CNN, as for keyword spotting"),
    "mobilenet-v2": (mobilenet_v2, "MobileNetV2-style inverted residuals; --width scales it"),
    "resnet8": (resnet8, "ResNet-8, the MLPerf Tiny image-classification net"),
    "detector": (detector, "anchor-free single-stage object detector (boxes, NMS in the artifact)"),
}

# the task each recipe is for (edgekit.trainer.tasks); classify where not named
RECIPE_TASKS = {"detector": "detection"}
# epochs where a recipe needs other than train's 30: the detector's test mAP@0.5 on builtin:mnist-detect was
# 0.894 after 30 epochs, 0.909 after 40 (still rising: the boxes move every batch, so it overfits late)
RECIPE_EPOCHS = {"detector": 50}


def build_recipe(name: str, input_shape, num_classes: int, *, width: float = 1.0, **options):
    """Build a recipe by name; an unknown name gets the closest valid one. ``options`` are the
    recipe's own keyword arguments (``dropout``, ``kernel_size``...), as ``edgekit tune`` sets them."""
    if name not in RECIPES:  # checked before anything imports Keras
        raise UsageError(
            f"Unknown recipe '{name}'.{suggest(name, RECIPES)} "
            f"Recipes: {', '.join(RECIPES)}, or a .py file defining build_model(input_shape, num_classes)."
        )
    if width <= 0:
        raise UsageError(f"--width must be > 0, got {width}")
    return RECIPES[name][0](tuple(input_shape), num_classes, width=width, **options)
