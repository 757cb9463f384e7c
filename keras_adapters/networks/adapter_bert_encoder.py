"""BERT surgery: Model Garden's BertEncoderV2 with adapters in every block."""

import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks

from official.nlp.modeling import layers as nlp_layers

from keras_adapters import compat
from keras_adapters.config import AdapterConfig
from keras_adapters.errors import UserInputError
from keras_adapters.layers.adapter_transformer_block import AdapterTransformerBlock


# Stateless, kept out of the encoder's tracked layers (and so its checkpoints).
_ATTENTION_MASK = nlp_layers.SelfAttentionMask()


def _block_adapter_kwargs(config, index, activation):
  """The AdapterTransformerBlock keywords for block `index` under `config`
  (a left-out block gets none: it is exactly the pretrained block)."""
  left_out = index in config.leave_out
  return dict(
      adapter_size=0 if left_out else config.adapter_size,
      adapter_init_scale=config.adapter_init_scale,
      adapter_activation=activation, adapter_type=config.adapter_type,
      fused_adapter_sizes=() if left_out else [
          int(m) for m in config.fused_adapter_sizes])


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class AdapterBertEncoder(networks.BertEncoderV2):
  """`BertEncoderV2` whose Transformer blocks are `AdapterTransformerBlock`s.

  BertEncoderV2 has no hook for a custom block class, so this swaps each block
  it made for an adapter block with the same configuration, its adapters as
  `adapter_config` (a keras_adapters.config.AdapterConfig, or its dict) says.
  Everything else (embeddings, mask, pooler, outputs, checkpoint layout) is
  the parent's. Use `add_adapters` to turn a pretrained encoder into one of
  these.

  A frozen trunk (`set_frozen_trunk(k)`, k <= adapter_config.trunk_depth):
  the embeddings and blocks 0..k-1 run without dropout, and the encoder also
  takes {"trunk_output": block k-1's output, "input_mask"} in place of ids,
  running blocks k.. only (`trunk` computes that output). `encoder_outputs`
  then lists the outputs of blocks k.. only.
  """

  def __init__(self, adapter_config=None, adapter_activation="gelu",
               **kwargs):
    super().__init__(**kwargs)
    config = adapter_config if isinstance(adapter_config, AdapterConfig) else (
        AdapterConfig.from_dict(adapter_config or {}))
    config.check_blocks(len(self.transformer_layers))
    self.adapter_config = config
    self.frozen_trunk_depth = 0
    compat.set_transformer_layers(self, [
        AdapterTransformerBlock(
            **_block_adapter_kwargs(config, i, adapter_activation),
            return_attention_scores=kwargs.get("return_attention_scores", False),
            **block.get_config())
        for i, block in enumerate(self.transformer_layers)])
    compat.encoder_config(self).update(adapter_config=config.to_dict(),
                                       adapter_activation=adapter_activation)

  def set_frozen_trunk(self, depth):
    """Runs blocks 0..depth-1 (and the embeddings) without dropout, and
    accepts their output as input ("trunk_output"); 0 restores the
    pretrained encoder's behaviour. Set it before the first call that
    traces a training function."""
    if not 0 <= depth <= self.adapter_config.trunk_depth:
      raise UserInputError(
          f"a frozen trunk of {depth} blocks needs blocks 0..{depth - 1} left "
          f"out; this model leaves out {list(self.adapter_config.leave_out)}")
    if depth and (self.get_config()["output_range"] or
                  self.get_config()["return_attention_scores"]):
      raise UserInputError("a frozen trunk needs output_range=None and "
                           "return_attention_scores=False")
    self.frozen_trunk_depth = depth

  def trunk(self, inputs):
    """Block `frozen_trunk_depth - 1`'s output [batch, seq, width] for token
    ids `inputs`, computed without dropout."""
    return self._trunk_outputs(inputs)[-1]

  def _trunk_outputs(self, inputs):
    x = compat.encoder_embeddings(self, inputs, training=False)
    mask = _ATTENTION_MASK(x, inputs["input_mask"])
    outputs = []
    for block in self.transformer_layers[:self.frozen_trunk_depth]:
      x = block([x, mask], training=False)
      outputs.append(x)
    return outputs

  def call(self, inputs):
    if not self.frozen_trunk_depth:
      return _call_unconverted(self, inputs)
    if "trunk_output" in inputs:
      outputs = [inputs["trunk_output"]]
    else:  # the outputs of every block, as the parent's call
      outputs = self._trunk_outputs(inputs)
    x = outputs[-1]
    mask = _ATTENTION_MASK(x, inputs["input_mask"])
    if "trunk_output" in inputs:
      outputs = []
    for block in self.transformer_layers[self.frozen_trunk_depth:]:
      x = block([x, mask])
      outputs.append(x)
    return dict(sequence_output=x, pooled_output=self.pooler_layer(x[:, 0, :]),
                encoder_outputs=outputs)

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
            if not k.startswith("adapter_")}
  # The blocks hold the activation as given; get_config's serialized form of
  # a callable (e.g. BertEncoderV2's default approximate-gelu lambda) cannot
  # be deserialized.
  config["inner_activation"] = (
      encoder.transformer_layers[0].get_config()["inner_activation"])
  return config


