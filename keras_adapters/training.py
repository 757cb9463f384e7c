"""Plumbing shared by the drivers: optimizer, resumable `fit` (the
tf.distribute parts are in keras_adapters/distribute.py)."""

import json
import math
import os
import tempfile
import time

import tensorflow as tf
import tf_keras
from official.nlp import optimization

from keras_adapters import distribute
from keras_adapters import faults
from keras_adapters.errors import UserInputError

# Used when --learning_rate is not given: the paper sweeps adapters over
# {3e-4, 1e-3, 3e-3} and full fine-tuning over {2e-5, 5e-5, 1e-4}.
DEFAULT_LEARNING_RATES = dict(adapter=1e-3, layer_norm=1e-3, head=1e-3,
                              top_k=1e-4, full=5e-5,
                              fusion=5e-5)  # Pfeiffer et al. (2021)


def create_optimizer(learning_rate, num_train_steps, warmup_proportion):
  """Google BERT's AdamW: linear warmup, linear decay to 0, weight decay 0.01
  except LayerNorm and biases, global-norm clipping at 1.0 (Model Garden)."""
  return optimization.create_optimizer(
      init_lr=learning_rate, num_train_steps=num_train_steps,
      num_warmup_steps=int(num_train_steps * warmup_proportion),
      optimizer_type="adamw")


def create_step_variables(model, y_true):
  """Creates now the variables Keras would create in the first train step
  (optimizer slots, compiled loss and metric trackers). A tf.function whose
  first call creates variables traces twice; this saves the second trace
  of the train step (seconds of graph building per run). `y_true`: one
  example's labels, structured as fit's."""
  y_pred = tf.nest.map_structure(
      lambda t: tf.zeros([1] + [d or 1 for d in t.shape[1:]], t.dtype),
      model.output)
  with model.distribute_strategy.scope():
    optimizer = model.optimizer
    if hasattr(optimizer, "_create_all_weights"):  # tf_keras' legacy OptimizerV2
      optimizer._create_all_weights(model.trainable_variables)  # pylint: disable=protected-access
    else:
      optimizer.build(model.trainable_variables)
    model.compiled_loss.build(y_pred)
    model.compiled_metrics.build(y_pred, y_true)


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


def _dropout_generators(model):
  """The `tf.random.Generator` of every dropout layer, when dropout draws
  from generators (`--deterministic`), else []. Checkpointed with the model,
  they make a resumed run draw the same masks as an unbroken one."""
  if not tf_keras.backend.experimental.is_tf_random_generator_enabled():
    return []
  return [layer._random_generator._generator  # pylint: disable=protected-access
          for layer in model.submodules
          if getattr(getattr(layer, "_random_generator", None), "_generator",
                     None) is not None]


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
      first = str(e).strip().splitlines()[0][:160]
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


def write_atomically(path, text):
  """Writes `text` to `path` via a temp file + rename."""
  # Hidden and named after `path`: a crash leaves `.name.XXXX.tmp` behind,
  # never a file that passes for a result.
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                             prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp")
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    f.write(text)
    faults.mid_write("results", tmp, f)  # test-only: KERAS_ADAPTERS_FAULT
  os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone
  os.replace(tmp, path)
