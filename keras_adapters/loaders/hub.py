"""A TF Hub BERT encoder SavedModel -> a Model Garden `BertEncoderV2`.

Reads the SavedModels that Model Garden's `official/nlp/tools/
export_tfhub_lib.py` writes (and tfhub.dev serves, e.g.
bert_en_uncased_L-12_H-768_A-12): variables `[prefix/]word_embeddings/
embeddings:0`, `transformer/layer_0/self_attention/query/kernel:0` [d, heads,
head_dim], ..., `pooler_transform/kernel:0`, plus `vocab_file` (an asset) and
`do_lower_case` (a variable) on the root object.

The config is inferred from the variable shapes. The hidden activation is not
a variable: it is read from the ops of the saved graph (Erf/Erfc -> exact
GELU; Pow+Tanh -> the tanh approximation, which is what Model Garden's
`tf_utils.get_activation("gelu")` returns and so what the BERTs exported by
export_tfhub_lib from a config with "gelu" compute). If the graph shows
neither, the tanh approximation is assumed. Pass `hidden_act` to override.
"""

import os
import re

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from absl import logging

from keras_adapters.errors import UserInputError
from keras_adapters.errors import first_line
from keras_adapters.loaders.bert_weights import assign_bert_weights
from keras_adapters.loaders.bert_weights import encoder_from_config

# Hub name (after any prefix scope) -> Google TF1 name (see bert_weights.py).
_RENAMES = [
    (r"word_embeddings/embeddings", "bert/embeddings/word_embeddings"),
    (r"position_embedding/embeddings", "bert/embeddings/position_embeddings"),
    (r"type_embeddings/embeddings", "bert/embeddings/token_type_embeddings"),
    (r"embeddings/layer_norm/(gamma|beta)", r"bert/embeddings/LayerNorm/\1"),
    (r"pooler_transform/(kernel|bias)", r"bert/pooler/dense/\1"),
    (r"transformer/layer_(\d+)/self_attention/(query|key|value)/(kernel|bias)",
     r"bert/encoder/layer_\1/attention/self/\2/\3"),
    (r"transformer/layer_(\d+)/self_attention/attention_output/(kernel|bias)",
     r"bert/encoder/layer_\1/attention/output/dense/\2"),
    (r"transformer/layer_(\d+)/self_attention_layer_norm/(gamma|beta)",
     r"bert/encoder/layer_\1/attention/output/LayerNorm/\2"),
    (r"transformer/layer_(\d+)/intermediate/(kernel|bias)",
     r"bert/encoder/layer_\1/intermediate/dense/\2"),
    (r"transformer/layer_(\d+)/output/(kernel|bias)",
     r"bert/encoder/layer_\1/output/dense/\2"),
    (r"transformer/layer_(\d+)/output_layer_norm/(gamma|beta)",
     r"bert/encoder/layer_\1/output/LayerNorm/\2"),
]
_RENAMES = [(re.compile(r"(?:^|/)" + p + r"(?::\d+)?$"), r)
            for p, r in _RENAMES]


def google_names_from_hub(variables):
  """Google name -> numpy value for the BERT variables of a Hub encoder."""
  weights = {}
  for variable in variables:
    for pattern, replacement in _RENAMES:
      match = pattern.search(variable.name)
      if match:
        weights.setdefault(match.expand(replacement), variable.numpy())
        break
  return weights


