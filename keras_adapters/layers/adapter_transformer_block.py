"""Model Garden's Transformer block with adapters: two per block (Houlsby et
al., 2019, Figure 2, left), one after the feed-forward sub-layer (Pfeiffer
et al., 2021) or one beside it (He et al., 2022)."""

import threading

import tensorflow as tf
import tf_keras
from official.nlp.modeling import layers as nlp_layers

from keras_adapters import compat
from keras_adapters.config import ADAPTER_TYPES
from keras_adapters.layers.adapter_fusion import AdapterFusion
from keras_adapters.layers.adapter_layer import AdapterLayer


class _DropoutThenAdapter(tf_keras.layers.Layer):
  """Runs the block's own dropout, then the adapter."""

  def __init__(self, dropout, adapter, **kwargs):
    super().__init__(**kwargs)
    self.dropout = dropout
    self.adapter = adapter

  def call(self, inputs, training=None):
    return self.adapter(self.dropout(inputs, training=training))


class _NormAdapterNorm(tf_keras.layers.Layer):
  """Pfeiffer's placement around the block's output LayerNorm: for the
  residual sum s = ffn(x) + x, returns LN(s + adapter update of LN(s)), the
  same LayerNorm twice (AdapterHub's SeqBnConfig: original_ln_before and
  original_ln_after, residual_before_ln)."""

  def __init__(self, norm, adapter, **kwargs):
    super().__init__(**kwargs)
    self.norm = norm
    self.adapter = adapter

  def call(self, inputs):
    return self.norm(self.adapter(self.norm(inputs), residual=inputs))


# He et al. (2022) scale a parallel adapter's update by s = 4 (their Table 4;
# AdapterHub's ParBnConfig default).
PARALLEL_SCALE = 4.0


class _KeepInput(tf_keras.layers.Layer):
  """Runs `layer` and keeps its input in `self.kept.inputs` for a later
  sub-layer of the same block call (the parent's call passes the FFN input
  only to the FFN's first dense). Thread-local, not tracked: MirroredStrategy
  traces each replica's call in a thread of its own."""

  def __init__(self, layer, **kwargs):
    super().__init__(**kwargs)
    self.layer = layer
    self.kept = threading.local()

  def call(self, inputs):
    self.kept.inputs = inputs
    return self.layer(inputs)


