"""Callbacks of the drivers' `fit`: dev curve per epoch, trained tokens."""

import json
import os
import time

import tensorflow as tf
import tf_keras

from keras_adapters.saving.atomic import write_atomically


class DevCurve(tf_keras.callbacks.Callback):
  """Evaluates dev after every `every`-th epoch; appends one JSON line
  {"epoch", "step", "eval_<metric>": ...} per evaluation to `path`.

  Epochs are counted in optimizer steps, not Keras epochs: after a resume
  `fit`'s epochs start mid-epoch. At the start of training, lines of steps
  past the restored one are dropped (a fresh run empties the file), so a
  resumed run neither repeats an epoch nor keeps one it has not reached.
  `evaluate()` returns {metric: value}; `write` is False on non-chief
  workers (they still evaluate: prediction is collective).
  """

  def __init__(self, evaluate, steps_per_epoch, every, path, write=True):
    super().__init__()
    self.evaluate, self.period = evaluate, steps_per_epoch * every
    self.steps_per_epoch, self.path, self.write = steps_per_epoch, path, write
    self.lines = []

  def on_train_begin(self, logs=None):
    start = int(self.model.optimizer.iterations.numpy())
    self.lines = [l for l in read_dev_curve(self.path) if l["step"] <= start]
    if self.write:
      write_atomically(self.path, "".join(
          json.dumps(l) + "\n" for l in self.lines))

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if step % self.period:
      return
    line = dict(epoch=step // self.steps_per_epoch, step=step)
    line.update({f"eval_{k}": round(v, 6)
                 for k, v in sorted(self.evaluate().items())})
    print(f"dev after epoch {line['epoch']}: " + json.dumps(line), flush=True)
    self.lines.append(line)
    if self.write:  # rewritten whole: a crash leaves no half line
      write_atomically(self.path, "".join(
          json.dumps(l) + "\n" for l in self.lines))


class TrainTokens(tf_keras.callbacks.Callback):
  """Prints, after `fit`, each epoch's fit time and the non-pad wordpieces
  it trained on (useful tokens/s, for benchmarks/adapterhub/compare.py).

  The tokens are counted after training, untimed, on a fresh copy of the
  batches `fit` drew: `make_dataset(skip)` must return the same seeded
  batches (as for `fit_resumable`). An example counts its input_mask times
  its sample weight (bucketing's top-up copies weigh 0).
  """

  def __init__(self, make_dataset):
    super().__init__()
    self.make_dataset, self.times, self.steps = make_dataset, [], []

  def _mark(self):
    self.times.append(time.perf_counter())
    self.steps.append(int(self.model.optimizer.iterations.numpy()))

  def on_train_begin(self, logs=None):
    self.times, self.steps = [], []
    self._mark()

  def on_epoch_end(self, epoch, logs=None):
    self._mark()

  def on_train_end(self, logs=None):
    ended = time.time()
    batches = iter(self.make_dataset(self.steps[0]))
    useful = fed = 0
    for epoch in range(1, len(self.steps)):
      steps = self.steps[epoch] - self.steps[epoch - 1]
      seconds = self.times[epoch] - self.times[epoch - 1]
      tokens = [sum(t) for t in zip(
          (0, 0), *(_tokens(next(batches)) for _ in range(steps)))]
      useful, fed = useful + tokens[0], fed + tokens[1]
      print(f"Train tokens: epoch {epoch}: {steps} steps in {seconds:.2f} s, "
            f"{tokens[0]} non-pad of {tokens[1]} tokens")
    seconds = self.times[-1] - self.times[0]
    print(f"Train tokens: in all {self.steps[-1] - self.steps[0]} steps in "
          f"{seconds:.2f} s, {useful} non-pad of {fed} tokens "
          f"({useful / max(seconds, 1e-9):.1f} non-pad tokens/s); training "
          f"ended at unix time {ended:.3f}", flush=True)


def _tokens(batch):
  """(non-pad, all) tokens of a `(features, labels[, sample_weights])`
  training batch, non-pad ones weighted by the sample weights."""
  mask = tf.cast(batch[0]["input_mask"], tf.float32)
  weights = batch[2] if len(batch) == 3 else tf.ones(tf.shape(mask)[:1])
  return (int(tf.reduce_sum(tf.reduce_sum(mask, 1) * weights)),
          int(tf.size(mask)))


def read_dev_curve(path):
  """The lines DevCurve wrote to `path` ([] if there is no file)."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]
