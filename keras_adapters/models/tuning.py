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
from keras_adapters.config import ADAPTER_TYPES
from keras_adapters.layers.adapter_fusion import AdapterFusion
from keras_adapters.layers.matmul_attention import use_matmul_attention
from keras_adapters.networks.adapter_bert_encoder import AdapterBertEncoder
from keras_adapters.networks.adapter_bert_encoder import add_adapters
from keras_adapters.config import FINE_TUNE_MODES


def prepare_encoder(encoder, mode, adapter_size=64, init_scale=1e-3,
                    adapter_type="houlsby", fused_adapter_sizes=()):
  """Adds adapters (of `adapter_type`, ADAPTER_TYPES) to a pretrained
  encoder when `mode` is "adapter", AdapterFusions of adapters of
  `fused_adapter_sizes` when it is "fusion"; every mode gets the faster
  `MatmulAttention` (same numbers)."""
  if mode not in FINE_TUNE_MODES:
    raise UserInputError(f"unknown fine_tune_mode {mode!r}; choose one of "
                         f"{', '.join(FINE_TUNE_MODES)}")
  if adapter_type not in ADAPTER_TYPES:
    raise UserInputError(f"unknown adapter_type {adapter_type!r}; choose "
                         f"one of {', '.join(ADAPTER_TYPES)}")
  if mode == "adapter":
    if adapter_size < 1:
      raise UserInputError(f"adapter_size must be >= 1, got {adapter_size}")
    encoder = add_adapters(encoder, adapter_size, init_scale,
                           adapter_type=adapter_type)
  if (mode == "fusion") != bool(fused_adapter_sizes):
    raise UserInputError(
        "fine_tune_mode=fusion needs the adapter packs to fuse (fuse_packs=[..."
        "], --fuse_packs)" if mode == "fusion" else
        f"packs to fuse need fine_tune_mode=fusion, not {mode!r}")
  if mode == "fusion":
    encoder = add_adapters(encoder, init_scale=init_scale,
                           adapter_type=adapter_type,
                           fused_adapter_sizes=fused_adapter_sizes)
  return use_matmul_attention(encoder)


def _leaves(layer):
  return [l for l in compat.flatten_layers(layer, include_self=True)
          if not list(compat.flatten_layers(l, include_self=False))]


def set_fine_tune_mode(model, encoder, mode, top_k_layers=1):
  """Sets `trainable` on the leaf layers of `model` for `mode`."""
  if mode not in FINE_TUNE_MODES:
    raise UserInputError(f"unknown fine_tune_mode {mode!r}; choose one of "
                         f"{', '.join(FINE_TUNE_MODES)}")
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