def graph_activation(hub_dir):
  """"gelu" (erf), "gelu_new" (tanh approx.) or None, from the saved ops."""
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(hub_dir, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  ops = set()
  for graph in saved_model.meta_graphs:
    ops.update(n.op for n in graph.graph_def.node)
    for function in graph.graph_def.library.function:
      ops.update(n.op for n in function.node_def)
  if ops & {"Erf", "Erfc"}:
    return "gelu"
  if "Pow" in ops and "Tanh" in ops:
    return "gelu_new"
  if "Relu" in ops:
    return "relu"
  return None


def _config_from_shapes(weights, hub_dir):
  def shape(name):
    return list(weights[name].shape)
  vocab_size, width = shape("bert/embeddings/word_embeddings")
  layers = sorted({int(m.group(1)) for m in
                   map(re.compile(r"bert/encoder/layer_(\d+)/").match, weights)
                   if m})
  if not layers or layers != list(range(len(layers))):
    raise UserInputError(f"{hub_dir}: transformer layers {layers} are not "
                         "numbered 0..n-1; not a BERT encoder SavedModel")
  query = shape("bert/encoder/layer_0/attention/self/query/kernel")
  if len(query) != 3 or query[0] != width or query[1] * query[2] != width:
    raise UserInputError(
        f"{hub_dir}: query kernel {query} vs word embeddings width {width}: "
        "factorized embeddings (ALBERT-style) or a non-BERT attention are not "
        "supported")
  return dict(
      vocab_size=vocab_size, hidden_size=width, num_hidden_layers=len(layers),
      num_attention_heads=query[1],
      intermediate_size=shape(
          "bert/encoder/layer_0/intermediate/dense/kernel")[1],
      max_position_embeddings=shape("bert/embeddings/position_embeddings")[0],
      type_vocab_size=shape("bert/embeddings/token_type_embeddings")[0])


def load_hub_encoder(hub_dir, hidden_act=None):
  """Returns (encoder, vocab_file or None, do_lower_case).

  Args:
    hub_dir: the SavedModel directory, or a tfhub.dev/Kaggle handle URL
      (fetched with tensorflow_hub.resolve, which caches it).
    hidden_act: Hugging Face naming: "gelu" (exact erf), "gelu_new" (tanh
      approximation), "relu", ...; None reads it from the saved graph.
  """
  encoder, vocab_file, do_lower_case, notes = load_hub_with_notes(
      hub_dir, hidden_act)
  logging.info("%s: %s", hub_dir, notes)
  return encoder, vocab_file, do_lower_case


def load_hub_with_notes(hub_dir, hidden_act=None):
  """`load_hub_encoder` plus a note on the assumptions made."""
  if "://" in hub_dir:  # A tfhub.dev / Kaggle handle: download (cached).
    import tensorflow_hub  # pylint: disable=g-import-not-at-top
    try:
      hub_dir = tensorflow_hub.resolve(hub_dir)
    except Exception as e:  # pylint: disable=broad-except
      first = first_line(e) if str(e) else repr(e)
      raise UserInputError(f"cannot download {hub_dir}: {first}; download "
                           "and unpack it, then pass the directory") from None
  if not os.path.isfile(os.path.join(hub_dir, "saved_model.pb")):
    raise UserInputError(f"{hub_dir} is not a SavedModel directory (no "
                         "saved_model.pb); pass the unpacked TF Hub model dir")
  try:
    import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    pass  # Only preprocessing models need its ops.
  try:
    loaded = tf.saved_model.load(hub_dir)
  except Exception as e:  # pylint: disable=broad-except
    first = first_line(e)
    raise UserInputError(
        f"cannot load the SavedModel {hub_dir}: {first}") from None
  weights = google_names_from_hub(getattr(loaded, "variables", None) or [])
  if "bert/encoder/layer_0/attention/self/query/kernel" not in weights:
    raise UserInputError(
        f"{hub_dir} is not a BERT encoder SavedModel: found no "
        "transformer/layer_0/self_attention/query/kernel variable (a "
        "preprocessing model or another architecture?)")
  notes = []
  config = _config_from_shapes(weights, hub_dir)
  if hidden_act is None:
    hidden_act = graph_activation(hub_dir)
    if hidden_act is None:
      hidden_act = "gelu_new"
      notes.append("activation not found in the graph; assumed Model "
                   "Garden's tanh-approximate gelu")
    else:
      notes.append(f"activation {hidden_act} read from the graph")
  else:
    notes.append(f"activation {hidden_act} as given")
  config["hidden_act"] = hidden_act
  encoder = assign_bert_weights(encoder_from_config(config), weights,
                                source=hub_dir)

  vocab_file = None
  if hasattr(loaded, "vocab_file"):
    vocab_file = loaded.vocab_file.asset_path.numpy().decode("utf-8")
  elif os.path.isfile(os.path.join(hub_dir, "assets", "vocab.txt")):
    vocab_file = os.path.join(hub_dir, "assets", "vocab.txt")
  if hasattr(loaded, "do_lower_case"):
    do_lower_case = bool(loaded.do_lower_case.numpy())
  else:
    do_lower_case = True
    notes.append("the SavedModel has no do_lower_case; assumed True")
  return encoder, vocab_file, do_lower_case, "; ".join(notes)
