"""Single-task SavedModel export (raw-text and token-id signatures).

Signatures of the exported SavedModel (tag "serve"):

* ``serving_default``: ``text_a`` (tf.string [batch]) and, for pair tasks,
  ``text_b``; tokenized in the graph with the same Model Garden
  `BertTokenizer` + `BertPackInputs` layers as training (needs
  ``import tensorflow_text`` in Python, or TF Text ops in the server);
* ``serving_ids``: ``input_word_ids``, ``input_mask``, ``input_type_ids``
  (tf.int32 [batch, seq_len], seq_len <= max position embeddings); plain TF ops.

Both return ``logits`` [batch, C], ``probabilities`` [batch, C] (softmax;
for regression the score itself), ``label`` (tf.string [batch], the argmax
label; for regression the score formatted), ``score`` [batch] (probability
of the predicted label; for regression the predicted value).

The CLI is keras_adapters/serving/export.py.
"""

import tensorflow as tf

from keras_adapters.errors import UserInputError
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
from keras_adapters.serving import common
from keras_adapters.serving.common import IDS


class ClassifierServer(tf.Module):
  """A Keras classifier plus its tokenizer, with the two serving functions."""

  def __init__(self, model, encoder, *, preprocessor, labels, is_regression,
               is_pair, task_name=""):
    super().__init__(name="classifier_server")
    self.max_positions = common.max_positions(preprocessor.max_seq_length,
                                              is_pair, encoder)
    # The SavedModel holds the model's variables (by stable name) and the
    # traced signatures, not Keras layer metadata: faster, and plain TF.
    self._model = common.Untracked(model)
    self.model_variables = common.named_variables(model, encoder)
    self.preprocessor = preprocessor
    self.vocab_size = int(encoder.get_config()["vocab_size"])
    self._labels = list(labels or [])
    self._is_regression = bool(is_regression)
    self.is_pair = bool(is_pair)
    if not self._is_regression and not self._labels:
      raise UserInputError("a classifier export needs its label strings")
    self.max_seq_length = preprocessor.max_seq_length
    self.task_name = tf.Variable(task_name or "", trainable=False,
                                 name="task_name")

  def _outputs(self, word_ids, mask, type_ids):
    logits = self._model.value(dict(input_word_ids=word_ids, input_mask=mask,
                             input_type_ids=type_ids), training=False)
    return common.format_outputs(logits, self._labels, self._is_regression)

  def serve_text(self, text_a, text_b=None):
    text_a, = common.rank_checked(text_a)
    if text_b is not None:
      text_b, = common.rank_checked(text_b)
      tf.debugging.assert_equal(
          tf.size(text_a), tf.size(text_b),
          message="text_a and text_b must have the same batch size")
    packed = self.preprocessor(text_a, text_b)
    return self._outputs(*[packed[k] for k in IDS])

  def serve_ids(self, input_word_ids, input_mask, input_type_ids):
    return self._outputs(*common.check_ids(input_word_ids, input_mask,
                                    input_type_ids, self.vocab_size,
                                    self.max_positions))

  def signatures(self, include_text=True):
    text = tf.TensorSpec([None], tf.string)
    ids = tf.TensorSpec([None, None], tf.int32)
    if self.is_pair:
      text_fn = tf.function(lambda text_a, text_b: self.serve_text(
          text_a, text_b), input_signature=[text, text])
    else:
      text_fn = tf.function(lambda text_a: self.serve_text(text_a),
                            input_signature=[text])
    ids_fn = tf.function(
        lambda input_word_ids, input_mask, input_type_ids: self.serve_ids(
            input_word_ids, input_mask, input_type_ids),
        input_signature=[ids, ids, ids])
    # Named text_a/text_b etc. in the SignatureDef (from the lambda args).
    self.ids_fn = ids_fn
    if not include_text:  # plain TF ops only: no TF Text needed to load
      ids_concrete = ids_fn.get_concrete_function()
      return {"serving_default": ids_concrete, "serving_ids": ids_concrete}
    self.text_fn = text_fn
    return {"serving_default": text_fn.get_concrete_function(),
            "serving_ids": ids_fn.get_concrete_function()}


def export_classifier(export_dir, model, encoder, *, labels, is_regression,
                      is_pair, preprocessor=None, vocab_file=None,
                      do_lower_case=True, max_seq_length=128, task_name="",
                      include_text=True):
  """Writes a TF Serving SavedModel of the Keras classifier `model`.

  Args:
    export_dir: new directory (TF Serving wants <base>/<version>/).
    model, encoder: a trained or pack-loaded classifier and its encoder.
    labels: label strings (classifiers); is_regression: one score output.
    is_pair: two text inputs (text_a, text_b) in serving_default.
    preprocessor: the model's `AdapterTextPreprocessor`; else one is built
      from vocab_file, do_lower_case and max_seq_length.
    include_text: False writes only the token-id signature (also as
      serving_default): plain TF ops, loadable without TF Text (e.g. by
      `saved_model_cli run` or a tensorflow_model_server lacking TF Text).
  Returns: export_dir.
  """
  if preprocessor is None:
    preprocessor = AdapterTextPreprocessor(vocab_file, do_lower_case,
                                           max_seq_length)
  server = ClassifierServer(
      model, encoder, preprocessor=preprocessor, labels=labels,
      is_regression=is_regression, is_pair=is_pair, task_name=task_name)
  return common.save(server, export_dir, server.signatures(include_text))
