"""A user's own model from a Python file that defines ``build_model(input_shape, num_classes)``.

The file may also define ``loss`` (a name or a Keras loss object) and custom layers;
register custom classes the Keras way, with ``@keras.saving.register_keras_serializable()``,
so that ``model.keras`` loads again later. The file is copied into the run folder.

Example ``my_model.py``::

    import keras

    @keras.saving.register_keras_serializable(package="my")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    def build_model(input_shape, num_classes):
        inp = keras.Input(input_shape)
        x = Scale()(keras.layers.Flatten()(inp))
        return keras.Model(inp, keras.layers.Dense(num_classes, activation="softmax")(x))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import InputError
from edgekit.model_loading import import_custom_code


def load_model_file(py_file: Path) -> Any:
    """Import ``py_file`` and check that it defines ``build_model``."""
    py_file = Path(py_file)
    if not py_file.is_file():
        raise InputError(f"Model file {py_file} does not exist", hint="pass a recipe name or a .py file")
    module = import_custom_code(py_file)
    if not callable(getattr(module, "build_model", None)):
        raise InputError(
            f"{py_file} defines no build_model(input_shape, num_classes)",
            hint="add that function; it returns a keras.Model",
        )
    return module


def build_from_file(module: Any, input_shape, num_classes: int):
    try:
        model = module.build_model(tuple(input_shape), num_classes)
    except Exception as e:
        raise InputError(f"build_model() in your model file failed: {type(e).__name__}: {e}") from None
    import keras

    if not isinstance(model, keras.Model):
        raise InputError(f"build_model() returned {type(model).__name__}, not a keras.Model")
    return model
