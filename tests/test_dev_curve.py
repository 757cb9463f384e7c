"""callbacks.DevCurve (run_classifier.py --eval_every_epochs) on a stand-in
model: which steps evaluate, the file it writes, and resuming (no training)."""

import json
import types

import tensorflow as tf

from keras_adapters.training import callbacks


def _callback(path, step, every=1, steps_per_epoch=3, write=True):
  """A DevCurve on a stand-in model at optimizer step `step`; its evaluate()
  returns the step it was called at."""
  model = types.SimpleNamespace(optimizer=types.SimpleNamespace(
      iterations=tf.Variable(step, dtype=tf.int64)))
  callback = callbacks.DevCurve(
      lambda: dict(accuracy=int(model.optimizer.iterations.numpy()) / 100),
      steps_per_epoch, every, str(path), write=write)
  callback.set_model(model)
  callback.on_train_begin()
  return callback


def _train(callback, to_step):
  iterations = callback.model.optimizer.iterations
  while int(iterations.numpy()) < to_step:
    iterations.assign_add(1)
    callback.on_train_batch_end(0)


def _lines(path):
  return [json.loads(line) for line in path.read_text().splitlines()]


def test_evaluates_at_the_end_of_every_nth_epoch(tmp_path):
  path = tmp_path / "dev_curve.jsonl"
  _train(_callback(path, 0), 7)
  assert _lines(path) == [dict(epoch=1, step=3, eval_accuracy=0.03),
                          dict(epoch=2, step=6, eval_accuracy=0.06)]
  _train(_callback(path, 0, every=2), 7)  # a fresh run: the file restarts
  assert _lines(path) == [dict(epoch=2, step=6, eval_accuracy=0.06)]


def test_a_resumed_run_neither_repeats_nor_keeps_unreached_epochs(tmp_path):
  path = tmp_path / "dev_curve.jsonl"
  _train(_callback(path, 0), 7)  # killed at step 7, checkpoint at step 4
  _train(_callback(path, 4), 9)  # resumed: Keras epochs start mid-epoch
  assert [(l["epoch"], l["step"]) for l in _lines(path)] == [
      (1, 3), (2, 6), (3, 9)]
  _train(_callback(path, 9), 9)  # resumed at the end: nothing to add
  assert len(_lines(path)) == 3


def test_a_non_chief_evaluates_but_writes_nothing(tmp_path):
  path = tmp_path / "dev_curve.jsonl"
  callback = _callback(path, 0, write=False)
  _train(callback, 3)
  assert callback.lines == [dict(epoch=1, step=3, eval_accuracy=0.03)]
  assert not path.exists()
