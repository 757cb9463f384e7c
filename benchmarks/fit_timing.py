"""Times `model.fit` steps of the driver's model on real MRPC train pairs.

Shared by the benchmarks that compare one setting against another in fresh
child processes (determinism_cost.py, dynamic_padding.py): all-MiniLM-L6-v2
with the given tuning mode, Model Garden AdamW, the driver's input pipeline.
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE = os.path.join(os.path.dirname(REPO), "shared", "data", "glue_data")


def time_mrpc_fit(warmup, steps, batch=32, seq=128, mode="adapter",
                  adapter_size=64, dynamic_padding=False):
  """Runs warmup + steps training steps; returns (seconds per timed step,
  loss after every step)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.path.insert(0, REPO)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tf_keras
  from keras_adapters.training import optimizers
  from keras_adapters.models.text_classifier import build_classifier
  from keras_adapters.data import glue
  from keras_adapters.data.features import make_dataset
  from keras_adapters.loaders.presets import load_preset

  tf_keras.utils.set_random_seed(42)
  encoder, vocab_file, lower = load_preset()
  model, _ = build_classifier(encoder, 2, mode, adapter_size)
  total = warmup + steps
  model.compile(optimizer=optimizers.create_optimizer(1e-3, total, 0.1),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  processor = glue.get_processor("mrpc")
  examples = processor.get_examples(os.path.join(GLUE, "MRPC"), "train")
  ds = make_dataset(examples, vocab_file=vocab_file, do_lower_case=lower,
                    max_seq_length=seq, label_list=processor.labels,
                    is_regression=False, batch_size=batch, is_training=True,
                    seed=42, drop_remainder=True, repeat=True,
                    dynamic_padding=dynamic_padding)
  ends, losses = [], []

  class Clock(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      ends.append(time.perf_counter())
      losses.append(float(logs["loss"]))

  start = time.perf_counter()
  model.fit(ds, steps_per_epoch=total, epochs=1, verbose=0,
            callbacks=[Clock()])
  return np.diff([start] + ends)[warmup:], losses


def append_line(path, line, begin, script):
  """Appends `line` plus wall time, CPU count, machine and the command that
  ran `script` (this process's arguments, less --results: where the line
  goes does not change it) to the JSON-lines file `path`."""
  import platform  # pylint: disable=g-import-not-at-top
  line = dict(line, wall_seconds=int(time.time() - begin),
              cpus=os.cpu_count(), machine=platform.machine(),
              command=" ".join([f"python benchmarks/{script}"] +
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


def alternate_children(script, rounds, flags, switch):
  """Runs `script --child flags` in a fresh process, without and with
  `switch`, alternately for `rounds` rounds (so background load hits both
  alike). Returns {False: [...], True: [...]}: each child's last JSON line."""
  runs = {False: [], True: []}
  for _ in range(rounds):
    for on in (False, True):
      out = subprocess.run(
          [sys.executable, os.path.abspath(script), "--child", *flags]
          + ([switch] if on else []),
          check=True, capture_output=True, text=True).stdout
      runs[on].append(json.loads(out.strip().splitlines()[-1]))
      print(switch if on else "default", runs[on][-1]["median_step_s"],
            flush=True)
  return runs
