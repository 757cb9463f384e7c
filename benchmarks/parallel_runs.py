"""Is a sweep faster as two 1-thread runs at once than as one 2-thread run?

Times `model.fit` steps of MiniLM with adapters (m=64) on real MRPC train
with dynamic padding, as the paper sweep trains (fit_timing.py: the
driver's model, optimizer and training batches): (a) one process with
TensorFlow's default threads, alone; (b) two processes at once, each with
TF_NUM_INTRAOP_THREADS=1 and TF_NUM_INTEROP_THREADS=1. The two alternate
over --rounds. Training throughput in steps/s: (a) 1 / its median step,
(b) the sum of 1 / each process's median step. Appends one JSON line.

  python -m benchmarks.parallel_runs      # ~10 min on 2 idle cores
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.fit_timing import REPO
from benchmarks.fit_timing import append_line
from benchmarks.fit_timing import module_command
from benchmarks.fit_timing import time_mrpc_fit


def child(args):
  import numpy as np  # pylint: disable=g-import-not-at-top
  times, _ = time_mrpc_fit(args.warmup, args.steps, dynamic_padding=True)
  print(json.dumps(dict(median_step_s=float(np.median(times)))))


def start(args, one_thread):
  env = dict(os.environ)
  if one_thread:
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
  return subprocess.Popen(
      module_command("benchmarks.parallel_runs", "--child",
                     f"--steps={args.steps}", f"--warmup={args.warmup}"),
      cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)


def finish(process):
  out, _ = process.communicate()
  if process.returncode:
    sys.exit(f"parallel_runs.py: a child failed (exit {process.returncode})")
  return json.loads(out.strip().splitlines()[-1])["median_step_s"]


def summary(single, pairs):
  one = 1 / statistics.median(single)
  two = statistics.median([sum(1 / s for s in pair) for pair in pairs])
  return dict(steps_per_s_one_run=one, steps_per_s_two_runs=two,
              throughput_ratio=two / one)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--steps", type=int, default=20, help="timed steps")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "parallel_runs.jsonl"))
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args)

  begin = time.time()
  single, pairs = [], []
  for _ in range(args.rounds):
    single.append(finish(start(args, one_thread=False)))
    both = [start(args, one_thread=True) for _ in range(2)]
    pairs.append([finish(p) for p in both])
    print("one 2-thread run", single[-1], "| two 1-thread runs", pairs[-1],
          flush=True)
  line = dict(name="parallel_runs", single_step_s=single, pair_step_s=pairs,
              **summary(single, pairs), timed_steps=args.steps,
              warmup=args.warmup, rounds=args.rounds)
  append_line(args.results, line, begin, "benchmarks.parallel_runs")


if __name__ == "__main__":
  main()
