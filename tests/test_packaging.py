"""Packaging: setup.py states compatible ranges, constraints.txt the exact stack.

A library user's `pip install .` must fit beside their own TF 2.x stack, so
setup.py has no exact pins; setup.sh and CI install through constraints.txt,
which pins every requirement to a version inside setup.py's range.
"""

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# Move together by minor version (tf-models-official X.Y needs tensorflow and
# tensorflow-text ~=X.Y.0; tf-keras X.Y needs tensorflow X.Y.*).
TF_FAMILY = ("tensorflow", "tf-models-official", "tf-keras", "tensorflow-text")


def _setup_requirements():
  """install_requires and extras_require of setup.py, read with ast."""
  tree = ast.parse((REPO / "setup.py").read_text())
  calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
           and getattr(node.func, "id", None) == "setup"]
  assert len(calls) == 1, "setup.py must call setup() once"
  kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in calls[0].keywords
            if kw.arg in ("install_requires", "extras_require")}
  required = [Requirement(r) for r in kwargs["install_requires"]]
  extras = {name: [Requirement(r) for r in reqs]
            for name, reqs in kwargs.get("extras_require", {}).items()}
  return required, extras


def _constraints(text=None):
  """{canonical name: Version} from constraints.txt; every line an exact pin."""
  if text is None:
    text = (REPO / "constraints.txt").read_text()
  pins = {}
  for line in text.splitlines():
    line = line.split("#", 1)[0].strip()
    if not line:
      continue
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^=\s;]+)", line)
    assert match, f"constraints.txt: not an exact pin: {line!r}"
    name = canonicalize_name(match.group(1))
    assert name not in pins, f"constraints.txt: {name} pinned twice"
    pins[name] = Version(match.group(2))
  return pins


def _all_requirements():
  required, extras = _setup_requirements()
  return required + [r for reqs in extras.values() for r in reqs]


def _out_of_range(requirements, pins):
  """Requirements whose pinned version lies outside setup.py's range."""
  return [f"{r.name}: pinned {pins[canonicalize_name(r.name)]} not in "
          f"'{r.specifier}'" for r in requirements
          if canonicalize_name(r.name) in pins
          and not r.specifier.contains(pins[canonicalize_name(r.name)],
                                       prereleases=True)]


def test_setup_py_has_ranges_not_exact_pins():
  for req in _all_requirements():
    assert req.specifier, f"{req.name}: no version range in setup.py"
    for spec in req.specifier:
      assert spec.operator not in ("==", "==="), (
          f"{req}: exact pin in setup.py; pins belong in constraints.txt")
    assert any(s.operator in ("<", "<=", "~=") for s in req.specifier), (
        f"{req}: no upper bound")


def test_every_requirement_is_pinned_within_its_range():
  pins = _constraints()
  requirements = _all_requirements()
  missing = [r.name for r in requirements
             if canonicalize_name(r.name) not in pins]
  assert not missing, f"required by setup.py, not pinned: {missing}"
  assert not _out_of_range(requirements, pins)


def test_out_of_range_pin_is_caught():
  # The check above can fail: a pin outside setup.py's range is reported.
  requirements = [Requirement("tensorflow>=2.16,<2.21")]
  assert not _out_of_range(requirements, _constraints("tensorflow==2.20.0"))
  assert _out_of_range(requirements, _constraints("tensorflow==2.21.0"))
  with pytest.raises(AssertionError, match="not an exact pin"):
    _constraints("tensorflow>=2.20")


def test_tf_family_pins_share_a_minor_version():
  pins = _constraints()
  minors = {name: pins[name].release[:2] for name in TF_FAMILY}
  assert len(set(minors.values())) == 1, minors


def test_setup_sh_installs_through_the_constraints():
  setup_sh = (REPO / "setup.sh").read_text()
  assert re.search(r"pip install [^\n]*-c constraints\.txt[^\n]*-e \"\.\[test\]\"",
                   setup_sh), "setup.sh must install with -c constraints.txt"


@pytest.mark.skipif(Path(sys.prefix).resolve() != (REPO / ".venv").resolve(),
                    reason="only the repo's .venv (made by setup.sh) is pinned")
def test_repo_venv_has_exactly_the_pinned_stack():
  wrong = {}
  for name, version in _constraints().items():
    try:
      installed = Version(importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
      installed = None
    if installed != version:
      wrong[name] = (str(installed), str(version))
  assert not wrong, f"installed vs pinned: {wrong}"
