"""BERT surgery: Model Garden's BertEncoderV2 with adapters in every block."""

import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks

from keras_adapters import compat
from keras_adapters.layers.adapter_transformer_block import AdapterTransformerBlock


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterBertEncoder(networks.BertEncoderV2):
  """`BertEncoderV2` whose Transformer blocks are `AdapterTransformerBlock`s.

  BertEncoderV2 has no hook for a custom block class, so this swaps each block
  it made for an adapter block with the same configuration. Everything else
  (embeddings, mask, pooler, outputs, checkpoint layout) is the parent's.
  Use `add_adapters` to turn a pretrained encoder into one of these.
  """

  def __init__(self, adapter_size=64, adapter_init_scale=1e-3,
               adapter_activation="gelu", adapter_type="houlsby",
               fused_adapter_sizes=(), **kwargs):
    super().__init__(**kwargs)
    fused_adapter_sizes = [int(m) for m in fused_adapter_sizes]
    compat.set_transformer_layers(self, [
        AdapterTransformerBlock(
            adapter_size=adapter_size, adapter_init_scale=adapter_init_scale,
            adapter_activation=adapter_activation, adapter_type=adapter_type,
            fused_adapter_sizes=fused_adapter_sizes,
            return_attention_scores=kwargs.get("return_attention_scores", False),
            **block.get_config())
        for block in self.transformer_layers])
    compat.encoder_config(self).update(
        adapter_size=adapter_size, adapter_init_scale=adapter_init_scale,
        adapter_activation=adapter_activation, adapter_type=adapter_type,
        fused_adapter_sizes=fused_adapter_sizes)

  def call(self, inputs):
    return _call_unconverted(self, inputs)

  @property
  def adapters(self):
    """All AdapterLayers (or AdapterFusions), bottom block first (attention,
    then FFN)."""
    return [a for block in self.transformer_layers for a in block.adapters]


# The encoder's control flow is plain Python: AutoGraph need not convert its
# call (nor, below it, the blocks' and layers' calls): building a classifier
# takes ~1.6 CPU-s less per process. The graph and outputs are the same.
_call_unconverted = tf.autograph.experimental.do_not_convert(
    networks.BertEncoderV2.call)


def build_encoder(encoder):
  """Creates the variables of `encoder` by calling it on a dummy batch."""
  ids = tf.zeros([1, 2], tf.int32)
  encoder(dict(input_word_ids=ids, input_mask=ids + 1, input_type_ids=ids))
  return encoder


def _unscoped(variable):
  return variable.name.split("/", 1)[1]


def backbone_config(encoder):
  """The BertEncoderV2 keyword arguments of `encoder` (with or without
  adapters), without the adapter settings."""
  config = {k: v for k, v in encoder.get_config().items()
            if not k.startswith(("adapter_", "fused_adapter_"))}
  # The blocks hold the activation as given; get_config's serialized form of
  # a callable (e.g. BertEncoderV2's default approximate-gelu lambda) cannot
  # be deserialized.
  config["inner_activation"] = (
      encoder.transformer_layers[0].get_config()["inner_activation"])
  return config


def add_adapters(encoder, adapter_size=64, init_scale=1e-3, activation="gelu",
                 adapter_type="houlsby", fused_adapter_sizes=()):
  """Returns an `AdapterBertEncoder` carrying `encoder`'s pretrained weights.

  Args:
    encoder: a Model Garden `BertEncoderV2` (pretrained).
    adapter_size: the bottleneck size m of every adapter.
    init_scale: std of the adapters' truncated-normal init; 0 makes the new
      encoder compute exactly what `encoder` computes.
    activation: the adapters' nonlinearity.
    adapter_type: where the adapters go: "houlsby" (two per block, the
      paper's), "pfeiffer" (one per block, after the feed-forward layer) or
      "parallel" (one per block, beside the feed-forward layer).
    fused_adapter_sizes: for AdapterFusion, the sizes of the trained adapters
      to fuse; each adapter place then holds an `AdapterFusion` of them.

  Example:

  >>> from official.nlp.modeling import networks
  >>> bert = networks.BertEncoderV2(vocab_size=100, hidden_size=16,
  ...     num_layers=2, num_attention_heads=2, inner_dim=32)
  >>> with_adapters = add_adapters(bert, adapter_size=4)
  >>> len(with_adapters.adapters)
  4
  """
  if not isinstance(encoder, networks.BertEncoderV2):
    raise TypeError(f"add_adapters needs a BertEncoderV2, got {type(encoder)}")
  build_encoder(encoder)
  config = backbone_config(encoder)
  new = build_encoder(AdapterBertEncoder(
      adapter_size=adapter_size, adapter_init_scale=init_scale,
      adapter_activation=activation, adapter_type=adapter_type,
      fused_adapter_sizes=fused_adapter_sizes, **config))
  adapter_vars = {id(v) for a in new.adapters for v in a.weights}
  targets = {_unscoped(v): v for v in new.weights if id(v) not in adapter_vars}
  sources = {_unscoped(v): v for v in encoder.weights}
  if targets.keys() != sources.keys():
    raise ValueError("add_adapters: variables differ: "
                     f"{sorted(targets.keys() ^ sources.keys())[:5]}")
  for name, source in sources.items():
    targets[name].assign(source)
  return new
