"""What `run_squad.py --group_by_length` and `--bucket_by_length` save: the
padding in one pass of training batches over the real SQuAD v1.1 dev
windows, for the driver's default (every window padded to max_seq_length),
grouped batches (each cut to its longest window) and length buckets (4 equal
widths, each batch cut to its boundary; the top-up copies that fill a
bucket's last batch count as padding). The batches are the ones run_squad.py
trains on (keras_adapters.squad.data.train_dataset, seed 42). A count, not a
timing: a batch's attention and feed-forward work grows with its padded
length. Appends one JSON line per (max_seq_length, mode) to --results.

  python -m benchmarks.squad_padding      # ~1 min on 2 cores
"""

import argparse
import os
import time

from benchmarks.fit_timing import GLUE
from benchmarks.fit_timing import REPO
from benchmarks.fit_timing import append_line

DATA = os.path.dirname(GLUE)
MODES = ("static", "grouped", "bucketed")


def padding(features, batch, mode, seq):
  """(padded tokens, non-padding tokens) over one pass of batches."""
  from keras_adapters.data import bucketing  # pylint: disable=g-import-not-at-top
  from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
  boundaries = bucketing.boundaries_for(seq) if mode == "bucketed" else False
  stream = data.train_dataset(features, batch, seed=42,
                              group_by_length=mode == "grouped",
                              bucket_boundaries=boundaries)
  steps = data.train_steps_per_epoch(features, batch, boundaries)
  padded = useful = 0
  for inputs, *rest in stream.take(steps).as_numpy_iterator():
    mask = inputs["input_mask"]
    weights = rest[1] if len(rest) == 2 else 1
    padded += mask.size
    useful += int((mask.sum(axis=1) * weights).sum())
  return padded, useful


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--max_seq_length", type=int, nargs="+",
                      default=[384, 192])
  parser.add_argument("--doc_stride", type=int, default=128)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "squad_padding.jsonl"))
  args = parser.parse_args()
  from keras_adapters.squad import data  # pylint: disable=g-import-not-at-top
  begin = time.time()
  squad = data.read_squad_file(
      os.path.join(DATA, "squad", "dev-v1.1.json"), is_training=True)
  tokenizer = data.CachedTokenizer(
      os.path.join(DATA, "bert_vocab", "vocab.txt"), do_lower_case=True)
  for seq in args.max_seq_length:
    features = data.convert_examples_to_features(
        squad.examples, tokenizer, is_training=True, max_seq_length=seq,
        doc_stride=args.doc_stride, max_query_length=64)
    for mode in MODES:
      padded, useful = padding(features, args.batch, mode, seq)
      line = dict(max_seq_length=seq, doc_stride=args.doc_stride,
                  batch=args.batch, questions=len(squad.examples),
                  windows=len(features), mode=mode, padded_tokens=padded,
                  useful_tokens=useful,
                  padding_share=round(1 - useful / padded, 4))
      print(line)
      append_line(args.results, line, begin, "benchmarks.squad_padding")


if __name__ == "__main__":
  main()
