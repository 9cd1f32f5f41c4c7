"""The architectures the coverage sweep exports: keras.applications, and the layer families users build with.

Every builder returns an uncompiled Keras 3 model. Applications are built with ``weights=None`` (no
download) and emit logits (``classifier_activation=None``): with random weights a softmax is nearly
flat and top-1 agreement would be noise, so their parity is judged on cosine and max abs diff.
Layer families are small and trained briefly on a learnable task (:func:`task_data`), so that int8
is judged where it means something.

Example:
    >>> model = FAMILIES["attention"]()                      # doctest: +SKIP
    >>> x, y = task_data(model, 512)                         # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

# name -> (constructor name in keras.applications, input size)
APPLICATIONS: dict[str, tuple[str, int]] = {
    "MobileNet": ("MobileNet", 96),
    "MobileNetV2": ("MobileNetV2", 96),
    "MobileNetV3Small": ("MobileNetV3Small", 96),
    "MobileNetV3Large": ("MobileNetV3Large", 96),
    "EfficientNetB0": ("EfficientNetB0", 96),
    "EfficientNetV2B0": ("EfficientNetV2B0", 96),
    "DenseNet121": ("DenseNet121", 64),
    "NASNetMobile": ("NASNetMobile", 96),
    "ConvNeXtTiny": ("ConvNeXtTiny", 64),
    "ResNet50": ("ResNet50", 64),
}


def application(name: str, *, nested: bool = False):
    """keras.applications ``name`` with random weights and 10 logits; ``nested``: inside a user's functional
    model that takes 0..255 images at 3/4 of the size, with ``Rescaling``, ``Resizing`` and ``Normalization`` in front."""
    import keras

    ctor, size = APPLICATIONS[name]
    keras.utils.set_random_seed(0)
    app = getattr(keras.applications, ctor)(weights=None, input_shape=(size, size, 3), classes=10,
                                            classifier_activation=None)
    if not nested:
        return app
    small = size * 3 // 4
    inp = keras.Input((small, small, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Resizing(size, size)(x)
    x = keras.layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.052, 0.050, 0.051])(x)
    return keras.Model(inp, app(x), name=f"nested_{name}")


def attention_exact_gelu():
    """A tiny ViT: patch embedding, LayerNormalization, MultiHeadAttention, exact GELU MLP."""
    import keras

    layers = keras.layers
    inp = keras.Input((16, 16, 1))
    x = layers.Reshape((16, 32))(layers.Conv2D(32, 4, strides=4)(inp))
    for _ in range(2):
        h = layers.LayerNormalization()(x)
        x = x + layers.MultiHeadAttention(4, 8)(h, h)
        h = layers.LayerNormalization()(x)
        x = x + layers.Dense(32)(layers.Dense(64, activation="gelu")(h))
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inp, layers.Dense(4, activation="softmax")(x))


@__import__("functools").lru_cache(maxsize=1)
def _approx_gelu_layer():
    import keras

    @keras.saving.register_keras_serializable(package="edgekit_coverage")
    class ApproxGelu(keras.layers.Layer):
        """A custom layer: tanh-approximate GELU."""

        def call(self, x):
            return keras.activations.gelu(x, approximate=True)

    return ApproxGelu


def activations_mix():
    """Approximate GELU (a custom layer), swish and hard_swish in an MLP-Mixer-like block."""
    import keras

    layers = keras.layers
    inp = keras.Input((16, 16, 1))
    x = layers.Reshape((16, 16))(inp)
    x = layers.Dense(32, activation="swish")(x)
    x = x + layers.Dense(32)(_approx_gelu_layer()()(layers.Dense(64)(layers.LayerNormalization()(x))))
    x = layers.Dense(32, activation="hard_swish")(x)
    x = layers.GlobalAveragePooling1D()(x)
    return keras.Model(inp, layers.Dense(4, activation="softmax")(x))


def decoder():
    """A segmentation-style encoder/decoder: SeparableConv2D, Conv2DTranspose, UpSampling2D, then a class head."""
    import keras

    layers = keras.layers
    inp = keras.Input((16, 16, 1))
    x = layers.SeparableConv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.SeparableConv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.UpSampling2D()(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(4, activation="softmax")(x))


def convnext_block():
    """ConvNeXt-style blocks: a 7x7 grouped (depthwise) Conv2D, LayerNormalization, an exact-GELU MLP, and a
    grouped 3x3 convolution with 4 groups."""
    import keras

    layers = keras.layers
    inp = keras.Input((16, 16, 1))
    x = layers.Conv2D(16, 4, strides=4)(inp)
    for _ in range(2):
        h = layers.Conv2D(16, 7, padding="same", groups=16)(x)
        h = layers.LayerNormalization(epsilon=1e-6)(h)
        h = layers.Dense(32, activation="gelu")(h)
        x = x + layers.Dense(16)(h)
    x = layers.Conv2D(16, 3, padding="same", groups=4, activation="relu")(x)
    return keras.Model(inp, layers.Dense(4, activation="softmax")(layers.GlobalAveragePooling2D()(x)))


def text(body: str):
    """int32 token ids (vocabulary 1000, 20 steps) into an ``Embedding``, then ``body``: conv1d | lstm | gru | attention."""
    import keras

    def build():
        layers = keras.layers
        inp = keras.Input((20,), dtype="int32", name="tokens")
        x = layers.Embedding(1000, 32)(inp)
        if body == "conv1d":
            x = layers.GlobalMaxPooling1D()(layers.Conv1D(32, 3, activation="relu")(x))
        elif body == "lstm":
            x = layers.LSTM(48)(x)
        elif body == "gru":
            x = layers.GRU(32)(x)
        else:
            x = layers.GlobalAveragePooling1D()(x + layers.MultiHeadAttention(2, 16)(x, x))
        return keras.Model(inp, layers.Dense(4, activation="softmax")(x))

    return build


@__import__("functools").lru_cache(maxsize=1)
def _subclassed_class():
    import keras

    @keras.saving.register_keras_serializable(package="edgekit_coverage")
    class TinyNet(keras.Model):
        """A subclassed model: two conv blocks and a head, written as a class."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.c1 = keras.layers.Conv2D(8, 3, activation="relu")
            self.c2 = keras.layers.DepthwiseConv2D(3, activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.head = keras.layers.Dense(4, activation="softmax")

        def call(self, x):
            return self.head(self.pool(self.c2(self.c1(x))))

    return TinyNet


def subclassed():
    import keras

    model = _subclassed_class()()
    model(keras.ops.zeros((1, 16, 16, 1)))
    return model


FAMILIES = {
    "attention-gelu": attention_exact_gelu,
    "activations-custom-layer": activations_mix,
    "decoder": decoder,
    "convnext-grouped-conv": convnext_block,
    "embedding-conv1d": text("conv1d"),
    "embedding-lstm": text("lstm"),
    "embedding-gru": text("gru"),
    "embedding-attention": text("attention"),
    "subclassed": subclassed,
}


def task_data(model, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable 4-class task shaped for ``model``'s input, that needs no position (pooling models learn it):
    images of horizontal stripes, vertical stripes, a checkerboard or noise, at a random phase; or token
    sequences whose class is the vocabulary quarter most of their ids fall in."""
    rng = np.random.default_rng(seed)
    inputs = getattr(model, "inputs", None)
    shape = tuple(inputs[0].shape[1:]) if inputs else (16, 16, 1)
    y = rng.integers(0, 4, n)
    if inputs and str(inputs[0].dtype).startswith("int"):
        quarter = np.where(rng.random((n, shape[0])) < 0.6, y[:, None], rng.integers(0, 4, (n, shape[0])))
        x = (quarter * 250 + rng.integers(0, 250, (n, shape[0]))).astype(np.int32)
        return x, y
    h, w = shape[0], shape[1]
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    x = rng.uniform(0, 0.4, (n, h, w)).astype(np.float32)
    for i, c in enumerate(y):
        phase = int(rng.integers(0, 4))
        pattern = {0: (rows + phase) % 4 < 2, 1: (cols + phase) % 4 < 2,
                   2: ((rows + phase) // 2 + cols // 2) % 2 == 0, 3: np.zeros((h, w), bool)}[int(c)]
        x[i] += 0.6 * np.broadcast_to(pattern, (h, w))
    return x.reshape(n, *shape), y


def trained(model, epochs: int = 6, n: int = 1024, seed: int = 0):
    """``model`` trained briefly on :func:`task_data`; returns ``(model, (x_test, y_test), test accuracy)``."""
    import keras

    keras.utils.set_random_seed(seed)
    x, y = task_data(model, n + 256, seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:n], y[:n], epochs=epochs, batch_size=32, verbose=0)
    acc = float(model.evaluate(x[n:], y[n:], verbose=0)[1])
    return model, (x[n:], y[n:]), acc
