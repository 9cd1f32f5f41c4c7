"""``edgekit train --augment``: random translation, rotation, zoom and contrast, in training only.

The augmentation is a stack of Keras preprocessing layers put in front of the model for ``fit``
only; the run saves the model itself, so no exported artifact holds any of it.

Example:
    >>> aug = augmentation((28, 28, 1))                         # doctest: +SKIP
    >>> [type(layer).__name__ for layer in aug.layers]          # doctest: +SKIP
    ['RandomTranslation', 'RandomRotation', 'RandomZoom', 'RandomContrast']
"""

from __future__ import annotations

from edgekit.errors import UsageError

# fractions of the image size (translation, zoom), of a full turn (rotation), and contrast factor
TRANSLATION, ROTATION, ZOOM, CONTRAST = 0.1, 0.05, 0.1, 0.2


def augmentation(input_shape, *, seed: int = 0):
    """The augmentation layers for images shaped ``input_shape`` (height, width, channels)."""
    if len(input_shape) != 3:
        raise UsageError(f"--augment applies to images (height, width, channels); this data has samples of shape "
                         f"{tuple(input_shape)}", hint="drop --augment for feature vectors and sequences")
    import keras

    L = keras.layers
    return keras.Sequential([
        L.RandomTranslation(TRANSLATION, TRANSLATION, fill_mode="constant", seed=seed),
        L.RandomRotation(ROTATION, fill_mode="constant", seed=seed),
        L.RandomZoom(ZOOM, fill_mode="constant", seed=seed),
        L.RandomContrast(CONTRAST, value_range=(0, 1), seed=seed),
    ], name="augmentation")


def with_augmentation(model, input_shape, *, seed: int = 0):
    """A model that augments its input when ``training`` and then calls ``model`` (which keeps its weights)."""
    import keras

    inp = keras.Input(input_shape)
    return keras.Model(inp, model(augmentation(input_shape, seed=seed)(inp)), name=f"{model.name}_augmented")
