"""What `--dynamic_padding` saves: batch lengths per GLUE task, and the
training step time with and without it on real MRPC.

Part 1 (lengths): the shuffled training batches of 32 of each task, as
run_classifier.py builds them (`AdapterTextClassifier.train_batches`, seed
1, one epoch); the mean over batches of the longest example (what dynamic
padding pads to, before rounding up to 8), against max_seq_length.

Part 2 (time): `model.fit` steps of MiniLM with adapters (m=64) on MRPC
train at max_seq_length 128, static vs dynamic padding (fit_timing.py: the
driver's model, optimizer and training batches). Each measurement is a
fresh process; the two alternate over --rounds so that background load
hits both alike. The reported figure is the ratio of the median step times.

Appends one JSON line to --results.

  python -m benchmarks.dynamic_padding      # ~10 min on 2 idle cores
"""

import argparse
import json
import os
import time

from benchmarks.fit_timing import GLUE
from benchmarks.fit_timing import alternate_children
from benchmarks.fit_timing import append_line
from benchmarks.fit_timing import time_mrpc_fit
from benchmarks.fit_timing import timing_parser

TASKS = (("MRPC", 128), ("RTE", 128), ("STS-B", 128), ("CoLA", 64),
         ("SST-2", 64))


def training_batches(task, seq, batch):
  """One epoch of `task`'s training batches (features, labels) as
  run_classifier.py --seed=1 --max_seq_length=`seq` trains on them, padded
  to `seq` (no dynamic padding: the lengths are read from the masks)."""
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  processor = glue.get_processor(task.lower())
  examples = processor.get_examples(os.path.join(GLUE, task), "train")
  texts_a = [e.text_a for e in examples]
  x = (texts_a, [e.text_b for e in examples]) if processor.is_pair else (
      texts_a)
  clf = AdapterTextClassifier.from_preset(task_name=task, seed=1,
                                          max_seq_length=seq)
  ds, steps = clf.train_batches(x, [e.label for e in examples], batch)
  return ds.take(steps)


def lengths(batch):
  """{task: (max_seq_length, mean longest-in-batch, mean example length)}."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import numpy as np  # pylint: disable=g-import-not-at-top
  found = {}
  for task, seq in TASKS:
    longest, every = [], []
    for x, _ in training_batches(task, seq, batch):
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
      "benchmarks.dynamic_padding", args.rounds, flags, "--dynamic").items()}
  median = lambda xs: sorted(xs)[len(xs) // 2]
  line = dict(name="dynamic_padding", batch=args.batch, lengths=found,
              mrpc_step_s_static=median(runs[False]),
              mrpc_step_s_dynamic=median(runs[True]),
              ratio=median(runs[True]) / median(runs[False]),
              per_round=list(zip(runs[False], runs[True])),
              timed_steps=args.steps, warmup=args.warmup, rounds=args.rounds)
  append_line(args.results, line, begin, "benchmarks.dynamic_padding")


if __name__ == "__main__":
  main()
