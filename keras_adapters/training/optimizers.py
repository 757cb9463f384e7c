"""The optimizer: Google BERT's AdamW from Model Garden, default rates."""

import tensorflow as tf
from official.nlp import optimization

from keras_adapters import compat


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
    compat.create_optimizer_slots(model.optimizer, model.trainable_variables)
    model.compiled_loss.build(y_pred)
    model.compiled_metrics.build(y_pred, y_true)
