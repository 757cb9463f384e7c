"""Adapter tuning (Houlsby et al., 2019) for Model Garden BERT encoders.

The public classes load on first use (PEP 562), so a driver can check its
flags and data files, and print a bad input's one-line error, before
TensorFlow is imported.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "UserInputError": "keras_adapters.errors",
    "AdapterLayer": "keras_adapters.layers.adapter_layer",
    "AdapterTransformerBlock":
        "keras_adapters.layers.adapter_transformer_block",
    "MatmulAttention": "keras_adapters.layers.matmul_attention",
    "AdapterBertEncoder": "keras_adapters.networks.adapter_bert_encoder",
    "add_adapters": "keras_adapters.networks.adapter_bert_encoder",
    "AdapterTextClassifier": "keras_adapters.models.text_classifier",
    "AdapterTextPreprocessor": "keras_adapters.models.text_preprocessor",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'keras_adapters' has no attribute {name!r}")
  value = getattr(importlib.import_module(_EXPORTS[name]), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(list(globals()) + __all__)
