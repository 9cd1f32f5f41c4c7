"""The examples in the docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["edgekit.layer_names", "edgekit.profiling.table", "edgekit.profiling.tfjs_ops",
                                    "edgekit.reports.ops", "edgekit.device_profiles.calibration",
                                    "edgekit.trainer.diagnosis", "edgekit.trainer.tasks", "edgekit.tuning.space",
                                    "edgekit.detection.metrics"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
