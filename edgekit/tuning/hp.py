"""``hp``: the hyperparameter API a tunable model file uses, named as KerasTuner names it.

A model file for ``edgekit tune`` defines ``build_model(hp, input_shape, num_classes)`` and asks
``hp`` for each value it searches. Behind ``hp`` is an Optuna trial (``suggest_int``,
``suggest_float``, ``suggest_categorical``); asking twice for one name gives the same value.

Example ``my_model.py``::

    import keras

    def build_model(hp, input_shape, num_classes):
        inp = keras.Input(input_shape)
        x = keras.layers.Flatten()(inp)
        for i in range(hp.Int("layers", 1, 3)):
            x = keras.layers.Dense(hp.Choice(f"units_{i}", [16, 32, 64]), activation="relu")(x)
        if hp.Boolean("dropout"):
            x = keras.layers.Dropout(hp.Float("rate", 0.1, 0.5, step=0.1))(x)
        return keras.Model(inp, keras.layers.Dense(num_classes, activation="softmax")(x))

Training reads three names when the file defines them: ``learning_rate``, ``epochs`` and
``batch_size`` (else ``--lr``, ``--epochs`` and ``--batch-size`` apply).

    >>> hp = HyperParameters.defaults()
    >>> hp.Int("layers", 1, 3), hp.Float("rate", 0.1, 0.5, default=0.2), hp.Choice("units", [16, 32])
    (1, 0.2, 16)
    >>> hp.values
    {'layers': 1, 'rate': 0.2, 'units': 16}
"""

from __future__ import annotations

from typing import Any

from edgekit.errors import UsageError

TRAINING_NAMES = ("learning_rate", "epochs", "batch_size")


class HyperParameters:
    """What ``build_model(hp, ...)`` receives. ``trial`` is an Optuna trial, or None for the
    defaults (each parameter's ``default``, else its first value), used to check a file."""

    def __init__(self, trial: Any | None = None):
        self._trial = trial
        self.values: dict[str, Any] = {}

    @classmethod
    def defaults(cls) -> HyperParameters:
        return cls(None)

    def Int(self, name: str, min_value: int, max_value: int, step: int | None = None, sampling: str = "linear",
            default: int | None = None) -> int:
        """An integer in [min_value, max_value]; ``sampling="log"`` searches on a log scale."""
        _check_range(name, min_value, max_value)
        if self._trial is None:
            return self._keep(name, int(min_value if default is None else default))
        log = _log(name, sampling)
        return self._keep(name, self._trial.suggest_int(name, int(min_value), int(max_value), step=step or 1, log=log))

    def Float(self, name: str, min_value: float, max_value: float, step: float | None = None, sampling: str = "linear",
              default: float | None = None) -> float:
        """A float in [min_value, max_value]; ``step`` makes it discrete; ``sampling="log"`` for rates."""
        _check_range(name, min_value, max_value)
        if self._trial is None:
            return self._keep(name, float(min_value if default is None else default))
        log = _log(name, sampling)
        return self._keep(name, self._trial.suggest_float(name, float(min_value), float(max_value), step=step, log=log))

    def Choice(self, name: str, values: list, ordered: bool | None = None, default: Any = None) -> Any:
        """One of ``values`` (numbers, strings or booleans)."""
        values = list(values)
        if not values:
            raise UsageError(f"hp.Choice('{name}') has no values", hint="give it at least one value")
        if self._trial is None:
            return self._keep(name, values[0] if default is None else default)
        return self._keep(name, self._trial.suggest_categorical(name, values))

    def Boolean(self, name: str, default: bool = False) -> bool:
        if self._trial is None:
            return self._keep(name, bool(default))
        return self._keep(name, bool(self._trial.suggest_categorical(name, [False, True])))

    def Fixed(self, name: str, value: Any) -> Any:
        """A value that is recorded with the trial but not searched."""
        return self._keep(name, value)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def _keep(self, name: str, value: Any) -> Any:
        self.values[name] = value
        return value


def _check_range(name: str, lo, hi) -> None:
    if lo > hi:
        raise UsageError(f"hp '{name}': min_value {lo} is above max_value {hi}")


def _log(name: str, sampling: str) -> bool:
    if sampling not in ("linear", "log"):
        raise UsageError(f"hp '{name}': sampling must be linear or log, got '{sampling}'")
    return sampling == "log"
