"""Loads a Hugging Face-layout BERT (config.json + model.safetensors)."""

import os
import re

from safetensors.numpy import load_file

from keras_adapters.errors import UserInputError
from keras_adapters.loaders.bert_weights import assign_bert_weights
from keras_adapters.loaders.bert_weights import encoder_from_config
from keras_adapters.loaders.tf1_checkpoint import read_bert_config

# Hugging Face name pattern -> Google TF1 name (see bert_weights.py).
_RENAMES = [
    (r"^embeddings\.LayerNorm\.weight$", "bert/embeddings/LayerNorm/gamma"),
    (r"^embeddings\.LayerNorm\.bias$", "bert/embeddings/LayerNorm/beta"),
    (r"^embeddings\.(\w+_embeddings)\.weight$", r"bert/embeddings/\1"),
    (r"^encoder\.layer\.(\d+)\.(.+)\.LayerNorm\.weight$",
     r"bert/encoder/layer_\1/\2/LayerNorm/gamma"),
    (r"^encoder\.layer\.(\d+)\.(.+)\.LayerNorm\.bias$",
     r"bert/encoder/layer_\1/\2/LayerNorm/beta"),
    (r"^encoder\.layer\.(\d+)\.(.+)\.weight$",
     r"bert/encoder/layer_\1/\2/kernel"),
    (r"^encoder\.layer\.(\d+)\.(.+)\.bias$", r"bert/encoder/layer_\1/\2/bias"),
    (r"^pooler\.dense\.weight$", "bert/pooler/dense/kernel"),
    (r"^pooler\.dense\.bias$", "bert/pooler/dense/bias"),
]


def google_names_from_hf(tensors):
  """Renames HF BERT tensors to Google's names; kernels become [in, out]."""
  weights = {}
  for name, value in tensors.items():
    name = name[len("bert."):] if name.startswith("bert.") else name
    for pattern, replacement in _RENAMES:
      new_name, hits = re.subn(pattern, replacement, name)
      if hits:
        new_name = new_name.replace(".", "/")
        weights[new_name] = value.T if new_name.endswith("kernel") else value
        break
  return weights


def load_safetensors_bert(model_dir):
  """Returns a Model Garden `BertEncoderV2` with the weights in `model_dir`.

  `model_dir` holds `config.json` and `model.safetensors` as Hugging Face
  saves a `BertModel` (e.g. all-MiniLM-L6-v2).
  """
  paths = [os.path.join(model_dir, f) for f in ("config.json",
                                                "model.safetensors")]
  for path in paths:
    if not os.path.isfile(path):
      raise UserInputError(f"{path} not found; a safetensors BERT directory "
                           "needs config.json and model.safetensors")
  config = read_bert_config(paths[0])  # a one-line error if not JSON
  try:
    tensors = load_file(paths[1])
  except Exception as e:  # safetensors raises its own error types
    raise UserInputError(f"{paths[1]} is not a readable safetensors file "
                         f"({e}); re-download it") from None
  encoder = encoder_from_config(config, gelu_is_tanh=False)
  return assign_bert_weights(encoder, google_names_from_hf(tensors),
                             source=paths[1])
