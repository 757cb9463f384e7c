"""Test tiers, the real-data check, and the fixtures shared by test modules.

Tiers (as KerasHub does it): tests marked `@pytest.mark.large` (driver
subprocesses, kill/resume, multi-worker, notebook, benchmark smoke tests,
the README example) are skipped unless pytest gets `--run_large`. The
default tier runs in-process, with tiny models and a few real-MiniLM checks.
CI (`.ci/run`) runs both: `pytest -q -n 2 --run_large tests`.

Real data: the suite needs the GLUE/SQuAD data at ../shared/data and the
converted default model (MiniLM) in its cache. If either is missing, the
session stops at once with one line naming it, instead of skipping test
after test. A developer without the data may opt out explicitly with
KERAS_ADAPTERS_ALLOW_MISSING_DATA=1: tests that need it then skip.
"""

import os
from pathlib import Path

import pytest

# No TensorFlow import before the session-start check (it would take most
# of a minute on a busy machine): harness (which imports TF) is imported by
# the fixtures, and these two paths are checked against harness.DATA and
# presets.cache_dir by test_conftest_paths_match_the_library's.
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODEL_CACHE = Path(os.environ.get(
    "KERAS_ADAPTERS_CACHE", os.path.expanduser("~/.cache/keras_adapters"))
                   ) / "all-MiniLM-L6-v2"
ALLOW_MISSING = "KERAS_ADAPTERS_ALLOW_MISSING_DATA"
# What the suite reads from ../shared/data (relative to DATA).
REQUIRED_DATA = [
    "glue_data/MRPC/train.tsv", "glue_data/MRPC/dev.tsv",
    "glue_data/MRPC/test.tsv", "glue_data/SST-2/train.tsv",
    "glue_data/STS-B/train.tsv", "glue_data/CoLA/train.tsv",
    "squad/dev-v1.1.json", "bert_vocab/vocab.txt",
]


def pytest_addoption(parser):
  parser.addoption("--run_large", action="store_true", default=False,
                   help="also run the tests marked large (subprocess "
                   "drivers, kill/resume, multi-worker, notebook)")


# Test modules that share the session's `reliability` driver runs. With
# pytest-xdist (`-n 2`) each module runs whole on one worker (its module
# fixtures are built once), and these two on the same one (those runs start
# once).
_SHARED_MODULES = {"tests/test_frozen.py": "tests/test_resume.py"}
# The modules that take most CPU in CI (tests/DURATIONS.md), heaviest first;
# the rest follow in collection order. Handed out in this order, the two
# workers end within seconds of each other instead of one idling through
# the last big module.
_HEAVIEST_FIRST = [
    "tests/test_frozen.py", "tests/test_resume.py",
    "tests/test_text_classifier.py", "tests/test_run_classifier.py",
    "tests/test_distributed.py", "tests/test_notebook.py",
    "tests/test_bad_inputs.py", "tests/test_benchmark_scripts.py",
    "tests/test_export.py", "tests/test_generic_pair_export.py",
    "tests/test_bucketing.py",
]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  from xdist.scheduler import LoadScopeScheduling  # pylint: disable=g-import-not-at-top

  class ModuleScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid):
      module = nodeid.split("::", 1)[0]
      return _SHARED_MODULES.get(module, module)

  config.option.loadscopereorder = False  # keep _HEAVIEST_FIRST's order
  return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config, items):
  rank = {module: i for i, module in enumerate(_HEAVIEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0],
                                       len(rank)))  # stable: the rest as found
  if config.getoption("--run_large"):
    return
  skip_large = pytest.mark.skip(reason="large test: run with --run_large")
  for item in items:
    if "large" in item.keywords:
      item.add_marker(skip_large)


def missing_requirements():
  """The first missing piece of real data or model, as a phrase, or None."""
  if not DATA.is_dir():
    return f"the shared data directory {DATA} (../shared/data)"
  for relative in REQUIRED_DATA:
    if not (DATA / relative).is_file():
      return f"{DATA / relative} (../shared/data)"
  if not (MODEL_CACHE / "encoder.json").is_file():
    return (f"the converted default model (all-MiniLM-L6-v2) in "
            f"{MODEL_CACHE}; run ./setup.sh")
  return None


def pytest_sessionstart(session):
  del session
  missing = missing_requirements()
  if missing and os.environ.get(ALLOW_MISSING) != "1":
    raise pytest.UsageError(
        f"tests need {missing}, which is missing; provide it, or set "
        f"{ALLOW_MISSING}=1 to skip the tests that need it")


# --- shared fixtures ------------------------------------------------------------

@pytest.fixture
def tiny_encoder():
  """harness.tiny_encoder: `tiny_encoder(**overrides)` builds a tiny random
  adapter-ready BERT."""
  import harness  # pylint: disable=g-import-not-at-top
  return harness.tiny_encoder


@pytest.fixture
def mrpc_subset(tmp_path):
  """`mrpc_subset(rows, name="mrpc", edit=None)`: writes the first real MRPC
  rows per split (e.g. dict(train=64, dev=32)) under tmp_path/name."""
  import harness  # pylint: disable=g-import-not-at-top
  return lambda rows, name="mrpc", edit=None: harness.glue_subset(
      tmp_path / name, rows, "MRPC", edit)


@pytest.fixture(scope="session")
def driver():
  """The driver runner: `driver.run(program, args)` and `driver.start(...)`
  (harness.run_driver / start_driver; program: run_classifier.py,
  run_squad.py or export)."""
  import harness  # pylint: disable=g-import-not-at-top
  return harness


@pytest.fixture(scope="session")
def reliability(tmp_path_factory):
  """(root, {name: Future}) of the tiny real driver runs of
  tests/reliability.py (large tier), started once per session in the
  background; test_resume.py and test_frozen.py read them."""
  import reliability as runs  # pylint: disable=g-import-not-at-top
  return runs.reliability_runs(tmp_path_factory.mktemp("reliability"))
