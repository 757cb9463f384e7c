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
import subprocess
import sys
import time

from fit_timing import append_line  # pylint: disable=g-import-not-at-top

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(args):
  """Trains warmup + timed steps in this process; prints one JSON line."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  import tf_keras
  from fit_timing import time_mrpc_fit

  if args.deterministic:  # as driver_flags.strategy_from_flags does
    tf.config.experimental.enable_op_determinism()
    tf_keras.backend.experimental.enable_tf_random_generator()
  times, losses = time_mrpc_fit(args.warmup, args.steps, args.batch,
                                args.seq, args.mode, args.adapter_size)
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
                 for a, b in zip(runs[False], runs[True])])
  append_line(args.results, line, begin, "determinism_cost.py")


if __name__ == "__main__":
  main()
