"""Numerics of `--mixed_precision=mixed_bfloat16` against float32: the same
MiniLM adapter (m=64) training on real MRPC train pairs, from the same seed
and batches, once per policy in this process; reports the per-step loss
curves' difference and both runs' MRPC dev accuracy/F1 (and how often their
dev predictions agree). Appends one JSON line to --results.

This CPU has no bfloat16 hardware: the step-time ratio is recorded only to
show the cost of emulation, not as a speed figure.

  python -m benchmarks.mixed_precision   # ~4 min on one core (bf16 is
                                         # emulated: ~23x slower steps)
"""

import argparse
import os
import time

from benchmarks.fit_timing import GLUE
from benchmarks.fit_timing import REPO
from benchmarks.fit_timing import append_line

POLICIES = ("float32", "mixed_bfloat16")


def _mrpc(split, n=None):
  from keras_adapters.data import glue  # pylint: disable=g-import-not-at-top
  examples = glue.get_processor("mrpc").get_examples(
      os.path.join(GLUE, "MRPC"), split)[:n]
  return ([e.text_a for e in examples], [e.text_b for e in examples]), [
      e.label for e in examples]


def train_and_evaluate(policy, args, train, dev):
  """(per-step losses, seconds per step after the first, dev metrics, dev
  predicted labels) of one run under `policy`."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from keras_adapters import AdapterTextClassifier  # pylint: disable=g-import-not-at-top
  from keras_adapters.training import precision  # pylint: disable=g-import-not-at-top
  with precision.global_policy(policy):
    clf = AdapterTextClassifier.from_preset(
        task_name="MRPC", seed=args.seed, max_seq_length=args.seq)
  losses, ends = [], []

  class Record(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      losses.append(float(logs["loss"]))
      ends.append(time.perf_counter())

  # One Keras epoch of args.steps batches: logs["loss"] is the running mean,
  # so each step's own loss is recovered from consecutive means.
  clf.compile_adamw(args.steps)
  clf.fit(*train, batch_size=args.batch, epochs=1, steps_per_epoch=args.steps,
          verbose=0, callbacks=[Record()], dynamic_padding=False)
  own = [losses[0]] + [(i + 1) * losses[i] - i * losses[i - 1]
                       for i in range(1, len(losses))]
  step_seconds = (ends[-1] - ends[0]) / max(1, len(ends) - 1)
  return own, step_seconds, clf.evaluate_metrics(*dev), list(clf.predict_labels(dev[0]))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=6)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--seq", type=int, default=64)
  parser.add_argument("--seed", type=int, default=42)
  parser.add_argument("--dev_examples", type=int, default=32)
  parser.add_argument("--results", default=os.path.join(
      REPO, "benchmarks", "results", "mixed_precision.jsonl"))
  args = parser.parse_args()
  begin = time.time()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  train, dev = _mrpc("train"), _mrpc("dev", args.dev_examples)
  runs = {p: train_and_evaluate(p, args, train, dev) for p in POLICIES}
  (l32, t32, m32, p32), (l16, t16, m16, p16) = runs.values()
  diffs = [abs(a - b) for a, b in zip(l32, l16)]
  tail = max(1, len(l32) // 6)
  line = dict(
      name="mixed_precision_numerics", steps=args.steps, batch=args.batch,
      max_seq_length=args.seq, seed=args.seed, dev_examples=len(dev[1]),
      loss_max_abs_diff=round(max(diffs), 4),
      loss_mean_abs_diff=round(sum(diffs) / len(diffs), 4),
      last_losses_mean={"float32": round(sum(l32[-tail:]) / tail, 4),
                        "mixed_bfloat16": round(sum(l16[-tail:]) / tail, 4)},
      dev={"float32": {k: round(v, 4) for k, v in m32.items()},
           "mixed_bfloat16": {k: round(v, 4) for k, v in m16.items()}},
      dev_prediction_agreement=round(
          sum(a == b for a, b in zip(p32, p16)) / len(p32), 4),
      bf16_step_time_ratio_not_meaningful=round(t16 / t32, 2),
      note="CPU without bfloat16 hardware: the step-time ratio measures "
           "emulation, not speed")
  append_line(args.results, line, begin, "benchmarks.mixed_precision")


if __name__ == "__main__":
  main()
