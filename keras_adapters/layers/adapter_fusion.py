"""AdapterFusion (Pfeiffer et al., EACL 2021): a learned mix of several
trained adapters in place of one."""

import tensorflow as tf
import tf_keras

from keras_adapters.layers.adapter_layer import AdapterLayer
from keras_adapters.layers.adapter_layer import add_update


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterFusion(tf_keras.layers.Layer):
  """N adapters side by side and an attention that mixes their updates.

  For the adapters' input x, adapter i adds u_i = up(act(down(x))). Fusion
  returns `residual + scale * V(sum_i p_i u_i)` with, per token,
  p = softmax_i((Q x) . (K u_i)): Pfeiffer et al.'s Figure 2, as AdapterHub's
  DynamicAdapterFusionConfig (query from the adapters' input, no temperature,
  value applied to the mix). Q and K start from BERT's init (truncated normal,
  0.02), V from the identity, and a regularizer adds
  `value_regularization * ||V - I||^2` to the loss.

  It takes the calls an `AdapterLayer` takes, so every placement of
  AdapterTransformerBlock can hold one. The adapters (`adapter_0`, ...) come
  from trained packs and stay frozen; Q, K and V are what a fusion trains.

  Example:

  >>> import tensorflow as tf
  >>> fusion = AdapterFusion(adapter_sizes=[8, 4])
  >>> fusion(tf.ones([2, 5, 16])).shape
  TensorShape([2, 5, 16])
  >>> [a.count_params() for a in fusion.adapters]  # 2*16*m + 16 + m
  [280, 148]
  """

  def __init__(self, adapter_sizes=(64, 64), adapter_activation="gelu",
               value_regularization=0.01, **kwargs):
    super().__init__(**kwargs)
    if len(adapter_sizes) < 1 or min(adapter_sizes) < 1:
      raise ValueError("adapter_sizes must list one or more sizes >= 1, got "
                       f"{list(adapter_sizes)}")
    self.adapter_sizes = [int(m) for m in adapter_sizes]
    self.adapter_activation = adapter_activation
    self.value_regularization = value_regularization
    self.adapters = [
        AdapterLayer(m, activation=adapter_activation, name=f"adapter_{i}")
        for i, m in enumerate(self.adapter_sizes)]

  def build(self, input_shape):
    hidden_size = input_shape[-1]
    # Built here, under their own names: mix() calls their update(), which
    # skips Keras' __call__ and so the build it would run.
    for adapter in self.adapters:
      adapter(tf.zeros([1, 1, hidden_size]))
    bert_init = lambda: tf_keras.initializers.TruncatedNormal(stddev=0.02)
    self.query = tf_keras.layers.Dense(
        hidden_size, kernel_initializer=bert_init(), name="query")
    self.key = tf_keras.layers.Dense(
        hidden_size, kernel_initializer=bert_init(), name="key")
    self.value = tf_keras.layers.Dense(
        hidden_size, use_bias=False, kernel_initializer="identity",
        kernel_regularizer=_TowardIdentity(self.value_regularization),
        name="value")
    super().build(input_shape)

  def call(self, inputs, residual=None, scale=1.0):
    residual = inputs if residual is None else residual
    return add_update(residual, self.value(self.mix(inputs)[0]), scale)

  def mix(self, inputs):
    """(sum_i p_i u_i, p): the adapters' updates mixed per token, and the
    mixing weights, shape [..., N]."""
    updates = tf.stack([a.update(inputs) for a in self.adapters], axis=-2)
    scores = tf.einsum("...d,...nd->...n", self.query(inputs),
                       self.key(updates))
    weights = tf.nn.softmax(scores, axis=-1)
    return tf.einsum("...n,...nd->...d", weights, updates), weights

  def get_config(self):
    config = super().get_config()
    config.update(adapter_sizes=self.adapter_sizes,
                  adapter_activation=self.adapter_activation,
                  value_regularization=self.value_regularization)
    return config


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class _TowardIdentity(tf_keras.regularizers.Regularizer):
  """`strength * ||W - I||^2` for a square kernel W."""

  def __init__(self, strength=0.01):
    self.strength = strength

  def __call__(self, kernel):
    identity = tf.eye(kernel.shape[0], kernel.shape[1], dtype=kernel.dtype)
    return self.strength * tf.reduce_sum(tf.square(kernel - identity))

  def get_config(self):
    return dict(strength=self.strength)
