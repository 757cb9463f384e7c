"""The Keras task API: a preprocessor and a classifier over adapter BERT."""

from keras_adapters.models.text_classifier import AdapterTextClassifier
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