class _DropoutPlusParallelAdapter(tf_keras.layers.Layer):
  """The FFN's output dropout plus the scaled adapter update of the FFN input
  that `kept` holds: ffn(h) + s * update(h), before the residual add."""

  def __init__(self, dropout, adapter, kept, **kwargs):
    super().__init__(**kwargs)
    self.dropout = dropout
    self.adapter = adapter
    self.kept = kept

  def call(self, inputs, training=None):
    ffn_input, self.kept.inputs = self.kept.inputs, None  # set by _KeepInput
    return self.adapter(ffn_input, residual=self.dropout(
        inputs, training=training), scale=PARALLEL_SCALE)


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterTransformerBlock(nlp_layers.TransformerEncoderBlock):
  """`TransformerEncoderBlock` with adapters (`adapter_type`, ADAPTER_TYPES).

  "houlsby": one adapter follows the attention output projection (after its
  dropout), the other the feed-forward output (after its dropout); each comes
  before its residual add and LayerNorm, as in Houlsby et al. (2019).
  "pfeiffer": one adapter per block, after the feed-forward sub-layer: it
  reads the output LayerNorm's result and adds its update before that same
  LayerNorm is applied again (Pfeiffer et al., 2021; `_NormAdapterNorm`).
  "parallel": one adapter per block, beside the feed-forward sub-layer: it
  reads the FFN's input h and adds PARALLEL_SCALE times its update to the
  FFN's output, before the residual add (He et al., 2022).
  The parent's `call` is reused unchanged: the adapters ride on layers it
  already applies at exactly those points. With `adapter_size=0` the block is
  exactly the parent block. With `fused_adapter_sizes` (one size per trained
  adapter), each adapter is an `AdapterFusion` of that many adapters instead.

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
               adapter_activation="gelu", adapter_type="houlsby",
               fused_adapter_sizes=(), **kwargs):
    super().__init__(**kwargs)
    if adapter_type not in ADAPTER_TYPES:
      raise ValueError(f"unknown adapter_type {adapter_type!r}; choose one "
                       f"of {', '.join(ADAPTER_TYPES)}")
    self.adapter_type = adapter_type
    self.adapter_size = adapter_size
    self.adapter_init_scale = adapter_init_scale
    self.adapter_activation = adapter_activation
    self.fused_adapter_sizes = [int(m) for m in fused_adapter_sizes]
    self.adapters = []

  def build(self, input_shape):
    super().build(input_shape)
    # Create the attention weights here, not lazily on the first call: Keras
    # SavedModel loading restores only variables that exist after build(), so
    # a lazily built MultiHeadAttention would come back freshly initialised
    # (keras-team/tf-keras#514).
    attention = compat.block_part(self, "attention_layer")
    if (compat.attention_needs_build(attention) and
        compat.block_linformer_dim(self) is None):
      if isinstance(input_shape, (list, tuple)):
        query = tf.TensorShape(input_shape[0])
        value = tf.TensorShape(input_shape[1]) if len(input_shape) == 3 else query
      else:
        query = value = tf.TensorShape(input_shape)
      compat.build_attention(attention, query, value)
    if self.adapter_size or self.fused_adapter_sizes:
      self._place_adapters(input_shape)

  def _place_adapters(self, input_shape):
    """Creates the adapters and wraps the parent's sub-layers with them."""
    make = lambda name: AdapterLayer(
        self.adapter_size, self.adapter_init_scale, self.adapter_activation,
        name=name)
    if self.fused_adapter_sizes:
      make = lambda name: AdapterFusion(
          self.fused_adapter_sizes, self.adapter_activation, name=name)
    part = lambda name: compat.block_part(self, name)
    if self.adapter_type == "pfeiffer":
      if compat.block_norm_first(self):  # its output LN then precedes the FFN
        raise ValueError("adapter_type='pfeiffer' needs a post-LayerNorm "
                         "block (norm_first=False), as BERT's")
      self.adapters = [make("adapter_ffn")]
      compat.set_block_part(self, "output_layer_norm", _NormAdapterNorm(
          _built(part("output_layer_norm"), input_shape), self.adapters[0],
          name="output_layer_norm_adapter"))
      return
    if self.adapter_type == "parallel":
      self.adapters = [make("adapter_ffn")]
      keep = _KeepInput(_built(part("intermediate_dense"), input_shape),
                        name="intermediate_keep_input")
      compat.set_block_part(self, "intermediate_dense", keep)
      compat.set_block_part(self, "output_dropout", _DropoutPlusParallelAdapter(
          part("output_dropout"), self.adapters[0], keep.kept,
          name="output_dropout_adapter"))
      return
    self.adapters = [make("adapter_attention"), make("adapter_ffn")]
    compat.set_block_part(self, "attention_dropout", _DropoutThenAdapter(
        part("attention_dropout"), self.adapters[0],
        name="attention_dropout_adapter"))
    compat.set_block_part(self, "output_dropout", _DropoutThenAdapter(
        part("output_dropout"), self.adapters[1],
        name="output_dropout_adapter"))

  def call(self, inputs, output_range=None):
    # Under a mixed policy the adapters return float32 (see AdapterLayer), so
    # the parent's attention residual add needs a float32 input too; its FFN
    # add and both LayerNorms are float32 already.
    if self.adapter_type == "houlsby" and self.adapters and (
        self.compute_dtype != "float32"):
      inputs = tf.nest.map_structure(
          lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t,
          inputs)
    return super().call(inputs, output_range=output_range)

  def get_config(self):
    config = super().get_config()
    config.update(
        adapter_size=self.adapter_size,
        adapter_init_scale=self.adapter_init_scale,
        adapter_activation=self.adapter_activation,
        adapter_type=self.adapter_type,
        fused_adapter_sizes=self.fused_adapter_sizes)
    return config


def _built(layer, input_shape):
  """`layer`, its weights created under its own name now (not later, inside
  a wrapper's name scope, where the pretrained checkpoint's names would not
  find them)."""
  shape = input_shape[0] if isinstance(input_shape, (list, tuple)) else (
      input_shape)
  layer(tf.zeros([1, 1, tf.TensorShape(shape)[-1]]))
  return layer
