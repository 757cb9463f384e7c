"""What `--dynamic_padding` saves: batch lengths per GLUE task, and the
training step time with and without it on real MRPC.

Part 1 (lengths): the shuffled training batches of 32 of each task, as
run_classifier.py builds them (seed 1); the mean over batches of the
longest example (what dynamic padding pads to, before rounding up to 8),
against max_seq_length.

Part 2 (time): `model.fit` steps of MiniLM with adapters (m=64) on MRPC
train at max_seq_length 128, static vs dynamic padding. Each measurement is
a fresh process; the two alternate over --rounds so that background load
hits both alike. The reported figure is the ratio of the median step times.

Appends one JSON line to --results.

  python benchmarks/dynamic_padding.py      # ~10 min on 2 idle cores
"""

import argparse
import json
import os
import sys
import time

from fit_timing import (GLUE, REPO, alternate_children, append_line,
                        timing_parser)

TASKS = (("MRPC", 128), ("RTE", 128), ("STS-B", 128), ("CoLA", 64),
         ("SST-2", 64))


def _setup():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.path.insert(0, REPO)


def lengths(batch):
  """{task: (max_seq_length, mean longest-in-batch, mean example length)}."""
  _setup()
  import numpy as np  # pylint: disable=g-import-not-at-top
  from keras_adapters.data import glue
  from keras_adapters.data.features import make_dataset
  from keras_adapters.loaders.presets import load_preset
  _, vocab_file, lower = load_preset()
  found = {}
  for task, seq in TASKS:
    processor = glue.get_processor(task.lower())
    examples = processor.get_examples(os.path.join(GLUE, task), "train")
    ds = make_dataset(examples, vocab_file=vocab_file, do_lower_case=lower,
                      max_seq_length=seq, label_list=processor.labels,
                      is_regression=processor.is_regression,
                      batch_size=batch, is_training=True, seed=1,
                      drop_remainder=True)
    longest, every = [], []
    for x, _ in ds:
      n = x["input_mask"].numpy().sum(axis=1)
      longest.append(int(n.max()))
      every.extend(n.tolist())
    found[task] = dict(max_seq_length=seq, mean_batch_longest=float(
        np.mean(longest)), mean_example=float(np.mean(every)),
                       share=float(np.mean(longest)) / seq)
    print(task, found[task], flush=True)
  return found


def child(args):
  """Times warmup + timed steps in this process; prints one JSON line."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from fit_timing import time_mrpc_fit
  times, _ = time_mrpc_fit(args.warmup, args.steps, args.batch,
                           dynamic_padding=args.dynamic)
  print(json.dumps(dict(median_step_s=float(np.median(times)))))


def main():
  parser = timing_parser(__doc__, "dynamic_padding.jsonl")
  parser.add_argument("--dynamic", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args)

  begin = time.time()
  found = lengths(args.batch)
  flags = [f"--steps={args.steps}", f"--warmup={args.warmup}",
           f"--batch={args.batch}"]
  runs = {k: [r["median_step_s"] for r in v] for k, v in alternate_children(
      __file__, args.rounds, flags, "--dynamic").items()}
  median = lambda xs: sorted(xs)[len(xs) // 2]
  line = dict(name="dynamic_padding", batch=args.batch, lengths=found,
              mrpc_step_s_static=median(runs[False]),
              mrpc_step_s_dynamic=median(runs[True]),
              ratio=median(runs[True]) / median(runs[False]),
              per_round=list(zip(runs[False], runs[True])),
              timed_steps=args.steps, warmup=args.warmup, rounds=args.rounds)
  append_line(args.results, line, begin, "dynamic_padding.py")


if __name__ == "__main__":
  main()
