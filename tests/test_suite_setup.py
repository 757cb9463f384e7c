"""The suite's own setup (tests/conftest.py): the real-data check fails at
once with one line, and its paths are the library's."""

import shutil
import subprocess
import sys

import conftest
import harness


def test_conftest_paths_match_the_library():
  assert conftest.DATA == harness.DATA
  assert conftest.MODEL_CACHE == harness.minilm_cache()
  assert conftest.missing_requirements() is None  # here, all is present


def test_missing_shared_data_stops_the_session_with_one_line(tmp_path):
  """A checkout without ../shared/data: pytest stops before collecting,
  with exit status 4 and one line naming the directory; with the explicit
  opt-out it runs (and the test needing the data skips)."""
  tests = tmp_path / "checkout" / "tests"
  tests.mkdir(parents=True)
  shutil.copy(conftest.__file__, tests / "conftest.py")
  (tests / "test_needs_data.py").write_text(
      "import pytest, conftest\n"
      "def test_needs_data():\n"
      "  if conftest.missing_requirements():\n"
      "    pytest.skip('no data')\n")
  command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-o", "addopts=", str(tests)]
  env = harness.driver_env()
  env.pop(conftest.ALLOW_MISSING, None)
  result = subprocess.run(command, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
  missing = tmp_path / "shared" / "data"
  output = (result.stdout + result.stderr).strip().splitlines()
  assert result.returncode == 4, output
  assert output == [f"ERROR: tests need the shared data directory {missing} "
                    "(../shared/data), which is missing; provide it, or set "
                    f"{conftest.ALLOW_MISSING}=1 to skip the tests that need "
                    "it"]
  env[conftest.ALLOW_MISSING] = "1"
  result = subprocess.run(command, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-2000:]
  assert "1 skipped" in result.stdout
