"""Model Garden's Transformer block with two adapters (paper Figure 2, left)."""

import tensorflow as tf
import tf_keras
from official.nlp.modeling import layers as nlp_layers

from keras_adapters.layers.adapter_layer import AdapterLayer


class _DropoutThenAdapter(tf_keras.layers.Layer):
  """Runs the block's own dropout, then the adapter."""

  def __init__(self, dropout, adapter, **kwargs):
    super().__init__(**kwargs)
    self.dropout = dropout
    self.adapter = adapter

  def call(self, inputs, training=None):
    return self.adapter(self.dropout(inputs, training=training))


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterTransformerBlock(nlp_layers.TransformerEncoderBlock):
  """`TransformerEncoderBlock` with an adapter after each sub-layer's output.

  One adapter follows the attention output projection (after its dropout), the
  other the feed-forward output (after its dropout); each comes before its
  residual add and LayerNorm, as in Houlsby et al. (2019). The parent's `call`
  is reused unchanged: the adapters ride on the two dropout layers it already
  applies at exactly those points. With `adapter_size=0` the block is exactly
  the parent block.

  Example:

  >>> import tensorflow as tf
  >>> block = AdapterTransformerBlock(
  ...     adapter_size=8, num_attention_heads=2, inner_dim=32,
  ...     inner_activation="gelu")
  >>> block(tf.ones([1, 4, 16])).shape
  TensorShape([1, 4, 16])
  >>> [a.count_params() for a in block.adapters]  # 2*16*8 + 16 + 8 each
  [280, 280]
  """

  def __init__(self, adapter_size=64, adapter_init_scale=1e-3,
               adapter_activation="gelu", **kwargs):
    super().__init__(**kwargs)
    self.adapter_size = adapter_size
    self.adapter_init_scale = adapter_init_scale
    self.adapter_activation = adapter_activation
    self.adapters = []

  def build(self, input_shape):
    super().build(input_shape)
    # Create the attention weights here, not lazily on the first call: Keras
    # SavedModel loading restores only variables that exist after build(), so
    # a lazily built MultiHeadAttention would come back freshly initialised
    # (keras-team/tf-keras#514).
    attention = self._attention_layer
    if (getattr(attention, "_built_from_signature", True) is False and
        self._linformer_dim is None):
      if isinstance(input_shape, (list, tuple)):
        query = tf.TensorShape(input_shape[0])
        value = tf.TensorShape(input_shape[1]) if len(input_shape) == 3 else query
      else:
        query = value = tf.TensorShape(input_shape)
      attention._build_from_signature(query=query, value=value)
    if not self.adapter_size:
      return
    make = lambda name: AdapterLayer(
        self.adapter_size, self.adapter_init_scale, self.adapter_activation,
        name=name)
    self.adapters = [make("adapter_attention"), make("adapter_ffn")]
    self._attention_dropout = _DropoutThenAdapter(
        self._attention_dropout, self.adapters[0],
        name="attention_dropout_adapter")
    self._output_dropout = _DropoutThenAdapter(
        self._output_dropout, self.adapters[1], name="output_dropout_adapter")

  def call(self, inputs, output_range=None):
    # Under a mixed policy the adapters return float32 (see AdapterLayer), so
    # the parent's attention residual add needs a float32 input too; its FFN
    # add and both LayerNorms are float32 already.
    if self.adapters and self.compute_dtype != "float32":
      inputs = tf.nest.map_structure(
          lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t,
          inputs)
    return super().call(inputs, output_range=output_range)

  def get_config(self):
    config = super().get_config()
    config.update(
        adapter_size=self.adapter_size,
        adapter_init_scale=self.adapter_init_scale,
        adapter_activation=self.adapter_activation)
    return config
