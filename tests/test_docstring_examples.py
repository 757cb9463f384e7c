"""Every `>>>` example in the library's docstrings runs and prints what it
shows."""

import doctest
import importlib

import pytest

from harness import REPO

MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts)
    for path in (REPO / "keras_adapters").rglob("*.py")
    if ">>>" in path.read_text())


def test_the_examples_are_found():
  assert "keras_adapters.layers.adapter_layer" in MODULES
  assert "keras_adapters.layers.matmul_attention" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
  result = doctest.testmod(importlib.import_module(name))
  assert result.attempted > 0
  assert result.failed == 0
