"""``edgekit tune``: the most accurate model that fits the device, found by measuring every candidate.

Modules: :mod:`~edgekit.tune.hp` (the ``hp`` API of a tunable model file),
:mod:`~edgekit.tune.space` (the recipes' search spaces), :mod:`~edgekit.tune.trial` (one trial:
train, export, validate, bench, estimate), :mod:`~edgekit.tune.study` (the Optuna study, workers
and resume), :mod:`~edgekit.tune.front` (Pareto front, hypervolume) and
:mod:`~edgekit.tune.report` (table, ``tune.json``, ``tune.html``). docs/tune.md has a worked example.
"""

from edgekit.tune.hp import HyperParameters
from edgekit.tune.study import tune

__all__ = ["HyperParameters", "tune"]
