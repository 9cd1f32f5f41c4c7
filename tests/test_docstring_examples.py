"""The examples in the docstrings of the per-operator profile modules run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["edgekit.layer_names", "edgekit.profiling.table", "edgekit.profiling.tfjs_ops",
                                    "edgekit.reports.ops"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
