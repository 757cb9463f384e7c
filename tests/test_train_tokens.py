"""callbacks.TrainTokens (run_classifier.py --report_train_tokens) on a
stand-in model: per-epoch steps, time and non-pad tokens counted on a fresh
copy of the batches, sample weights honoured, resume counted from its step."""

import re
import time
import types

import tensorflow as tf

from keras_adapters.training import callbacks


def _batches(skip, weights=True):
  """Batch i (of 2 rows, 4 wordpieces) has 1 + i % 4 real tokens per row;
  with `weights`, its second row has sample weight 0."""
  def batch(i):
    mask = tf.sequence_mask(tf.fill([2], 1 + i % 4), 4, tf.int32)
    features = dict(input_word_ids=mask, input_mask=mask)
    labels = tf.zeros([2], tf.int32)
    if not weights:
      return features, labels
    return features, labels, tf.constant([1.0, 0.0])
  return tf.data.Dataset.range(skip, 100).map(
      lambda i: batch(tf.cast(i, tf.int32)))


def _report(capsys, epochs, start=0, weights=True):
  """Runs the callback over `epochs` (steps each) from step `start`."""
  model = types.SimpleNamespace(optimizer=types.SimpleNamespace(
      iterations=tf.Variable(start, dtype=tf.int64)))
  callback = callbacks.TrainTokens(lambda skip: _batches(skip, weights))
  callback.set_model(model)
  callback.on_train_begin()
  for epoch, steps in enumerate(epochs):
    model.optimizer.iterations.assign_add(steps)
    callback.on_epoch_end(epoch)
  callback.on_train_end()
  return capsys.readouterr().out


def _useful(first, steps, per_row_weighted=1):
  return sum((1 + i % 4) * per_row_weighted for i in range(first,
                                                           first + steps))


def test_counts_each_epochs_weighted_non_pad_tokens(capsys):
  before = time.time()
  out = _report(capsys, [3, 2])
  after = time.time()
  epochs = re.findall(r"epoch (\d): (\d+) steps in [\d.]+ s, (\d+) non-pad "
                      r"of (\d+) tokens", out)
  assert epochs == [("1", "3", str(_useful(0, 3)), "24"),
                    ("2", "2", str(_useful(3, 2)), "16")]
  total = re.search(r"in all 5 steps in ([\d.]+) s, (\d+) non-pad of 40 "
                    r"tokens .*ended at unix time (\d+\.\d+)", out)
  assert int(total[2]) == _useful(0, 5)
  assert before <= float(total[3]) <= after + 1e-3  # printed to 1 ms


def test_without_weights_every_row_counts_and_resume_skips(capsys):
  out = _report(capsys, [2], start=5, weights=False)
  assert "in all 2 steps" in out
  assert f"{_useful(5, 2, per_row_weighted=2)} non-pad of 16 tokens" in out
  seconds = float(re.search(r"in all 2 steps in ([\d.]+) s", out)[1])
  rate = float(re.search(r"\(([\d.]+) non-pad tokens/s", out)[1])
  useful = _useful(5, 2, per_row_weighted=2)
  # The true time lies within 5 ms of the printed one (2 decimals).
  assert rate >= useful / (seconds + 0.005) * 0.999
  if seconds >= 0.01:
    assert rate <= useful / (seconds - 0.005) * 1.001
