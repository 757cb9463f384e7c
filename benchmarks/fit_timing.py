"""Times `model.fit` steps of the driver's model on real MRPC train pairs.

Shared by the benchmarks that compare one setting against another in fresh
child processes (determinism_cost.py, dynamic_padding.py, parallel_runs.py):
all-MiniLM-L6-v2 with the given tuning mode as `AdapterTextClassifier`,
compiled as run_classifier.py compiles it (Model Garden AdamW), trained on
the batches run_classifier.py trains on (`AdapterTextClassifier.fit` on raw
text pairs, i.e. `train_batches`). Standard library only at import.
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE = os.path.join(os.path.dirname(REPO), "shared", "data", "glue_data")


def mrpc_train():
  """((texts_a, texts_b), labels) of the real MRPC training pairs."""
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  examples = glue.get_processor("mrpc").get_examples(
      os.path.join(GLUE, "MRPC"), "train")
  return ([e.text_a for e in examples], [e.text_b for e in examples]), [
      e.label for e in examples]


def time_mrpc_fit(warmup, steps, batch=32, seq=128, mode="adapter",
                  adapter_size=64, dynamic_padding=False):
  """Runs warmup + steps training steps; returns (seconds per timed step,
  loss after every step).

  The input is the product's: `AdapterTextClassifier.fit` on the raw MRPC
  pairs tokenizes them with the model's preprocessor and trains on
  `train_batches` (shuffled with seed 42, full batches, cut to their longest
  pair with `dynamic_padding`), as run_classifier.py does.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top

  x, y = mrpc_train()
  clf = AdapterTextClassifier.from_preset(
      task_name="MRPC", seed=42, max_seq_length=seq, fine_tune_mode=mode,
      adapter_size=adapter_size)
  total = warmup + steps
  clf.compile_adamw(total, 1e-3)
  ends, losses = [], []

  class Clock(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      ends.append(time.perf_counter())
      losses.append(float(logs["loss"]))

  start = time.perf_counter()  # tokenizing and tracing fall in the warmup
  clf.fit(x, y, batch_size=batch, epochs=1, steps_per_epoch=total,
          dynamic_padding=dynamic_padding, verbose=0, callbacks=[Clock()])
  return np.diff([start] + ends)[warmup:], losses


def module_command(module, *args):
  """The command line that runs benchmark module `module` (e.g.
  "benchmarks.batching") with `args`, as `python -m` from the repository
  root."""
  return [sys.executable, "-m", module, *args]


def append_line(path, line, begin, module):
  """Appends `line` plus wall time, CPU count, machine and the command that
  ran `module` (this process's arguments, less --results: where the line
  goes does not change it) to the JSON-lines file `path`."""
  import platform  # pylint: disable=g-import-not-at-top
  line = dict(line, wall_seconds=int(time.time() - begin),
              cpus=os.cpu_count(), machine=platform.machine(),
              command=" ".join([f"python -m {module}"] +
                               without_results_flag(sys.argv[1:])))
  with open(path, "a") as f:
    f.write(json.dumps(line) + "\n")
  print(json.dumps(line))


def without_results_flag(argv):
  """`argv` less `--results PATH` / `--results=PATH`."""
  kept, skip = [], False
  for word in argv:
    if skip:
      skip = False
    elif word == "--results":
      skip = True
    elif not word.startswith("--results="):
      kept.append(word)
  return kept


def timing_parser(doc, results_name):
  """The flags every A/B timing benchmark shares; --child marks the process
  that trains (see alternate_children)."""
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", results_name))
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  return parser


def alternate_children(module, rounds, flags, switch):
  """Runs `python -m module --child flags` in a fresh process, without and
  with `switch`, alternately for `rounds` rounds (so background load hits
  both alike). Returns {False: [...], True: [...]}: each child's last JSON
  line."""
  runs = {False: [], True: []}
  for _ in range(rounds):
    for on in (False, True):
      out = subprocess.run(
          module_command(module, "--child", *flags, *([switch] if on else [])),
          cwd=REPO, check=True, capture_output=True, text=True).stdout
      runs[on].append(json.loads(out.strip().splitlines()[-1]))
      print(switch if on else "default", runs[on][-1]["median_step_s"],
            flush=True)
  return runs
