"""tpu_configs/: every YAML is checked (fields, ranges, real driver flags, the
paper's sweep) and the launcher's dry run prints the exact commands."""

import importlib.util
import itertools
import shlex
import subprocess
import sys

import pytest
import yaml

from harness import REPO
from harness import subprocess_env

CONFIG_DIR = REPO / "tpu_configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
GLUE = {"cola": "cola", "sst2": "sst-2", "mrpc": "mrpc", "stsb": "sts-b",
        "rte": "rte"}


def _load_launcher():
  spec = importlib.util.spec_from_file_location("launch",
                                                CONFIG_DIR / "launch.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


launch = _load_launcher()


@pytest.fixture(scope="module")
def driver_flags():
  return {d: launch.driver_flag_names(d) for d in launch.DRIVERS}


def _launch(*args, env=None):
  return subprocess.run(
      [sys.executable, str(CONFIG_DIR / "launch.py"), *args], cwd=REPO,
      env=dict(subprocess_env(), **(env or {})), capture_output=True,
      text=True, timeout=120)


def test_one_config_per_task():
  assert {p.stem for p in CONFIGS} == set(GLUE) | {"squad_v1"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_valid_with_the_paper_sweep(path, driver_flags):
  config = launch.load_config(path)
  known = driver_flags[config["driver"]]
  for env in ("tpu", "local"):
    assert set(launch.merged_flags(config, env)) <= known
  assert set(config["sweep"]) <= known
  sweep, flags = config["sweep"], config["flags"]
  assert sweep["adapter_size"] == [8, 64, 256]
  assert sweep["learning_rate"] == [3e-4, 1e-3, 3e-3]
  assert len(sweep["seed"]) >= 3
  assert flags["train_batch_size"] == 32
  assert flags["fine_tune_mode"] == "adapter"
  tpu = launch.merged_flags(config, "tpu")
  assert tpu["use_tpu"] is True and tpu["num_tpu_cores"] == 8
  local = launch.merged_flags(config, "local")
  if path.stem in GLUE:
    assert config["driver"] == "run_classifier.py"
    assert sweep["num_train_epochs"] == [3, 20]
    assert tpu["tfds_name"] == f"glue/{path.stem}"
    assert (REPO / local["data_dir"] / "dev.tsv").is_file()
    # the metric is one the driver writes for this task
    from keras_adapters.tasks import metrics
    written = metrics.compute_metrics(GLUE[path.stem], [0, 1, 1], [0, 1, 0])
    assert config["metric"] in {f"eval_{k}" for k in written}
  else:
    assert config["driver"] == "run_squad.py"
    assert sweep["num_train_epochs"] == [2, 3]  # a stated deviation
    assert config["metric"] == "f1"
    setup = config["local"]["setup"][0]["command"]
    assert (REPO / shlex.split(setup)[shlex.split(setup).index("--input")
                                      + 1]).is_file()


BAD = {
    # name: (edit of mrpc.yaml's config, words of the error)
    "negative_lr": (lambda c: c["sweep"].update(learning_rate=[-1e-3]),
                    "sweep.learning_rate: -0.001 is outside"),
    "fractional_size": (lambda c: c["sweep"].update(adapter_size=[6.5]),
                        "sweep.adapter_size: 6.5 is not an integer"),
    "no_seeds": (lambda c: c["sweep"].pop("seed"),
                 "sweep: must list values for each of"),
    "batch_not_split": (lambda c: c["flags"].update(train_batch_size=36),
                        "36 does not split over num_tpu_cores=8"),
    "missing_section": (lambda c: c.pop("local"), "local: missing"),
    "tpu_without_name": (lambda c: c["tpu"]["flags"].pop("tpu_name"),
                         "tpu.flags: needs use_tpu: true and tpu_name"),
    "misspelt_flag": (lambda c: c["flags"].update(adaptr_size=64),
                      "'adaptr_size' is not a flag of run_classifier.py"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_config_is_refused_naming_the_field(name, tmp_path, driver_flags):
  config = yaml.safe_load((CONFIG_DIR / "mrpc.yaml").read_text())
  edit, words = BAD[name]
  edit(config)
  path = tmp_path / "bad.yaml"
  path.write_text(yaml.safe_dump(config))
  with pytest.raises(launch.ConfigError, match="bad.yaml") as error:
    checked = launch.load_config(path)
    launch.check_flag_names(path, checked, driver_flags[checked["driver"]])
  assert words in str(error.value)


def test_launcher_refuses_a_bad_config_with_one_line(tmp_path):
  config = yaml.safe_load((CONFIG_DIR / "mrpc.yaml").read_text())
  config["flags"]["adaptr_size"] = 64
  (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
  result = _launch(str(tmp_path / "bad.yaml"), "--dry_run")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"launch.py: error: {tmp_path / 'bad.yaml'}: tpu: 'adaptr_size' is "
      "not a flag of run_classifier.py"]
  assert not result.stdout


TPU_ENV = dict(TPU_NAME="test-tpu", TPU_ZONE="europe-west4-a",
               GCP_PROJECT="test-project", GCS_BUCKET="test-bucket",
               HOME="/home/tester")


def _parsed(line):
  argv = shlex.split(line)
  assert argv[0] == sys.executable
  flags = {}
  for arg in argv[2:]:
    name, _, value = arg[2:].partition("=")
    flags[name] = value if _ else True
  return argv[1], flags


def test_dry_run_prints_one_exact_command_per_sweep_point():
  result = _launch("tpu_configs/mrpc.yaml", "--dry_run", env=TPU_ENV)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  sweep = yaml.safe_load((CONFIG_DIR / "mrpc.yaml").read_text())["sweep"]
  expected = set(itertools.product(*sweep.values()))
  assert len(lines) == len(expected) == 90
  points, dirs = set(), set()
  for line in lines:
    driver, flags = _parsed(line)
    assert driver == "run_classifier.py"
    assert flags["use_tpu"] is True and flags["tpu_name"] == "test-tpu"
    assert flags["tpu_zone"] == "europe-west4-a"
    assert flags["gcp_project"] == "test-project"
    assert flags["tfds_data_dir"] == "gs://test-bucket/tensorflow_datasets"
    assert flags["train_batch_size"] == "32" and "data_dir" not in flags
    points.add((int(flags["adapter_size"]), float(flags["learning_rate"]),
                int(flags["num_train_epochs"]), int(flags["seed"])))
    dirs.add(flags["output_dir"])
    assert flags["output_dir"].startswith("/home/tester/adapter_runs/mrpc/m")
  assert points == expected and len(dirs) == 90


def test_local_dry_run_uses_the_local_data_with_selection_and_overrides():
  result = _launch("tpu_configs/mrpc.yaml", "--local", "--dry_run",
                   "--select", "adapter_size=64", "--select", "seed=1,2",
                   "--select", "learning_rate=0.001",
                   "--select", "num_train_epochs=3",
                   "--set", "num_train_epochs=0.05")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert len(lines) == 2  # seeds 1 and 2; epochs fixed by --set
  for seed, line in zip((1, 2), lines):
    _, flags = _parsed(line)
    assert "use_tpu" not in flags and "tfds_name" not in flags
    assert flags["data_dir"] == "../shared/data/glue_data/MRPC"
    assert flags["num_train_epochs"] == "0.05"
    assert flags["output_dir"] == (
        f"runs/tpu_configs/mrpc/m64_lr0.001_s{seed}")


def test_tpu_run_needs_the_placeholders_set():
  env = {k: v for k, v in subprocess_env().items()
         if k not in ("TPU_NAME", "TPU_ZONE", "GCP_PROJECT", "GCS_BUCKET")}
  result = subprocess.run(
      [sys.executable, str(CONFIG_DIR / "launch.py"), "tpu_configs/rte.yaml"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert "set the environment variable(s) TPU_NAME" in result.stderr
  assert not result.stdout  # nothing started