def copy_encoder(encoder):
  """A new encoder of `encoder`'s class, configuration and weights (what a
  model trains or rewires is then its own, not the caller's)."""
  build_encoder(encoder)
  config = backbone_config(encoder)
  if isinstance(encoder, AdapterBertEncoder):
    config.update(adapter_config=encoder.adapter_config,
                  adapter_activation=encoder.get_config()["adapter_activation"])
  new = build_encoder(type(encoder)(**config))
  new.set_weights(encoder.get_weights())
  return new


def add_adapters(encoder, adapter_config=None, activation="gelu", **config):
  """Returns an `AdapterBertEncoder` carrying `encoder`'s pretrained weights.

  Args:
    encoder: a Model Garden `BertEncoderV2` (pretrained).
    adapter_config: a keras_adapters.config.AdapterConfig: the adapters'
      size m, init scale (std of their truncated-normal init; 0 makes the new
      encoder compute exactly what `encoder` computes), type ("houlsby", two
      per block, the paper's; "pfeiffer", one per block after the
      feed-forward layer; "parallel", one beside it), `fused_adapter_sizes`
      (AdapterFusion: each adapter place holds an `AdapterFusion` of adapters
      of those sizes) and `leave_out` (blocks without adapters).
    activation: the adapters' nonlinearity.
    **config: AdapterConfig fields instead of `adapter_config`.

  Example:

  >>> from official.nlp.modeling import networks
  >>> bert = networks.BertEncoderV2(vocab_size=100, hidden_size=16,
  ...     num_layers=2, num_attention_heads=2, inner_dim=32)
  >>> with_adapters = add_adapters(bert, adapter_size=4)
  >>> len(with_adapters.adapters)
  4
  >>> len(add_adapters(bert, adapter_size=4, leave_out=[0]).adapters)
  2
  """
  if not isinstance(encoder, networks.BertEncoderV2):
    raise TypeError(f"add_adapters needs a BertEncoderV2, got {type(encoder)}")
  adapter_config = adapter_config or AdapterConfig(**config)
  build_encoder(encoder)
  new = build_encoder(AdapterBertEncoder(
      adapter_config=adapter_config, adapter_activation=activation,
      **backbone_config(encoder)))
  adapter_vars = {id(v) for a in new.adapters for v in a.weights}
  targets = {_unscoped(v): v for v in new.weights if id(v) not in adapter_vars}
  sources = {_unscoped(v): v for v in encoder.weights}
  if targets.keys() != sources.keys():
    raise ValueError("add_adapters: variables differ: "
                     f"{sorted(targets.keys() ^ sources.keys())[:5]}")
  for name, source in sources.items():
    targets[name].assign(source)
  return new
