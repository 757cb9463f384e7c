"""What `--deterministic` costs in speed: TF op determinism plus dropout
drawn from `tf.random.Generator`s (what the drivers' flag turns on).

Times Keras `model.fit` steps of the driver's model (all-MiniLM-L6-v2 with
adapters, Model Garden AdamW) on real MRPC train pairs, with and without op
determinism. Each measurement is a fresh child process (the setting is
process-wide); the modes alternate over --rounds so that background load
hits both alike. Also records whether the runs of each mode give the same
losses (the two modes draw different dropout masks, so they differ).
Appends one JSON line to --results.

  python benchmarks/determinism_cost.py  # 3 rounds x 10 timed steps, 32x128
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE = os.path.join(os.path.dirname(REPO), "shared", "data", "glue_data")


def child(args):
  """Trains warmup + timed steps in this process; prints one JSON line."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.path.insert(0, REPO)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  import tf_keras
  from keras_adapters import training
  from keras_adapters.classifier import build_classifier
  from keras_adapters.data import glue
  from keras_adapters.data.features import make_dataset
  from keras_adapters.presets import load_preset

  tf_keras.utils.set_random_seed(42)
  if args.deterministic:  # as driver_flags.strategy_from_flags does
    tf.config.experimental.enable_op_determinism()
    tf_keras.backend.experimental.enable_tf_random_generator()
  encoder, vocab_file, lower = load_preset()
  model, _ = build_classifier(encoder, 2, args.mode, args.adapter_size)
  steps = args.warmup + args.steps
  model.compile(optimizer=training.create_optimizer(1e-3, steps, 0.1),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  processor = glue.get_processor("mrpc")
  examples = processor.get_examples(os.path.join(GLUE, "MRPC"), "train")
  ds = make_dataset(examples[:args.batch * steps], vocab_file=vocab_file,
                    do_lower_case=lower, max_seq_length=args.seq,
                    label_list=processor.labels, is_regression=False,
                    batch_size=args.batch, is_training=True, seed=42,
                    drop_remainder=True, repeat=True)
  ends, losses = [], []

  class Clock(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      ends.append(time.perf_counter())
      losses.append(float(logs["loss"]))

  start = time.perf_counter()
  model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0,
            callbacks=[Clock()])
  times = np.diff([start] + ends)[args.warmup:]
  print(json.dumps(dict(median_step_s=float(np.median(times)),
                        mean_step_s=float(np.mean(times)), losses=losses)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--mode", default="adapter")
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "determinism.jsonl"))
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--deterministic", action="store_true",
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args)

  runs = {False: [], True: []}
  begin = time.time()
  for _ in range(args.rounds):
    for deterministic in (False, True):
      flags = [f"--{k}={getattr(args, k)}" for k in (
          "steps", "warmup", "batch", "seq", "mode", "adapter_size")]
      out = subprocess.run(
          [sys.executable, os.path.abspath(__file__), "--child", *flags]
          + (["--deterministic"] if deterministic else []),
          check=True, capture_output=True, text=True).stdout
      runs[deterministic].append(json.loads(out.strip().splitlines()[-1]))
      print(deterministic, runs[deterministic][-1]["median_step_s"],
            flush=True)
  median = lambda rs: sorted(r["median_step_s"] for r in rs)[len(rs) // 2]
  line = dict(
      name="op_determinism_cost", mode=args.mode, batch=args.batch,
      max_seq_length=args.seq, timed_steps=args.steps, warmup=args.warmup,
      rounds=args.rounds,
      step_s_default=median(runs[False]),
      step_s_deterministic=median(runs[True]),
      ratio=median(runs[True]) / median(runs[False]),
      # Within a mode (the modes draw different dropout masks).
      same_losses=all(r["losses"] == rs[0]["losses"]
                      for rs in runs.values() for r in rs),
      flag="--deterministic: op determinism + generator dropout",
      per_round=[(a["median_step_s"], b["median_step_s"])
                 for a, b in zip(runs[False], runs[True])],
      wall_seconds=int(time.time() - begin), cpus=os.cpu_count(),
      machine=platform.machine(), command=" ".join(sys.argv))
  with open(args.results, "a") as f:
    f.write(json.dumps(line) + "\n")
  print(json.dumps(line))


if __name__ == "__main__":
  main()
