"""Examples -> batched `tf.data.Dataset` of BERT inputs.

Tokenization and packing use Model Garden's Keras layers `BertTokenizer` and
`BertPackInputs` (TF.Text). Pairs are truncated round-robin, which for two
segments keeps the same tokens as Google BERT's longest-first truncation.
"""

import math
import os
from typing import Optional, Sequence

import tensorflow as tf
from official.nlp.modeling import layers

from keras_adapters.errors import UserInputError

MAX_SEQ_LENGTH_LIMIT = 512  # BERT's position embeddings
_TOKENIZE_BATCH = 256


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = False) -> int:
  """Number of batches `make_dataset` yields per epoch."""
  if drop_remainder:
    return num_examples // batch_size
  return math.ceil(num_examples / batch_size)


def make_packer(vocab_file: str, do_lower_case: bool, max_seq_length: int, is_pair: bool):
  """Returns fn(texts_a, texts_b_or_None) -> dict of int32 [batch, max_seq_length] tensors."""
  need = 3 if is_pair else 2
  if not isinstance(max_seq_length, int) or not need <= max_seq_length <= MAX_SEQ_LENGTH_LIMIT:
    raise UserInputError(f"max_seq_length {max_seq_length!r} out of range: need {need}.."
                         f"{MAX_SEQ_LENGTH_LIMIT} ([CLS] + {'2 x [SEP]' if is_pair else '[SEP]'} "
                         f"take {need}); set --max_seq_length e.g. 128")
  if not os.path.isfile(vocab_file):
    raise UserInputError(f"vocab file {vocab_file} not found; pass the vocab.txt of the BERT "
                         f"checkpoint (--vocab_file)")
  tokenizer = layers.BertTokenizer(vocab_file=vocab_file, lower_case=do_lower_case)
  packer = layers.BertPackInputs(max_seq_length,
                                 special_tokens_dict=tokenizer.get_special_tokens_dict())

  def pack(texts_a, texts_b=None):
    segments = [tokenizer(texts_a)] + ([] if texts_b is None else [tokenizer(texts_b)])
    return packer(segments)

  return pack


def make_dataset(examples: Sequence, *, vocab_file: str, do_lower_case: bool,
                 max_seq_length: int, label_list: Optional[Sequence[str]],
                 is_regression: bool, batch_size: int, is_training: bool, seed: int = 0,
                 drop_remainder: bool = False, repeat: bool = False,
                 dynamic_padding: bool = False) -> tf.data.Dataset:
  """Returns a dataset of `({"input_word_ids", "input_mask", "input_type_ids"}, label)`.

  Features are int32 [batch, max_seq_length]; labels int32 class indices into
  `label_list`, or float32 for regression; test examples (label None) get 0.
  Examples are tokenized once and cached. With `is_training`, every epoch is
  reshuffled, and the order of all epochs depends only on `seed` (and the
  global TF seed), so a resumed run can `.skip(steps_done)` to the same spot.

  Args:
    examples: `Example`s (text_b None for all or for none of them).
    vocab_file, do_lower_case: the BERT checkpoint's wordpiece vocab and casing.
    max_seq_length: padded length, including [CLS] and [SEP]s (<= 512).
    label_list: class labels (ignored for regression).
    is_regression: float labels.
    batch_size: examples per batch.
    is_training: shuffle with `seed`.
    drop_remainder: drop the last partial batch (static shapes, e.g. TPU).
    repeat: repeat forever (each repetition reshuffled if training).
    dynamic_padding: cut each batch to its longest example (rounded up to a
      multiple of 8) instead of max_seq_length. The batches hold the same
      examples; padding is masked, so only float rounding changes. Saves
      the padding's compute on CPU/GPU; not for TPU/XLA (static shapes).
  """
  if not examples:
    raise UserInputError("no examples to build a dataset from; check the data files / split")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise UserInputError(f"batch_size {batch_size!r} must be a positive integer")
  pairs = {e.text_b is not None for e in examples}
  if len(pairs) > 1:
    raise UserInputError("examples mix single sentences and pairs (text_b None for some only); "
                         "use one layout for the whole task")
  is_pair = pairs.pop()
  pack = make_packer(vocab_file, do_lower_case, max_seq_length, is_pair)
  labels = [_label_value(e, label_list, is_regression) for e in examples]

  texts = {"a": [e.text_a for e in examples]}
  if is_pair:
    texts["b"] = [e.text_b for e in examples]
  label_dtype = tf.float32 if is_regression else tf.int32
  ds = tf.data.Dataset.from_tensor_slices((texts, tf.constant(labels, label_dtype)))
  ds = ds.batch(_TOKENIZE_BATCH).map(
      lambda t, y: (pack(t["a"], t.get("b")), y), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.unbatch().cache()
  if is_training:
    ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if dynamic_padding:
    ds = ds.map(_cut_padding)
  return ds.prefetch(tf.data.AUTOTUNE)


def _cut_padding(features, labels):
  longest = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
  length = (longest + 7) // 8 * 8  # few distinct shapes for oneDNN to plan
  return {k: v[:, :length] for k, v in features.items()}, labels


def _label_value(example, label_list, is_regression):
  """Float score, class index, or 0 for an unlabeled (test) example."""
  if example.label is None:
    return 0
  if is_regression:
    return float(example.label)
  try:
    return label_list.index(example.label)
  except (ValueError, AttributeError):
    raise UserInputError(f"example {example.guid}: label {example.label!r} is not in "
                         f"label_list {label_list}; pass the task's label list") from None
