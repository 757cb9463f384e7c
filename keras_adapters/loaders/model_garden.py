"""Loads a Model Garden TF2 encoder checkpoint (`tf.train.Checkpoint`)."""

import os
import re

import tensorflow as tf
from official.nlp.modeling import networks

from keras_adapters import compat
from keras_adapters.errors import UserInputError
from keras_adapters.errors import first_line
from keras_adapters.loaders.bert_weights import encoder_from_config
from keras_adapters.loaders.tf1_checkpoint import read_bert_config
from keras_adapters.networks.adapter_bert_encoder import build_encoder


def _check_layer_count(checkpoint, num_layers):
  """restore() ignores extra checkpoint layers; refuse them instead."""
  try:
    names = [n for n, _ in tf.train.list_variables(checkpoint)]
  except (tf.errors.OpError, ValueError):
    return  # read() below reports an unreadable checkpoint
  blocks = f"encoder/{compat.TRANSFORMER_LAYERS_ATTR}/"
  found = {int(m.group(1)) for n in names
           for m in [re.match(re.escape(blocks) + r"(\d+)/", n)] if m}
  if not found and any(n.startswith("encoder/") for n in names):
    # An encoder whose blocks are saved under another name: the layer count
    # cannot be checked, and restore() would silently skip extra layers.
    raise UserInputError(
        f"{checkpoint} holds no {blocks} variables, so its Transformer "
        f"layers cannot be counted: BertEncoderV2."
        f"{compat.TRANSFORMER_LAYERS_ATTR} is saved under another name (a "
        "checkpoint from another tf-models-official version?); save it with "
        f"tf-models-official {compat.installed_version('tf-models-official')}")
  if found and max(found) + 1 != num_layers:
    raise UserInputError(
        f"{checkpoint} has {max(found) + 1} Transformer layers but the config "
        f"has {num_layers}; use the config saved with the checkpoint")


def _check_sizes(config, config_file):
  """BertEncoderV2 would fail deep inside TF on a non-positive size."""
  for key in ("vocab_size", "hidden_size", "num_layers", "num_attention_heads",
              "inner_dim", "max_sequence_length", "type_vocab_size"):
    value = config.get(key, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise UserInputError(f"encoder config {config_file}: {key}={value!r} "
                           "must be a positive integer; use the config saved "
                           "with the checkpoint")


def load_model_garden_checkpoint(checkpoint, config_file):
  """A `BertEncoderV2` restored from `checkpoint`.

  Args:
    checkpoint: a checkpoint prefix (or a directory with a `checkpoint` file)
      saved as `tf.train.Checkpoint(encoder=encoder)`, as Model Garden's BERT
      checkpoints are.
    config_file: JSON of either `BertEncoderV2.get_config()` or Google's
      `bert_config.json`.
  """
  if not os.path.isfile(config_file):
    raise UserInputError(f"encoder config {config_file} not found")
  config = read_bert_config(config_file)  # a one-line error if not JSON
  if os.path.isdir(checkpoint):
    checkpoint = tf.train.latest_checkpoint(checkpoint) or checkpoint
  if "num_hidden_layers" in config:
    # Model Garden's BERT configs mean its tanh approximation by "gelu".
    encoder = encoder_from_config(config, gelu_is_tanh=True)
  else:
    _check_sizes(config, config_file)
    encoder = networks.BertEncoderV2(**config)
  build_encoder(encoder)
  _check_layer_count(checkpoint, len(compat.transformer_layers(encoder)))
  try:
    status = tf.train.Checkpoint(encoder=encoder).read(checkpoint)
    status.assert_existing_objects_matched()
  # IndexError: a truncated data file ("Read less bytes than requested").
  except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
    first = first_line(e)
    raise UserInputError(
        f"cannot restore a Model Garden encoder from {checkpoint}: {first}; "
        "re-download it if truncated, else check that the checkpoint and its "
        "config belong together") from None
  return encoder
