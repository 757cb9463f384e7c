"""Turns a tpu_configs/*.yaml sweep into driver runs, one per sweep point.

Each YAML names a driver (run_classifier.py / run_squad.py), fixed `flags`,
a `sweep` (every combination becomes one run, in its own
<output_dir>/<run name>), and two environments: `tpu` (Cloud TPU flags, GCS
TFDS data; ${VARS} come from the environment) and `local` (this machine's
data paths). Run from the repository root:

  python tpu_configs/launch.py tpu_configs/mrpc.yaml --dry_run   # TPU commands
  python tpu_configs/launch.py tpu_configs/mrpc.yaml --local --dry_run
  # one small real run here:
  python tpu_configs/launch.py tpu_configs/mrpc.yaml --local \
    --select adapter_size=64 --select seed=1 --select learning_rate=0.001 \
    --select num_train_epochs=3 --set num_train_epochs=0.05

Runs are sequential; a run whose directory already has eval_results.txt is
skipped, and the drivers resume unfinished ones from their checkpoints, so
re-running the same command continues a sweep. See docs/DISTRIBUTED.md.
"""

import argparse
import itertools
import os
import re
import shlex
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVERS = ("run_classifier.py", "run_squad.py")
SWEPT = ("adapter_size", "learning_rate", "num_train_epochs", "seed")
# name: (type, low, high) for the values checked in every config
RANGES = {
    "adapter_size": (int, 1, 1024),
    "learning_rate": (float, 1e-6, 1e-2),
    "num_train_epochs": (float, 1e-3, 100),
    "seed": (int, 0, 2**31 - 1),
    "train_batch_size": (int, 1, 65536),
    "eval_batch_size": (int, 1, 65536),
    "predict_batch_size": (int, 1, 65536),
    "max_seq_length": (int, 8, 512),
    "warmup_proportion": (float, 0, 1),
    "num_tpu_cores": (int, 1, 4096),
}
_VAR = re.compile(r"\$\{(\w+)\}")


class ConfigError(ValueError):
  pass


def load_config(path):
  """Reads and checks one YAML; raises ConfigError naming file and field."""
  def fail(field, problem):
    raise ConfigError(f"{path}: {field}: {problem}")
  try:
    with open(path, encoding="utf-8") as f:
      config = yaml.safe_load(f)
  except (OSError, yaml.YAMLError) as e:
    raise ConfigError(f"{path}: cannot read ({e})") from None
  if not isinstance(config, dict):
    fail("(top)", "must be a mapping")
  for key in ("driver", "metric", "flags", "sweep", "tpu", "local"):
    if key not in config:
      fail(key, "missing")
  if config["driver"] not in DRIVERS:
    fail("driver", f"{config['driver']!r} is not one of {DRIVERS}")
  if not isinstance(config["flags"], dict):
    fail("flags", "must be a mapping of flag: value")
  sweep = config["sweep"]
  if not isinstance(sweep, dict) or set(SWEPT) - set(sweep):
    fail("sweep", f"must list values for each of {', '.join(SWEPT)}")
  for name, values in sweep.items():
    if not isinstance(values, list) or not values:
      fail(f"sweep.{name}", "must be a non-empty list")
    if len(set(values)) != len(values):
      fail(f"sweep.{name}", "has duplicate values")
    if name in config["flags"]:
      fail(f"sweep.{name}", "is also a fixed flag")
  for env in ("tpu", "local"):
    section = config[env]
    if not isinstance(section, dict) or not isinstance(
        section.get("flags"), dict) or not section.get("output_dir"):
      fail(env, "needs flags: {...} and output_dir")
    for name, value in merged_flags(config, env).items():
      _check_range(fail, f"{env}.flags.{name}", name, value)
  for name, values in sweep.items():
    for value in values:
      _check_range(fail, f"sweep.{name}", name, value)
  tpu = merged_flags(config, "tpu")
  if tpu.get("use_tpu") is not True or not tpu.get("tpu_name"):
    fail("tpu.flags", "needs use_tpu: true and tpu_name")
  for name in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
    if name in tpu and tpu[name] % tpu.get("num_tpu_cores", 8):
      fail(f"flags.{name}", f"{tpu[name]} does not split over "
           f"num_tpu_cores={tpu.get('num_tpu_cores', 8)}")
  if "use_tpu" in merged_flags(config, "local"):
    fail("local.flags", "must not set use_tpu")
  for i, step in enumerate(config["local"].get("setup") or []):
    if not isinstance(step, dict) or set(step) != {"creates", "command"}:
      fail(f"local.setup[{i}]", "needs exactly creates: and command:")
  return config


def _check_range(fail, field, name, value):
  if name not in RANGES:
    return
  kind, low, high = RANGES[name]
  if isinstance(value, bool) or not isinstance(value, (int, float)) or (
      kind is int and not isinstance(value, int)):
    fail(field, f"{value!r} is not a{'n integer' if kind is int else ' number'}")
  if not low <= value <= high:
    fail(field, f"{value} is outside [{low}, {high}]")


def merged_flags(config, env):
  return {**config["flags"], **config[env]["flags"]}


