"""Adapter tuning (Houlsby et al., 2019) for Model Garden BERT encoders.

The public classes load on first use (PEP 562), so that a submodule such as
`keras_adapters.config` or a command's flag check does not import
TensorFlow. Before `tf_keras.models.load_model` of a file holding them,
import the classes (`from keras_adapters import AdapterTextClassifier`, or
`from keras_adapters import *` for all): that registers them with Keras.
"""

import importlib
import os

# Model Garden runs on tf_keras (Keras 2). Imported before TensorFlow, this
# makes tf.keras that same Keras 2, and `import tensorflow` skips loading
# Keras 3 as well (~2 CPU-seconds per process). No effect once TF is loaded.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"

_EXPORTS = {
    "UserInputError": "keras_adapters.errors",
    "AdapterConfig": "keras_adapters.config",
    "AdapterLayer": "keras_adapters.layers.adapter_layer",
    "AdapterFusion": "keras_adapters.layers.adapter_fusion",
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
