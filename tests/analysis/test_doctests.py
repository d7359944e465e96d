"""The ``Example:`` blocks in the analysis docstrings are real: run them."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "vfiobench.buckets",
        "vfiobench.analysis.latency",
        "vfiobench.analysis.rates",
        "vfiobench.analysis.ab",
        "vfiobench.analysis.inference",
        "vfiobench.analysis.precision",
    ],
)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
