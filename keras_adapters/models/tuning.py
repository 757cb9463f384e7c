"""Which variables train: the fine-tuning modes, and the parameter count.

Modes (the paper's baselines beside adapters):
  adapter     adapters + every LayerNorm (incl. the embedding LN) + head
  full        everything
  top_k       the top `top_k_layers` Transformer blocks + head
  layer_norm  every LayerNorm + head
  head        the head only (feature-based)
  fusion      AdapterFusion's query/key/value + every LayerNorm + head; the
              fused adapters (from trained packs) stay frozen

The "head" is everything outside the encoder plus the encoder's pooler: the
default model's pooler was never trained, so every mode trains it.
"""

import tf_keras

from keras_adapters import compat
from keras_adapters.errors import UserInputError
from keras_adapters.layers.adapter_fusion import AdapterFusion
from keras_adapters.layers.matmul_attention import use_matmul_attention
from keras_adapters.networks.adapter_bert_encoder import AdapterBertEncoder
from keras_adapters.networks.adapter_bert_encoder import add_adapters
from keras_adapters.networks.adapter_bert_encoder import copy_encoder


def prepare_encoder(encoder, config):
  """A new encoder for AdapterConfig `config` from a pretrained one (left
  as it is): with adapters when its mode is "adapter", AdapterFusions of
  adapters of `config.fused_adapter_sizes` when it is "fusion", else a
  copy; every mode gets the faster `MatmulAttention` (same numbers)."""
  fusion = config.fine_tune_mode == "fusion"
  if fusion != bool(config.fused_adapter_sizes):
    raise UserInputError(
        "fine_tune_mode=fusion needs the adapter packs to fuse (fuse_packs=[..."
        "], --fuse_packs)" if fusion else
        f"packs to fuse need fine_tune_mode=fusion, not "
        f"{config.fine_tune_mode!r}")
  if config.leave_out and config.fine_tune_mode not in ("adapter", "fusion"):
    raise UserInputError(f"leave_out places adapters; fine_tune_mode="
                         f"{config.fine_tune_mode} has none: drop leave_out")
  if config.fine_tune_mode in ("adapter", "fusion"):
    encoder = add_adapters(encoder, config)
  else:  # what trains and the attention class change on a copy
    encoder = copy_encoder(encoder)
  return use_matmul_attention(encoder)


def _leaves(layer):
  return [l for l in compat.flatten_layers(layer, include_self=True)
          if not list(compat.flatten_layers(l, include_self=False))]


def set_fine_tune_mode(model, encoder, config):
  """Sets `trainable` on the leaf layers of `model` for AdapterConfig
  `config` (its mode, top_k_layers and leave_out)."""
  mode, top_k_layers = config.fine_tune_mode, config.top_k_layers
  blocks = encoder.transformer_layers
  if mode == "top_k" and not 1 <= top_k_layers <= len(blocks):
    raise UserInputError(f"top_k_layers must be in 1..{len(blocks)}, "
                         f"got {top_k_layers}")
  if mode in ("adapter", "fusion") and not isinstance(encoder,
                                                     AdapterBertEncoder):
    raise UserInputError(f"fine_tune_mode={mode} needs an encoder with "
                         "adapters (see add_adapters)")
  model.trainable = True
  if mode == "full":
    return model
  train = set(map(id, _leaves(encoder.pooler_layer)))
  if mode in ("adapter", "layer_norm", "fusion"):
    train |= {id(l) for l in _leaves(encoder)
              if isinstance(l, tf_keras.layers.LayerNormalization)}
    train -= _left_out_norms(encoder, config.leave_out)
  if mode == "adapter":
    train |= {id(l) for a in encoder.adapters for l in _leaves(a)}
  if mode == "fusion":
    if not all(isinstance(a, AdapterFusion) for a in encoder.adapters):
      raise UserInputError("fine_tune_mode=fusion needs an encoder with "
                           "AdapterFusions (add_adapters(fused_adapter_sizes"
                           "=...))")
    fused = {id(l) for f in encoder.adapters for a in f.adapters
             for l in _leaves(a)}
    train |= {id(l) for f in encoder.adapters for l in _leaves(f)} - fused
  if mode == "top_k":
    train |= {id(l) for b in blocks[-top_k_layers:] for l in _leaves(b)}
  for leaf in _leaves(encoder):
    leaf.trainable = id(leaf) in train
  return model


def _left_out_norms(encoder, leave_out):
  """ids of the LayerNorms that stay frozen with `leave_out`: those of the
  left-out blocks, and the embeddings' when block 0 is left out."""
  blocks = encoder.transformer_layers
  frozen = {id(l) for i in leave_out for l in _leaves(blocks[i])}
  if 0 in leave_out:
    in_blocks = {id(l) for b in blocks for l in _leaves(b)}
    frozen |= {id(l) for l in _leaves(encoder)
               if isinstance(l, tf_keras.layers.LayerNormalization) and
               id(l) not in in_blocks}
  return frozen


def parameter_report(model, encoder):
  """Counts of backbone, adapter and trained parameters (per task)."""
  adapters = getattr(encoder, "adapters", [])
  adapter_params = sum(a.count_params() for a in adapters)
  backbone = encoder.count_params() - adapter_params
  trainable = sum(v.shape.num_elements() for v in model.trainable_variables)
  return dict(backbone_params=backbone, adapter_params=adapter_params,
              trainable_params=trainable, total_params=model.count_params(),
              trainable_percent=100.0 * trainable / backbone)


def format_parameter_report(report):
  return ("Parameters: backbone {backbone_params:,} | adapters "
          "{adapter_params:,} | trained per task {trainable_params:,} "
          "({trainable_percent:.2f}% of the backbone)").format(**report)
