"""A sentence(-pair) classifier or regressor on an (adapter) BERT encoder."""

import tf_keras
from official.nlp.modeling import models

from keras_adapters import tuning


def build_classifier(pretrained_encoder, num_classes, fine_tune_mode="adapter",
                     adapter_size=64, adapter_init_scale=1e-3, top_k_layers=1,
                     dropout_rate=0.1):
  """Returns (model, encoder): Model Garden's `BertClassifier` (pooled output,
  dropout, dense; `num_classes=1` for regression) with the mode's variables
  set trainable. Adapters are added only for `fine_tune_mode="adapter"`."""
  encoder = tuning.prepare_encoder(pretrained_encoder, fine_tune_mode,
                                   adapter_size, adapter_init_scale)
  model = models.BertClassifier(
      encoder, num_classes=num_classes, dropout_rate=dropout_rate,
      initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
  tuning.set_fine_tune_mode(model, encoder, fine_tune_mode, top_k_layers)
  return model, encoder
