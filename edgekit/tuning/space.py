"""The search spaces of the built-in recipes, and of a user's ``build_model(hp, ...)`` file.

Every recipe searches its width multiplier, dropout, the learning rate and the number of
epochs (up to ``--epochs``); each adds its own depth and kernel choices, and image-folder
data adds the input resolution. The defaults of each space are the recipe's own defaults:
``edgekit tune`` runs them as its first trial, the hand-designed model every search must beat.

Example:
    >>> from edgekit.tuning.hp import HyperParameters
    >>> hp = HyperParameters.defaults()
    >>> choice = recipe_choice("cnn", hp, epochs=10, resizable=False, learning_rate=1e-3, batch_size=64)
    >>> choice.options, choice.epochs
    ({'width': 1.0, 'convs_per_block': 2, 'kernel_size': 3, 'dropout': 0.5}, 10)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import InputError
from edgekit.tuning.hp import HyperParameters

IMAGE_SIZES = [24, 32, 48]  # image folders: the loader resizes to any of these (32 is edgekit's default)


def _dropout(hp: HyperParameters, default: float) -> float:
    return hp.Float("dropout", 0.0, 0.5, step=0.1, default=default)


def _mlp(hp):
    return {"layers": hp.Int("layers", 1, 3, default=2), "dropout": _dropout(hp, 0.0)}


def _cnn(hp):
    return {"convs_per_block": hp.Int("convs_per_block", 1, 2, default=2),
            "kernel_size": hp.Choice("kernel_size", [3, 5], default=3), "dropout": _dropout(hp, 0.5)}


def _ds_cnn(hp):
    return {"blocks": hp.Int("blocks", 1, 5, default=4), "kernel_size": hp.Choice("kernel_size", [3, 5], default=3),
            "dropout": _dropout(hp, 0.0)}


def _mobilenet_v2(hp):
    return {"expansion": hp.Choice("expansion", [2, 4, 6], default=6),
            "kernel_size": hp.Choice("kernel_size", [3, 5], default=3), "dropout": _dropout(hp, 0.0)}


def _resnet8(hp):
    return {"dropout": _dropout(hp, 0.0)}


def _detector(hp):  # its width trades mAP for latency; judged by mAP@0.5 (edgekit.tuning.trial: the bench row's accuracy)
    return {"dropout": _dropout(hp, 0.0)}


SPACES = {"mlp": _mlp, "cnn": _cnn, "ds-cnn": _ds_cnn, "mobilenet-v2": _mobilenet_v2, "resnet8": _resnet8,
          "detector": _detector}

# The architecture parameters at their cheapest: the smallest, fastest model of each space.
_SMALLEST = {"width": 0.25, "layers": 1, "convs_per_block": 1, "blocks": 1, "expansion": 2, "kernel_size": 3,
             "image_size": IMAGE_SIZES[0]}


def smallest_params(defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults with every architecture parameter at its cheapest, and the learning rate scaled
    for the narrower model.

    With the defaults, it brackets the cost axis of the front: the search starts from the
    hand-designed model and from the smallest one the space holds. A narrower network wants a
    larger Adam step: the learning rate is divided by the width multiplier (the rule of
    maximal-update parametrisation for Adam, Yang et al. 2022), within the space's 4x bound. On
    ``builtin:digits`` (cnn, 6 epochs, int8, 3 seeds) the smallest variant reached 0.71-0.82
    accuracy at the default rate and 0.92 at 4x, at the same 8.5 KB.

    >>> smallest_params({"width": 1.0, "convs_per_block": 2, "kernel_size": 5, "dropout": 0.5, "epochs": 4,
    ...                  "learning_rate": 0.001})
    {'width': 0.25, 'convs_per_block': 1, 'kernel_size': 3, 'dropout': 0.5, 'epochs': 4, 'learning_rate': 0.004}
    """
    small = {k: _SMALLEST.get(k, v) for k, v in defaults.items()}
    if "learning_rate" in small and small.get("width") and defaults.get("width"):
        small["learning_rate"] = defaults["learning_rate"] * min(4.0, defaults["width"] / small["width"])
    return small


@dataclass
class Choice:
    """What one trial trains: recipe options (or a model built from the user's file) and settings."""

    options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 64
    image_size: int | None = None
    model: Any = None  # a keras.Model built by the user's build_model(hp, ...)


def recipe_choice(recipe: str, hp: HyperParameters, *, epochs: int, resizable: bool, learning_rate: float,
                  batch_size: int) -> Choice:
    """Ask ``hp`` for one point of the recipe's space."""
    options = {"width": hp.Float("width", 0.25, 1.0, step=0.25, default=1.0), **SPACES[recipe](hp)}
    return Choice(options=options, epochs=_epochs(hp, epochs),
                  learning_rate=hp.Float("learning_rate", learning_rate / 4, learning_rate * 4, sampling="log",
                                         default=learning_rate),
                  batch_size=batch_size,
                  image_size=hp.Choice("image_size", IMAGE_SIZES, default=32) if resizable else None)


def _epochs(hp: HyperParameters, epochs: int) -> int:
    return hp.Int("epochs", max(1, (epochs + 1) // 2), epochs, default=epochs) if epochs > 1 else epochs


def file_choice(module: Any, hp: HyperParameters, input_shape, num_classes: int, *, epochs: int,
                learning_rate: float, batch_size: int) -> Choice:
    """Build the user's model with ``hp``; training reads ``learning_rate``, ``epochs``, ``batch_size``
    when the file asked ``hp`` for them."""
    try:
        model = module.build_model(hp, tuple(input_shape), num_classes)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"build_model(hp, ...) in your model file failed: {type(e).__name__}: {e}") from None
    import keras

    if not isinstance(model, keras.Model):
        raise InputError(f"build_model(hp, ...) returned {type(model).__name__}, not a keras.Model")
    return Choice(model=model, epochs=int(hp.get("epochs", epochs)),
                  learning_rate=float(hp.get("learning_rate", learning_rate)),
                  batch_size=int(hp.get("batch_size", batch_size)))


def load_tunable_file(path: Path) -> Any:
    """Import a model file and check that it defines ``build_model(hp, input_shape, num_classes)``."""
    from edgekit.model_loading import import_custom_code

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model file {path} does not exist", hint="pass a recipe name or a .py file")
    from edgekit.tf_env import import_tensorflow

    import_tensorflow()  # before the file imports Keras itself: TensorFlow's start-up log stays captured
    module = import_custom_code(path)
    fn = getattr(module, "build_model", None)
    if not callable(fn):
        raise InputError(f"{path} defines no build_model(hp, input_shape, num_classes)",
                         hint="add that function; it asks hp for the values to search and returns a keras.Model")
    params = list(inspect.signature(fn).parameters)
    if len(params) < 3 or params[0] != "hp":
        raise InputError(f"{path}: build_model({', '.join(params)}) takes no hp; edgekit tune calls "
                         "build_model(hp, input_shape, num_classes)",
                         hint="add hp as the first argument and ask it for what to search, e.g. hp.Int('units', 16, 128)")
    return module
