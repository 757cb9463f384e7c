"""Resumable `fit`: checkpoints every N steps (tf.train.CheckpointManager),
restore, divergence stop. The tf.distribute parts are in distribute.py."""

import math
import os

import tensorflow as tf
import tf_keras

from keras_adapters import compat
from keras_adapters.errors import UserInputError
from keras_adapters.errors import first_line
from keras_adapters.saving import faults
from keras_adapters.training import distribute


class _CheckpointEvery(tf_keras.callbacks.Callback):
  """Saves every `every` steps and at `total`, where training stops.

  Stops with a UserInputError when the loss or a trained weight stops being
  finite, so every saved checkpoint holds finite weights (resuming from a
  diverged one would only diverge again).
  """

  def __init__(self, manager, every, total):
    super().__init__()
    self.manager, self.every, self.total = manager, every, total

  def _diverged(self, step, what):
    kept = self.manager.latest_checkpoint
    kept = f"the last good checkpoint {kept} is kept" if kept else (
        "no checkpoint was saved")
    return UserInputError(f"{what} at step {step}; {kept}. Lower "
                          "--learning_rate (and check the data)")

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if logs and not math.isfinite(logs.get("loss", 0.0)):
      raise self._diverged(step, f"loss became {logs['loss']}")
    if step % self.every == 0 or step >= self.total:
      if not all(bool(tf.reduce_all(tf.math.is_finite(v)))
                 for v in self.model.trainable_variables):
        raise self._diverged(step, "a trained weight became inf/nan")
      self.manager.save(checkpoint_number=step)
    if step >= self.total:
      self.model.stop_training = True
    faults.after_step(step)  # test-only: KERAS_ADAPTERS_FAULT=step:N


def _dropout_generators(model):
  """The `tf.random.Generator` of every dropout layer, when dropout draws
  from generators (`--deterministic`), else []. Checkpointed with the model,
  they make a resumed run draw the same masks as an unbroken one."""
  if not tf_keras.backend.experimental.is_tf_random_generator_enabled():
    return []
  generators = (compat.dropout_generator(layer) for layer in model.submodules)
  return [g for g in generators if g is not None]


def checkpoint_manager(model, output_dir):
  faults.hook_checkpoint_writes()  # test-only: KERAS_ADAPTERS_FAULT
  generators = _dropout_generators(model)
  checkpoint = tf.train.Checkpoint(
      model=model, optimizer=model.optimizer,
      **(dict(dropout_generators=generators) if generators else {}))
  return tf.train.CheckpointManager(
      checkpoint, os.path.join(output_dir, "checkpoints"), max_to_keep=3)


def restore_latest(model, output_dir):
  """Restores the newest checkpoint in output_dir; returns its step or 0."""
  manager = checkpoint_manager(model, output_dir)
  if manager.latest_checkpoint:
    try:
      manager.checkpoint.restore(manager.latest_checkpoint).expect_partial()
    # IndexError: a truncated file ("Read less bytes than requested").
    except (tf.errors.OpError, ValueError, IndexError) as e:
      first = first_line(e, 160)
      raise UserInputError(
          f"cannot restore {manager.latest_checkpoint} ({first}); delete "
          f"it to resume from an older one in {manager.directory}, or use a "
          "new --output_dir") from None
    return int(model.optimizer.iterations.numpy())
  return 0


def restore_trained(model, output_dir):
  """Restores the newest checkpoint for evaluation; errors if there is none."""
  step = restore_latest(model, output_dir)
  if not step:
    raise UserInputError(f"no checkpoint in {output_dir}/checkpoints; train "
                         "first (--do_train)")
  return step


def fit_resumable(model, make_dataset, steps_per_epoch, total_steps,
                  output_dir, save_checkpoints_steps, callbacks=()):
  """`model.fit` for `total_steps` steps that resumes from output_dir.

  `make_dataset(skip)` must return the repeated training dataset of global
  batches (static size) positioned `skip` batches in, so a resumed run sees
  the same batches as an unbroken one. Every replica of the model's strategy
  gets its slice of each batch. A non-chief worker restores from output_dir
  but saves into a private directory that it deletes at the end.
  `callbacks` run before the checkpointing one at each step.
  """
  strategy = model.distribute_strategy
  save_dir = distribute.worker_dir(strategy, output_dir)
  manager = checkpoint_manager(model, save_dir)
  start = restore_latest(model, output_dir)
  if start >= total_steps:
    print(f"Training already finished at step {start} (checkpoint in "
          f"{manager.directory}).")
    return start
  if start:
    print(f"Resuming from {manager.latest_checkpoint} at step {start}.")
  epochs = math.ceil(total_steps / steps_per_epoch)
  model.fit(
      distribute.per_replica_input(lambda: make_dataset(start)),
      epochs=epochs, steps_per_epoch=steps_per_epoch,
      initial_epoch=start // steps_per_epoch, verbose=1 if os.isatty(1) else 2,
      callbacks=list(callbacks) + [
          _CheckpointEvery(manager, save_checkpoints_steps, total_steps),
          tf_keras.callbacks.TensorBoard(os.path.join(save_dir, "logs"),
                                         update_freq=50),
      ])
  distribute.remove_worker_dir(strategy, output_dir)
  return int(model.optimizer.iterations.numpy())
