"""Adapter tuning (Houlsby et al., 2019) for Model Garden BERT encoders.

`import keras_adapters` loads the public classes, which registers the Keras
serializables (so `tf_keras.models.load_model` finds them). The drivers set
KERAS_ADAPTERS_LAZY_IMPORT=1 before importing the package, and a module run
as `python -m keras_adapters.<module>` gets the same: the classes then load
on first use (PEP 562), so a bad flag or data file is reported before
TensorFlow is imported.
"""

import importlib
import os
import sys

# Model Garden runs on tf_keras (Keras 2). Imported before TensorFlow, this
# makes tf.keras that same Keras 2, and `import tensorflow` skips loading
# Keras 3 as well (~2 CPU-seconds per process). No effect once TF is loaded.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"

LAZY_IMPORT_ENV = "KERAS_ADAPTERS_LAZY_IMPORT"
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


# While `python -m` locates its module (and so imports this package),
# sys.argv[0] is "-m".
if os.environ.get(LAZY_IMPORT_ENV) != "1" and sys.argv[:1] != ["-m"]:
  for _name in __all__:
    __getattr__(_name)
