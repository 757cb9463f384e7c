"""What `--bucket_by_length` and `--dynamic_padding` save: `model.fit`
training throughput of MiniLM with adapters (m=64) on real MRPC train pairs
at max_seq_length 128, for the three ways to batch:

  static    every batch padded to max_seq_length (the driver's default)
  dynamic   each batch cut to its longest pair, rounded up to 8
  bucketed  each batch one length bucket (32/64/96/128), cut to its boundary

The figure is useful (non-padding, weight-1) training tokens per second over
the timed steps, and the step time; both from the same batches the driver
trains on (AdapterTextClassifier.train_batches, seed 42). Each measurement is
a fresh process; the modes alternate over --rounds so that background load
hits all alike. Appends one JSON line to --results.

  python -m benchmarks.batching      # ~10 min on 2 idle cores
"""

import argparse
import json
import os
import statistics
import subprocess
import time

from benchmarks.fit_timing import REPO
from benchmarks.fit_timing import append_line
from benchmarks.fit_timing import module_command
from benchmarks.fit_timing import mrpc_train

MODES = ("static", "dynamic", "bucketed")


def child(args):
  """Times warmup + timed steps of one mode here; prints one JSON line."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top

  x, y = mrpc_train()
  clf = AdapterTextClassifier.from_preset(task_name="MRPC", seed=42,
                                          max_seq_length=args.seq)
  total = args.warmup + args.steps
  make = lambda: clf.train_batches(  # a fresh dataset: the same first pass
      x, y, args.batch, dynamic_padding=args.mode == "dynamic",
      bucket_by_length=args.mode == "bucketed")
  useful, padded = [], []
  for batch in make()[0].take(total):
    mask = batch[0]["input_mask"].numpy()
    weight = batch[2].numpy() if len(batch) == 3 else np.ones(len(mask))
    useful.append(int((mask.sum(axis=1) * weight).sum()))
    padded.append(int(mask.size))
  clf.compile_adamw(total)
  ends = []

  class Clock(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      ends.append(time.perf_counter())

  start = time.perf_counter()
  tf_keras.Model.fit(clf, make()[0], steps_per_epoch=total, epochs=1,
                     verbose=0, callbacks=[Clock()])
  times = np.diff([start] + ends)[args.warmup:]
  print(json.dumps(dict(
      median_step_s=float(np.median(times)),
      useful_tokens_per_s=sum(useful[args.warmup:]) / float(times.sum()),
      padding_share=1 - sum(useful[args.warmup:]) / sum(padded[args.warmup:]),
      steps_per_epoch=make()[1])))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--steps", type=int, default=30, help="timed steps")
  parser.add_argument("--warmup", type=int, default=4,
                      help="untimed first steps (tracing: one per shape)")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--seq", type=int, default=128)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "batching.jsonl"))
  parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.mode:
    return child(args)
  begin = time.time()
  runs = {mode: [] for mode in MODES}
  flags = [f"--steps={args.steps}", f"--warmup={args.warmup}",
           f"--batch={args.batch}", f"--seq={args.seq}"]
  for _ in range(args.rounds):
    for mode in MODES:
      out = subprocess.run(
          module_command("benchmarks.batching", f"--mode={mode}", *flags),
          cwd=REPO, check=True, capture_output=True, text=True).stdout
      runs[mode].append(json.loads(out.strip().splitlines()[-1]))
      print(mode, runs[mode][-1], flush=True)
  rate = {m: statistics.median([r["useful_tokens_per_s"] for r in runs[m]])
          for m in MODES}
  line = dict(name="batching", task="MRPC", batch=args.batch,
              max_seq_length=args.seq, useful_tokens_per_s=rate,
              speedup_vs_static={m: rate[m] / rate["static"] for m in MODES},
              bucketed_vs_dynamic=rate["bucketed"] / rate["dynamic"],
              padding_share={m: runs[m][0]["padding_share"] for m in MODES},
              steps_per_epoch={m: runs[m][0]["steps_per_epoch"]
                               for m in MODES},
              per_round=runs, timed_steps=args.steps, warmup=args.warmup,
              rounds=args.rounds)
  append_line(args.results, line, begin, "benchmarks.batching")


if __name__ == "__main__":
  main()
