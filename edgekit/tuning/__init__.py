"""``edgekit tune``: the most accurate model that fits the device, found by measuring every candidate.

Modules: :mod:`~edgekit.tuning.hp` (the ``hp`` API of a tunable model file),
:mod:`~edgekit.tuning.space` (the recipes' search spaces), :mod:`~edgekit.tuning.trial` (one trial:
train, export, validate, bench, estimate), :mod:`~edgekit.tuning.study` (the Optuna study, workers
and resume), :mod:`~edgekit.tuning.front` (Pareto front, hypervolume) and
:mod:`~edgekit.tuning.report` (table, ``tune.json``, ``tune.html``). docs/tune.md has a worked example.
"""

from edgekit.tuning.hp import HyperParameters
from edgekit.tuning.study import tune

__all__ = ["HyperParameters", "tune"]
