"""What `--deterministic` costs in speed: TF op determinism plus dropout
drawn from `tf.random.Generator`s (what the drivers' flag turns on).

Times Keras `model.fit` steps of the driver's model (all-MiniLM-L6-v2 with
adapters, Model Garden AdamW) on real MRPC train pairs, fed as the driver
feeds them (fit_timing.py), with and without op determinism. Each
measurement is a fresh child process (the setting is process-wide); the
modes alternate over --rounds so that background load hits both alike.
Also records whether the runs of each mode give the same losses (the two
modes draw different dropout masks, so they differ). Appends one JSON line
to --results.

  python -m benchmarks.determinism_cost  # 3 rounds x 10 timed steps, 32x128
"""

import argparse
import json
import os
import time

from benchmarks.fit_timing import alternate_children
from benchmarks.fit_timing import append_line
from benchmarks.fit_timing import time_mrpc_fit
from benchmarks.fit_timing import timing_parser


def child(args):
  """Trains warmup + timed steps in this process; prints one JSON line."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top

  if args.deterministic:  # as driver_flags.strategy_from_flags does
    tf.config.experimental.enable_op_determinism()
    tf_keras.backend.experimental.enable_tf_random_generator()
  times, losses = time_mrpc_fit(args.warmup, args.steps, args.batch,
                                args.seq, args.mode, args.adapter_size)
  print(json.dumps(dict(median_step_s=float(np.median(times)),
                        mean_step_s=float(np.mean(times)), losses=losses)))


def main():
  parser = timing_parser(__doc__, "determinism.jsonl")
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--mode", default="adapter")
  parser.add_argument("--adapter_size", type=int, default=64)
  parser.add_argument("--deterministic", action="store_true",
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args)

  begin = time.time()
  flags = [f"--{k}={getattr(args, k)}" for k in (
      "steps", "warmup", "batch", "seq", "mode", "adapter_size")]
  runs = alternate_children("benchmarks.determinism_cost", args.rounds, flags,
                            "--deterministic")
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
  append_line(args.results, line, begin, "benchmarks.determinism_cost")


if __name__ == "__main__":
  main()
