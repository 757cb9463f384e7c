"""The bottleneck adapter of Houlsby et al. (2019), Figure 2 (right)."""

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterLayer(tf_keras.layers.Layer):
  """Bottleneck adapter: `x + up(activation(down(x)))`.

  Projects the d-dimensional input down to `adapter_size` (m), applies a
  nonlinearity, projects back up to d and adds the input (the internal skip).
  Both projections start from a truncated normal with standard deviation
  `init_scale` and zero biases, so a new adapter is close to the identity
  (exactly the identity when `init_scale=0`). It holds 2md + d + m weights.

  Under a mixed policy (keras_adapters/training/precision.py) the projections compute
  in 16 bits but the skip add runs in float32 and the output is float32: a
  near-identity adapter's update is ~1e-3 of x, below bfloat16's precision
  (2^-8), and would be rounded away in a 16-bit add.

  Example:

  >>> import tensorflow as tf
  >>> adapter = AdapterLayer(adapter_size=8, init_scale=0.0)
  >>> x = tf.ones([2, 5, 16])
  >>> bool(tf.reduce_all(adapter(x) == x))
  True
  >>> adapter.count_params()  # 2*16*8 + 16 + 8
  280
  """

  def __init__(self, adapter_size=64, init_scale=1e-3, activation="gelu",
               **kwargs):
    super().__init__(**kwargs)
    if adapter_size < 1:
      raise ValueError(f"adapter_size must be >= 1, got {adapter_size}")
    if init_scale < 0:
      raise ValueError(f"init_scale must be >= 0, got {init_scale}")
    self.adapter_size = adapter_size
    self.init_scale = init_scale
    self.activation = tf_keras.activations.get(activation)

  def build(self, input_shape):
    hidden_size = input_shape[-1]
    self.down_project = tf_keras.layers.Dense(
        self.adapter_size, kernel_initializer=self._initializer(),
        name="down_project")
    self.up_project = tf_keras.layers.Dense(
        hidden_size, kernel_initializer=self._initializer(), name="up_project")
    super().build(input_shape)

  def _initializer(self):
    if self.init_scale == 0:
      return tf_keras.initializers.Zeros()
    return tf_keras.initializers.TruncatedNormal(stddev=self.init_scale)

  def call(self, inputs, residual=None, scale=1.0):
    """`residual + scale * up(activation(down(inputs)))`; `residual` defaults
    to `inputs` (the internal skip)."""
    residual = inputs if residual is None else residual
    return add_update(residual, self.update(inputs), scale)

  def update(self, inputs):
    """`up(activation(down(inputs)))`: what the adapter adds."""
    return self.up_project(self.activation(self.down_project(inputs)))

  def get_config(self):
    config = super().get_config()
    config.update(
        adapter_size=self.adapter_size,
        init_scale=self.init_scale,
        activation=tf_keras.activations.serialize(self.activation))
    return config


def add_update(residual, update, scale=1.0):
  """`residual + scale * update`, in float32 when either is 16-bit (see
  AdapterLayer)."""
  if scale != 1.0:
    update = update * scale
  if update.dtype != residual.dtype or residual.dtype in (tf.bfloat16,
                                                          tf.float16):
    return tf.cast(residual, tf.float32) + tf.cast(update, tf.float32)
  return residual + update
