"""Google's original TF1 BERT release: bert_config.json + bert_model.ckpt.

The checkpoint is name-based (`bert/encoder/layer_0/attention/self/query/
kernel`, ...), i.e. already in the naming of bert_weights.py. Google's
modeling.py calls its tanh approximation of GELU "gelu", so that is how
`hidden_act: "gelu"` is read here by default.
"""

import json
import os

import numpy as np
import tensorflow as tf

from keras_adapters.errors import UserInputError
from keras_adapters.errors import first_line
from keras_adapters.loaders.bert_weights import assign_bert_weights
from keras_adapters.loaders.bert_weights import bert_weight_names
from keras_adapters.loaders.bert_weights import encoder_from_config

_WORD_EMBEDDINGS = "bert/embeddings/word_embeddings"


def resolve_checkpoint(path):
  """A checkpoint prefix from a prefix or a directory, or UserInputError."""
  if os.path.isdir(path):
    # Google's zips ship bert_model.ckpt.* without a `checkpoint` state file.
    default = os.path.join(path, "bert_model.ckpt")
    indexes = [f for f in os.listdir(path) if f.endswith(".index")]
    if os.path.isfile(default + ".index"):
      path = default
    elif tf.train.latest_checkpoint(path):
      path = tf.train.latest_checkpoint(path)
    elif len(indexes) == 1:
      path = os.path.join(path, indexes[0][:-len(".index")])
    else:
      raise UserInputError(
          f"found {len(indexes)} checkpoints (*.index) in {path}; pass the "
          "checkpoint prefix, e.g. .../bert_model.ckpt")
  if not os.path.isfile(path + ".index"):
    raise UserInputError(
        f"checkpoint {path} not found (no {os.path.basename(path)}.index); "
        "pass the prefix, e.g. .../bert_model.ckpt, not a single file")
  return path


def checkpoint_variables(prefix):
  """name -> shape of a checkpoint prefix, as a one-line error if unreadable."""
  try:
    return dict(tf.train.list_variables(prefix))
  except (tf.errors.OpError, ValueError) as e:
    first = first_line(e)
    raise UserInputError(f"cannot read checkpoint {prefix}: {first}; "
                         "re-download or re-write it") from None


def is_tf1_bert_checkpoint(prefix):
  return _WORD_EMBEDDINGS in checkpoint_variables(prefix)


def read_bert_config(bert_config_file):
  if not os.path.isfile(bert_config_file):
    raise UserInputError(f"BERT config {bert_config_file} not found; pass the "
                         "bert_config.json that came with the checkpoint")
  try:
    with open(bert_config_file, encoding="utf-8") as f:
      config = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise UserInputError(
        f"{bert_config_file} is not valid JSON ({e}); pass the config "
        "that came with the checkpoint") from None
  if not isinstance(config, dict):
    raise UserInputError(f"{bert_config_file} must hold a JSON object (the "
                         "config that came with the checkpoint)")
  return config


def load_tf1_checkpoint(bert_config_file, init_checkpoint, gelu_is_tanh=True):
  """A Model Garden `BertEncoderV2` with the weights of a TF1 BERT checkpoint.

  Args:
    bert_config_file: Google's bert_config.json.
    init_checkpoint: the checkpoint prefix (`.../bert_model.ckpt`) or the
      directory holding it.
    gelu_is_tanh: read `hidden_act: "gelu"` as Google's tanh approximation
      (True, right for Google's releases) or as the exact erf GELU.
  """
  config = read_bert_config(bert_config_file)
  prefix = resolve_checkpoint(init_checkpoint)
  shapes = checkpoint_variables(prefix)
  if _WORD_EMBEDDINGS not in shapes:
    if any(".ATTRIBUTES/VARIABLE_VALUE" in n for n in shapes):
      raise UserInputError(
          f"{prefix} has no {_WORD_EMBEDDINGS}: this looks like a Model Garden "
          "TF2 checkpoint; load it with load_model_garden_checkpoint (or "
          "load_pretrained) and its encoder config instead")
    raise UserInputError(
        f"{prefix} is not a Google TF1 BERT checkpoint (no {_WORD_EMBEDDINGS}; "
        f"it has e.g. {sorted(shapes)[:3]})")
  encoder = encoder_from_config(config, gelu_is_tanh=gelu_is_tanh)
  layers = config["num_hidden_layers"]
  if f"bert/encoder/layer_{layers}/attention/self/query/kernel" in shapes:
    raise UserInputError(
        f"{prefix} has more than num_hidden_layers={layers} layers; "
        f"{bert_config_file} does not match the checkpoint")
  reader = tf.train.load_checkpoint(prefix)
  weights = {n: reader.get_tensor(n) for n in bert_weight_names(layers)
             if n in shapes}
  return assign_bert_weights(encoder, weights, source=prefix)


def write_tf1_checkpoint(weights, path):
  """Writes `weights` (Google name -> array) as a TF1 name-based checkpoint.

  The variables are named exactly as the keys (as in Google's
  bert_model.ckpt), so `load_tf1_checkpoint` and Google's TF1 code read it.
  Returns the checkpoint prefix `path`.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with tf.Graph().as_default():
    feeds, variables = {}, {}
    for name, value in weights.items():
      value = np.asarray(value)
      # Initialized from placeholders: big tables stay out of the GraphDef.
      placeholder = tf.compat.v1.placeholder(value.dtype, value.shape)
      variables[name] = tf.compat.v1.Variable(placeholder, name=name)
      feeds[placeholder] = value
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer(), feeds)
      saver.save(session, path, write_meta_graph=False)
  return path
