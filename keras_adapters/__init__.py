"""Adapter tuning (Houlsby et al., 2019) for Model Garden BERT encoders."""

from keras_adapters.errors import UserInputError
from keras_adapters.layers.adapter_layer import AdapterLayer
from keras_adapters.layers.adapter_transformer_block import AdapterTransformerBlock
from keras_adapters.layers.matmul_attention import MatmulAttention
from keras_adapters.networks.adapter_bert_encoder import AdapterBertEncoder
from keras_adapters.networks.adapter_bert_encoder import add_adapters

__version__ = "0.1.0"
from keras_adapters.models.text_classifier import AdapterTextClassifier
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
