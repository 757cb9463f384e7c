"""Pieces shared by the single- and multi-task SavedModel exports."""

import os
import shutil
import tempfile

import tensorflow as tf

from keras_adapters.saving import faults
from keras_adapters.data.limits import check_max_seq_length
from keras_adapters.data.limits import MAX_SEQ_LENGTH_LIMIT
from keras_adapters.errors import UserInputError
from keras_adapters.serving.checks import check_export_dir  # pylint: disable=unused-import
from keras_adapters.serving.checks import task_is_pair  # pylint: disable=unused-import
from keras_adapters.models.text_preprocessor import IDS  # pylint: disable=unused-import


def max_positions(max_seq_length, is_pair, encoder):
  """The encoder's position limit, after checking max_seq_length fits it."""
  limit = min(MAX_SEQ_LENGTH_LIMIT, encoder.get_config().get(
      "max_sequence_length", MAX_SEQ_LENGTH_LIMIT))
  check_max_seq_length(max_seq_length, is_pair, limit)
  return limit


def rank_checked(*tensors):
  """Runtime shape checks: signature inputs are not shape-checked on load
  (a [batch, 1] string tensor would otherwise be accepted)."""
  return [tf.ensure_shape(t, t.shape) for t in tensors]


def check_ids(word_ids, mask, type_ids, vocab_size, max_positions):
  """Graph-side checks of client-made token ids; returns the three tensors."""
  word_ids, mask, type_ids = rank_checked(word_ids, mask, type_ids)
  shape = tf.shape(word_ids)
  checks = [
      tf.debugging.assert_equal(
          shape, tf.shape(mask),
          message="input_mask must have the shape of input_word_ids"),
      tf.debugging.assert_equal(
          shape, tf.shape(type_ids),
          message="input_type_ids must have the shape of input_word_ids"),
      tf.debugging.assert_less_equal(
          shape[1], max_positions,
          message=f"sequence length must be <= {max_positions} (the model's "
          "position embeddings); truncate the token ids"),
      tf.debugging.assert_non_negative(
          word_ids, message="input_word_ids must be >= 0"),
      tf.debugging.assert_less(
          word_ids, vocab_size,
          message=f"input_word_ids must be < vocab size {vocab_size}"),
      tf.debugging.assert_non_negative(
          type_ids, message="input_type_ids must be 0 or 1"),
      tf.debugging.assert_less(
          type_ids, 2, message="input_type_ids must be 0 or 1"),
  ]
  with tf.control_dependencies(checks):
    return (tf.identity(word_ids), tf.identity(mask), tf.identity(type_ids))


def format_outputs(logits, labels, is_regression):
  """Dict of serving outputs from logits [batch, C]."""
  if is_regression:
    score = logits[:, 0]
    return dict(logits=logits, probabilities=logits, score=score,
                label=tf.strings.as_string(score, precision=6))
  probabilities = tf.nn.softmax(logits, axis=-1)
  index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
  return dict(logits=logits, probabilities=probabilities,
              score=tf.reduce_max(probabilities, axis=-1),
              label=tf.gather(tf.constant(labels), index))


class Untracked:
  """Holds an object out of SavedModel tracking (only its variables go in)."""

  def __init__(self, value):
    self.value = value


def named_variables(model, encoder):
  """{stable name: variable} of `model`, encoder names as in adapter packs."""
  from keras_adapters.saving.adapter_pack import _key  # pylint: disable=g-import-not-at-top
  encoder_ids = set(map(id, encoder.weights))
  named = {}
  for variable in model.variables:
    key = _key(variable, encoder_ids).replace(":0", "")
    while key in named:
      key += "_"
    named[key] = variable
  return named


def save(module, export_dir, signatures, assets=None):
  """Saves into a hidden sibling, then renames: a killed export never leaves
  a half-written SavedModel where TF Serving (or a re-run) would find it."""
  del assets
  check_export_dir(export_dir)
  parent = os.path.dirname(os.path.abspath(export_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
  try:
    tf.saved_model.save(module, tmp, signatures=signatures)
    faults.mid_write("export", tmp)  # test-only: KERAS_ADAPTERS_FAULT
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a server may run as another user
    if os.path.isdir(export_dir):
      os.rmdir(export_dir)  # empty (checked above)
    os.replace(tmp, export_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return export_dir
