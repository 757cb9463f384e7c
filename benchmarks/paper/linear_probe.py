"""How much of a task the frozen backbone already carries, per pooling: a
logistic regression on frozen all-MiniLM-L6-v2 features (whether the
readout is the knob the adapters lack on RTE).

Features of each train and dev pair, no training of the backbone: the
[CLS] vector, the masked mean over tokens (what all-MiniLM-L6-v2 was trained
to embed with), and the pooled output (tanh(dense([CLS])); this checkpoint's
pooler is untrained). For each, scikit-learn's LogisticRegressionCV picks C
by 5-fold cross-validation on train; the dev accuracy (and, with two classes,
the majority-class rate beside it) is appended as one JSON line.

  python -m benchmarks.paper.linear_probe --task RTE  # ~10 min, one core
"""

import argparse
import os
import time
import warnings

from benchmarks.fit_timing import GLUE
from benchmarks.fit_timing import REPO
from benchmarks.fit_timing import append_line

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

POOLINGS = ("cls", "mean", "pooler")


def features(pretrained, processor, examples, max_seq_length, batch_size):
  """({pooling: float array [examples, width]} of the frozen encoder, the
  examples' class indices as make_dataset encodes them)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras_adapters.data.features import make_dataset  # pylint: disable=g-import-not-at-top
  dataset = make_dataset(
      examples, vocab_file=pretrained.vocab_file,
      do_lower_case=pretrained.do_lower_case, max_seq_length=max_seq_length,
      label_list=processor.labels, is_regression=processor.is_regression,
      batch_size=batch_size, is_training=False, dynamic_padding=True)
  out, labels = {p: [] for p in POOLINGS}, []
  for inputs, label in dataset:
    labels.append(label.numpy())
    outputs = pretrained.encoder(inputs, training=False)
    sequence = outputs["sequence_output"]
    mask = tf.cast(inputs["input_mask"], sequence.dtype)[:, :, None]
    out["cls"].append(sequence[:, 0].numpy())
    out["mean"].append((tf.reduce_sum(sequence * mask, 1) /
                        tf.reduce_sum(mask, 1)).numpy())
    out["pooler"].append(outputs["pooled_output"].numpy())
  return {p: np.concatenate(v) for p, v in out.items()}, np.concatenate(
      labels)


def probe(train_x, train_y, dev_x, dev_y, seed):
  """Dev accuracy of a cross-validated logistic regression."""
  from sklearn.linear_model import LogisticRegressionCV  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  model = make_pipeline(StandardScaler(), LogisticRegressionCV(
      Cs=10, cv=5, max_iter=2000, random_state=seed))
  with warnings.catch_warnings():  # sklearn 1.9's notice of 1.10's attributes
    warnings.simplefilter("ignore", FutureWarning)
    model.fit(train_x, train_y)
  return float(model.score(dev_x, dev_y))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", default="RTE")
  parser.add_argument("--max_seq_length", type=int, default=128)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "linear_probe.jsonl"))
  args = parser.parse_args()
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  from keras_adapters.errors import UserInputError  # pylint: disable=g-import-not-at-top
  folder = os.path.join(GLUE, args.task)
  if not os.path.isdir(folder):
    have = sorted(os.listdir(GLUE)) if os.path.isdir(GLUE) else []
    parser.error(f"--task {args.task}: no {folder}; give one of "
                 f"{', '.join(have)}" if have else f"--task {args.task}: no "
                 f"{folder}; put the GLUE data in {GLUE} (../shared/data)")
  try:
    processor = glue.get_processor(args.task.lower())
    train, dev = (processor.get_examples(folder, s) for s in ("train", "dev"))
  except UserInputError as e:
    parser.error(f"--task {args.task}: {e}")
  if processor.is_regression:
    parser.error(f"--task {args.task} is a regression task; give a "
                 "classification task (e.g. RTE, MRPC, CoLA, SST-2)")
  import numpy as np  # pylint: disable=g-import-not-at-top
  from keras_adapters.loaders.pretrained import load_pretrained  # pylint: disable=g-import-not-at-top
  begin = time.time()
  pretrained = load_pretrained()
  (train_x, train_y), (dev_x, dev_y) = (
      features(pretrained, processor, e, args.max_seq_length, args.batch_size)
      for e in (train, dev))
  majority = max(np.bincount(dev_y)) / len(dev_y)
  line = dict(name=f"linear_probe_{args.task.lower()}", task=args.task,
              model=pretrained.description, train_examples=len(train),
              dev_examples=len(dev), max_seq_length=args.max_seq_length,
              dev_majority_class=round(majority, 6),
              dev_accuracy={p: round(probe(train_x[p], train_y, dev_x[p],
                                           dev_y, args.seed), 6)
                            for p in POOLINGS})
  append_line(args.results, line, begin, "benchmarks.paper.linear_probe")


if __name__ == "__main__":
  main()