def driver_flag_names(driver):
  """The flags `driver` defines, read in a child process (the two drivers
  define the same common flags). The package's __init__ is skipped: it
  imports TensorFlow, which the flag definitions do not need."""
  module = driver[:-3]
  code = ("import sys, types; sys.argv = ['x']; "
          "pkg = types.ModuleType('keras_adapters'); "
          "pkg.__path__ = ['keras_adapters']; "
          "sys.modules['keras_adapters'] = pkg; "
          f"import {module}; from absl import flags; "
          "print('\\n'.join(flags.FLAGS))")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                       capture_output=True, text=True).stdout
  return set(out.split())


def check_flag_names(path, config, known=None):
  known = known or driver_flag_names(config["driver"])
  for env in ("tpu", "local"):
    for name in list(merged_flags(config, env)) + list(config["sweep"]):
      if name not in known:
        raise ConfigError(f"{path}: {env}: {name!r} is not a flag of "
                          f"{config['driver']}")


def run_name(point):
  return "_".join(f"{_SHORT.get(k, k)}{v}" for k, v in point.items())


_SHORT = dict(adapter_size="m", learning_rate="lr", num_train_epochs="ep",
              seed="s")


def _flag(name, value):
  if value is True:
    return f"--{name}"
  if value is False:
    return f"--no{name}"
  return f"--{name}={value}"


def expand(value, strict):
  """${VAR} from the environment; unset ones stay (dry run) or fail."""
  if not isinstance(value, str):
    return value
  missing = [v for v in _VAR.findall(value) if v not in os.environ]
  if missing and strict:
    raise ConfigError(f"set the environment variable(s) {', '.join(missing)}"
                      f" (used in {value!r}), or use --dry_run / --local")
  return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)


def commands(config, env, select=None, overrides=None, strict=False):
  """[(run_dir, argv)] for every selected sweep point."""
  sweep = dict(config["sweep"])
  fixed = merged_flags(config, env)
  for name, values in (select or {}).items():
    if name not in sweep:
      raise ConfigError(f"--select {name}: not swept in this config "
                        f"({', '.join(sweep)})")
    unknown = [v for v in values if v not in sweep[name]]
    if unknown:
      raise ConfigError(f"--select {name}={unknown[0]}: not in the sweep "
                        f"{sweep[name]}")
    sweep[name] = [v for v in sweep[name] if v in values]
  for name, value in (overrides or {}).items():
    sweep.pop(name, None)
    fixed[name] = value
  base = expand(config[env]["output_dir"], strict)
  runs = []
  for values in itertools.product(*sweep.values()):
    point = dict(zip(sweep, values))
    run_dir = f"{base}/{run_name(point)}"
    argv = [sys.executable, config["driver"]] + [
        _flag(k, expand(v, strict)) for k, v in {**fixed, **point}.items()]
    runs.append((run_dir, argv + [f"--output_dir={run_dir}"]))
  return runs


def _parse_pairs(pairs, multi):
  out = {}
  for pair in pairs or []:
    name, sep, value = pair.partition("=")
    if not sep:
      raise ConfigError(f"{pair!r}: use name=value")
    values = [yaml.safe_load(v) for v in value.split(",")]
    if multi:
      out.setdefault(name, []).extend(values)
    else:
      out[name] = values[0]
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n")[0],
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
  parser.add_argument("configs", nargs="+", help="tpu_configs/*.yaml")
  parser.add_argument("--dry_run", action="store_true",
                      help="print the commands, run nothing")
  parser.add_argument("--local", action="store_true",
                      help="use the config's local section (this machine)")
  parser.add_argument("--select", action="append", metavar="NAME=V1[,V2]",
                      help="only these values of a swept flag")
  parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                      help="override a flag for every run (e.g. a short "
                      "num_train_epochs for a local smoke run)")
  args = parser.parse_args(argv)
  env = "local" if args.local else "tpu"
  try:
    select = _parse_pairs(args.select, multi=True)
    overrides = _parse_pairs(args.set, multi=False)
    plan = []
    for path in args.configs:
      config = load_config(path)
      check_flag_names(path, config)
      runs = commands(config, env, select, overrides,
                      strict=not (args.dry_run or args.local))
      setup = config["local"].get("setup", []) if args.local else []
      plan.append((setup, runs))
  except ConfigError as e:
    print(f"launch.py: error: {e}", file=sys.stderr)
    return 2
  for setup, runs in plan:
    for step in setup:
      command = shlex.split(step["command"])
      if command[0] == "python":
        command[0] = sys.executable
      if args.dry_run:
        print(shlex.join(command))
      elif not os.path.exists(os.path.join(REPO, step["creates"])):
        print(f"+ {shlex.join(command)}", flush=True)
        subprocess.run(command, cwd=REPO, check=True)
    for i, (run_dir, argv_) in enumerate(runs, 1):
      if args.dry_run:
        print(shlex.join(argv_))
        continue
      if os.path.exists(os.path.join(REPO, run_dir, "eval_results.txt")):
        print(f"[{i}/{len(runs)}] done already: {run_dir}")
        continue
      print(f"[{i}/{len(runs)}] {shlex.join(argv_)}", flush=True)
      code = subprocess.run(argv_, cwd=REPO, check=False).returncode
      if code:
        print(f"launch.py: error: run {run_dir} exited with {code}; fix it "
              "and re-run to continue the sweep", file=sys.stderr)
        return code
  return 0


if __name__ == "__main__":
  sys.exit(main())
