"""Loads a Model Garden TF2 encoder checkpoint (`tf.train.Checkpoint`)."""

import json
import os
import re

import tensorflow as tf
import tf_keras
from official.nlp.modeling import networks

from keras_adapters.errors import UserInputError
from keras_adapters.loaders.bert_weights import encoder_from_config
from keras_adapters.networks.adapter_bert_encoder import build_encoder


def _check_layer_count(checkpoint, num_layers):
  """restore() ignores extra checkpoint layers; refuse them instead."""
  try:
    names = [n for n, _ in tf.train.list_variables(checkpoint)]
  except (tf.errors.OpError, ValueError):
    return  # read() below reports an unreadable checkpoint
  found = {int(m.group(1)) for n in names
           for m in [re.match(r"encoder/_transformer_layers/(\d+)/", n)] if m}
  if found and max(found) + 1 != num_layers:
    raise UserInputError(
        f"{checkpoint} has {max(found) + 1} Transformer layers but the config "
        f"has {num_layers}; use the config saved with the checkpoint")


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
  with open(config_file, encoding="utf-8") as f:
    config = json.load(f)
  if os.path.isdir(checkpoint):
    checkpoint = tf.train.latest_checkpoint(checkpoint) or checkpoint
  if "num_hidden_layers" in config:
    # Model Garden's BERT configs mean its tanh approximation by "gelu".
    encoder = encoder_from_config(config, gelu_is_tanh=True)
  else:
    encoder = networks.BertEncoderV2(**config)
  build_encoder(encoder)
  _check_layer_count(checkpoint, len(encoder.transformer_layers))
  try:
    status = tf.train.Checkpoint(encoder=encoder).read(checkpoint)
    status.assert_existing_objects_matched()
  except (tf.errors.OpError, ValueError, AssertionError) as e:
    first = str(e).strip().splitlines()[0][:200]
    raise UserInputError(
        f"cannot restore a Model Garden encoder from {checkpoint}: {first}; "
        "check that the checkpoint and its config belong together") from None
  return encoder
