"""Mixed precision (--mixed_precision) through Keras' global dtype policy,
as Model Garden's runtime sets it (official.modeling.performance).

Under `mixed_bfloat16` (TPU) or `mixed_float16` (GPU) the variables stay
float32 and most layers compute in 16 bits. What stays float32: Model
Garden's LayerNorms (and so the blocks' residual-add outputs), the adapters'
skip adds (keras_adapters/layers/adapter_layer.py), the logits and the loss.
`mixed_float16` adds dynamic loss scaling (a `LossScaleOptimizer`).
"""

import contextlib

import tensorflow as tf
import tf_keras
from official.modeling import performance

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
_DTYPES = dict(float32=tf.float32, mixed_bfloat16=tf.bfloat16,
               mixed_float16=tf.float16)


@contextlib.contextmanager
def global_policy(name):
  """Sets Keras' global policy to `name` (one of POLICIES) for the layers
  built inside, and restores the previous one on exit."""
  if name not in _DTYPES:
    raise ValueError(f"unknown mixed precision {name!r}; choose one of "
                     f"{', '.join(POLICIES)}")
  previous = tf_keras.mixed_precision.global_policy()
  performance.set_mixed_precision_policy(_DTYPES[name])
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def configure_optimizer(optimizer, policy):
  """`optimizer`, wrapped in a dynamic `LossScaleOptimizer` when `policy`
  (a Keras policy or its name) is mixed_float16: float16 gradients
  underflow without loss scaling; bfloat16 has float32's range."""
  name = getattr(policy, "name", policy)
  return performance.configure_optimizer(
      optimizer, use_float16=name == "mixed_float16")


def float32_logits(logits):
  """Logits (any structure) cast to float32, for the loss and softmax."""
  return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), logits)
