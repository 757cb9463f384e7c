"""Pretrained BERT weights in Google's TF1 naming -> a Model Garden encoder.

Every loader turns its source into one dict keyed by the variable names of
Google's original BERT checkpoints (`bert/encoder/layer_0/attention/self/
query/kernel`, kernels stored [in, out]) and a Google `bert_config.json`-style
dict; this file builds the Model Garden `BertEncoderV2` and copies the weights.
"""

import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks

from keras_adapters import compat
from keras_adapters.errors import UserInputError
from keras_adapters.networks.adapter_bert_encoder import build_encoder

_LAYER = "bert/encoder/layer_{}/"


def _activation(name, gelu_is_tanh):
  # Google's TF1 modeling.py calls its tanh approximation "gelu"; Hugging Face
  # configs mean the exact erf GELU by "gelu" and the approximation by
  # "gelu_new"/"gelu_pytorch_tanh". MiniLM uses the exact one.
  if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast") or (
      name == "gelu" and gelu_is_tanh):
    return lambda x: tf_keras.activations.gelu(x, approximate=True)
  if name in ("gelu", "relu", "tanh", "swish", "silu"):
    return name
  raise UserInputError(f"unsupported hidden_act {name!r} in the BERT config")


def encoder_from_config(config, gelu_is_tanh=False):
  """A randomly initialized `BertEncoderV2` shaped by a bert_config dict."""
  try:
    sizes = [config[k] for k in (
        "vocab_size", "hidden_size", "num_hidden_layers",
        "num_attention_heads", "intermediate_size")]
  except KeyError as e:
    raise UserInputError(f"BERT config lacks {e}; expected Google's "
                         "bert_config.json keys") from None
  if any(not isinstance(v, int) or v < 1 for v in sizes):
    raise UserInputError(f"BERT config sizes must be positive integers: {sizes}")
  if config["hidden_size"] % config["num_attention_heads"]:
    raise UserInputError("BERT config: hidden_size is not a multiple of "
                         "num_attention_heads")
  return networks.BertEncoderV2(
      vocab_size=config["vocab_size"],
      hidden_size=config["hidden_size"],
      num_layers=config["num_hidden_layers"],
      num_attention_heads=config["num_attention_heads"],
      inner_dim=config["intermediate_size"],
      inner_activation=_activation(config.get("hidden_act", "gelu"),
                                   gelu_is_tanh),
      max_sequence_length=config.get("max_position_embeddings", 512),
      type_vocab_size=config.get("type_vocab_size", 2),
      output_dropout=config.get("hidden_dropout_prob", 0.1),
      attention_dropout=config.get("attention_probs_dropout_prob", 0.1),
      initializer=tf_keras.initializers.TruncatedNormal(
          stddev=config.get("initializer_range", 0.02)))


def _encoder_variables(encoder):
  """Google TF1 name -> (Model Garden variable, reshape-to shape)."""
  norm = compat.embedding_norm_layer(encoder)
  targets = {
      "bert/embeddings/word_embeddings":
          encoder.get_embedding_layer().embeddings,
      "bert/embeddings/token_type_embeddings":
          compat.type_embedding_layer(encoder).embeddings,
      "bert/embeddings/position_embeddings":
          compat.position_embedding_table(encoder),
      "bert/embeddings/LayerNorm/gamma": norm.gamma,
      "bert/embeddings/LayerNorm/beta": norm.beta,
      "bert/pooler/dense/kernel": encoder.pooler_layer.kernel,
      "bert/pooler/dense/bias": encoder.pooler_layer.bias,
  }
  for i, block in enumerate(encoder.transformer_layers):
    prefix = _LAYER.format(i)
    attention = compat.block_part(block, "attention_layer")
    for part in ("query", "key", "value"):
      dense = compat.attention_dense(attention, part)
      targets[f"{prefix}attention/self/{part}/kernel"] = dense.kernel
      targets[f"{prefix}attention/self/{part}/bias"] = dense.bias
    pairs = {
        "attention/output/dense": compat.attention_dense(attention, "output"),
        "attention/output/LayerNorm":
            compat.block_part(block, "attention_layer_norm"),
        "intermediate/dense": compat.block_part(block, "intermediate_dense"),
        "output/dense": compat.block_part(block, "output_dense"),
        "output/LayerNorm": compat.block_part(block, "output_layer_norm"),
    }
    for name, layer in pairs.items():
      if name.endswith("LayerNorm"):
        targets[f"{prefix}{name}/gamma"] = layer.gamma
        targets[f"{prefix}{name}/beta"] = layer.beta
      else:
        targets[f"{prefix}{name}/kernel"] = layer.kernel
        targets[f"{prefix}{name}/bias"] = layer.bias
  return targets


def assign_bert_weights(encoder, weights, source="checkpoint"):
  """Copies Google-named `weights` (name -> array) into `encoder`.

  Missing pretrained weights are an error, except the pooler (some
  checkpoints ship none; it is then left at its random init and trained as
  part of the head). Shapes must agree up to the head split of attention.
  """
  build_encoder(encoder)
  targets = _encoder_variables(encoder)
  missing = [n for n in targets if n not in weights and "pooler" not in n]
  extra = sorted(n for n in weights if n.startswith("bert/") and
                 n not in targets)
  if extra:
    raise UserInputError(
        f"{source} has {len(extra)} BERT weights the config lacks (first: "
        f"{extra[0]}); the config does not match the checkpoint (layer count?)")
  if missing:
    raise UserInputError(
        f"{source} lacks {len(missing)} BERT weights (first: {missing[0]}); "
        "is it a BERT checkpoint matching the config?")
  for name, variable in targets.items():
    if name not in weights:
      continue
    value = weights[name]
    if value.size != variable.shape.num_elements():
      raise UserInputError(
          f"{source}: {name} has shape {list(value.shape)} but the config "
          f"needs {variable.shape.as_list()}; the config does not match the "
          "checkpoint")
    variable.assign(tf.reshape(tf.constant(value, variable.dtype),
                               variable.shape))
  return encoder


def bert_weight_names(num_layers):
  """The Google TF1 names of a `num_layers`-layer BERT (with pooler)."""
  encoder = encoder_from_config(dict(
      vocab_size=2, hidden_size=2, num_hidden_layers=num_layers,
      num_attention_heads=1, intermediate_size=2))
  return list(_encoder_variables(build_encoder(encoder)))
