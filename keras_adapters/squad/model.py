"""A span labeler (start/end logits per token) on an (adapter) BERT encoder."""

import tensorflow as tf
import tf_keras
from official.nlp.modeling import models

from keras_adapters.config import AdapterConfig
from keras_adapters.models import tuning


def build_span_labeler(pretrained_encoder, adapter_config=None):
  """Returns (model, encoder): Model Garden's `BertSpanLabeler` (one dense
  layer over the sequence output -> start and end logits, as Google BERT's
  run_squad.py) with the variables of `adapter_config` (an AdapterConfig;
  default: the paper's adapters) set trainable.

  The modes are those of the classifier (keras_adapters.models.tuning),
  except that the encoder's pooler, which span labeling does not use, is
  frozen in every mode. The model maps {"input_word_ids", "input_mask",
  "input_type_ids"} to [start_logits, end_logits], each [batch, seq_length].
  """
  adapter_config = adapter_config or AdapterConfig()
  encoder = tuning.prepare_encoder(pretrained_encoder, adapter_config)
  model = models.BertSpanLabeler(
      encoder,
      initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
  tuning.set_fine_tune_mode(model, encoder, adapter_config)
  encoder.pooler_layer.trainable = False  # no gradient reaches it
  return model, encoder


class _Float32CrossEntropy(tf_keras.losses.SparseCategoricalCrossentropy):
  """Cross entropy on logits cast to float32 (mixed precision)."""

  def call(self, y_true, y_pred):
    return super().call(y_true, tf.cast(y_pred, tf.float32))


def span_loss():
  """Google BERT's SQuAD loss is the mean of the start and end cross
  entropies: use with `loss_weights=[0.5, 0.5]`. The logits are cast to
  float32 first (they are 16-bit under --mixed_precision)."""
  return _Float32CrossEntropy(from_logits=True)
