"""How many pad tokens each batching feeds, counted without training: the
race's tasks (compare.py), every training example's wordpiece length
(WordPiece of the same vocab, pairs truncated longest-first), and per pass:

  bucketed/W   our --bucket_by_length with buckets W wordpieces wide: each
               bucket's batches cut to its boundary, its last batch topped
               up to the full batch (so this does not depend on the order)
  grouped      what transformers' LengthGroupedSampler does: shuffled
               megabatches of 50 batches, each sorted by length, every batch
               padded to its longest example, the last partial batch dropped
               (one shuffle from --seed)

Runs in .venv-adapterhub (transformers' fast tokenizer, no TensorFlow). The
race measured 11.3 % padding for ours:bucketed/8 on MRPC, and this counts
the same. One JSON line per task goes to --results.

  .venv-adapterhub/bin/python -m benchmarks.adapterhub.padding
"""

import argparse
import collections
import json
import math
import os
import random
import sys

from benchmarks.adapterhub import hf_train

TASKS = {"MRPC": ("../shared/data/glue_data/MRPC", 128),
         "SST-2": ("runs/paper/data/SST-2-first10k", 64)}


def lengths(task, tokenizer):
  data_dir, seq = TASKS[task]
  path = os.path.join(hf_train.REPO, data_dir)
  if not os.path.isdir(path):
    sys.exit(f"padding.py: error: no {task} data at {path}; the SST-2 subset "
             "is written by python -m benchmarks.adapterhub.compare (or "
             "benchmarks.paper.run_plan)")
  examples = hf_train.repo_module("data.glue").get_processor(
      task).get_examples(path, "train")
  pair = examples[0].text_b is not None
  encoded = tokenizer([e.text_a for e in examples],
                      [e.text_b for e in examples] if pair else None,
                      max_length=seq, truncation="longest_first")
  return [len(ids) for ids in encoded["input_ids"]], seq


def bucketed(lengths_, seq, width, batch):
  """(fed tokens, steps) of one pass of our bucketing."""
  counts = collections.Counter(min(math.ceil(n / width) * width, seq)
                               for n in lengths_)
  steps = {b: math.ceil(c / batch) for b, c in counts.items()}
  return sum(b * s * batch for b, s in steps.items()), sum(steps.values())


def grouped(lengths_, batch, seed):
  """(useful tokens, fed tokens, steps) of one LengthGroupedSampler pass."""
  order = list(range(len(lengths_)))
  random.Random(seed).shuffle(order)
  order = order[:len(order) // batch * batch]
  useful, fed, mega = 0, 0, 50 * batch
  for start in range(0, len(order), mega):
    part = sorted(order[start:start + mega], key=lambda i: -lengths_[i])
    for b in range(0, len(part), batch):
      rows = [lengths_[i] for i in part[b:b + batch]]
      useful, fed = useful + sum(rows), fed + max(rows) * len(rows)
  return useful, fed, len(order) // batch


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--widths", default="8,4,2,1")
  parser.add_argument("--seed", type=int, default=42)
  parser.add_argument("--results", default=os.path.join(
      hf_train.REPO, "benchmarks", "results", "padding.jsonl"))
  args = parser.parse_args()
  from transformers import BertTokenizerFast
  tokenizer = BertTokenizerFast(
      os.path.join(hf_train.model_dir(), "vocab.txt"), do_lower_case=True)
  lines = []
  for task in TASKS:
    lengths_, seq = lengths(task, tokenizer)
    useful = sum(lengths_)
    line = dict(name="padding", task=task, max_seq_length=seq,
                batch=args.batch, examples=len(lengths_),
                useful_tokens=useful)
    for width in map(int, args.widths.split(",")):
      fed, steps = bucketed(lengths_, seq, width, args.batch)
      line[f"bucketed/{width}"] = dict(padding=round(1 - useful / fed, 4),
                                       steps=steps)
    kept, fed, steps = grouped(lengths_, args.batch, args.seed)
    line["grouped"] = dict(padding=round(1 - kept / fed, 4), steps=steps)
    line["command"] = " ".join(["python -m benchmarks.adapterhub.padding"] +
                               sys.argv[1:])
    lines.append(line)
  with open(args.results, "a") as f:
    f.writelines(json.dumps(line) + "\n" for line in lines)
  print("\n".join(json.dumps(line) for line in lines))


if __name__ == "__main__":
  main()
