"""Texts and labels -> batched `tf.data.Dataset` of BERT inputs.

Text becomes ids only through `AdapterTextPreprocessor`
(keras_adapters/models/text_preprocessor.py), run over batches of raw strings
once, before the tf.data pipeline.
"""

import math
from typing import Optional, Sequence
import weakref

import numpy as np
import tensorflow as tf

from keras_adapters.data.limits import check_max_seq_length
from keras_adapters.errors import UserInputError
from keras_adapters.models.text_preprocessor import AdapterTextPreprocessor
from keras_adapters.models.text_preprocessor import encode_labels

_TOKENIZE_BATCH = 256


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = False) -> int:
  """Number of batches `make_dataset` yields per epoch."""
  if drop_remainder:
    return num_examples // batch_size
  return math.ceil(num_examples / batch_size)


def make_dataset(examples: Sequence, *, vocab_file: str, do_lower_case: bool,
                 max_seq_length: int, label_list: Optional[Sequence[str]],
                 is_regression: bool, batch_size: int, is_training: bool, seed: int = 0,
                 drop_remainder: bool = False, repeat: bool = False,
                 dynamic_padding: bool = False,
                 preprocessor: Optional[AdapterTextPreprocessor] = None) -> tf.data.Dataset:
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
    preprocessor: an `AdapterTextPreprocessor` to use instead of one built
      from vocab_file, do_lower_case and max_seq_length.
  """
  if not examples:
    raise UserInputError("no examples to build a dataset from; check the data files / split")
  pairs = {e.text_b is not None for e in examples}
  if len(pairs) > 1:
    raise UserInputError("examples mix single sentences and pairs (text_b None for some only); "
                         "use one layout for the whole task")
  is_pair = pairs.pop()
  if preprocessor is None:
    check_max_seq_length(max_seq_length, is_pair)
    preprocessor = AdapterTextPreprocessor(vocab_file, do_lower_case, max_seq_length)
  labels = encode_labels([e.label for e in examples], label_list, is_regression,
                         [f"example {e.guid}" for e in examples])
  texts_b = [e.text_b for e in examples] if is_pair else None
  return text_dataset([e.text_a for e in examples], texts_b, labels, preprocessor,
                      is_regression=is_regression, batch_size=batch_size,
                      is_training=is_training, seed=seed, drop_remainder=drop_remainder,
                      repeat=repeat, dynamic_padding=dynamic_padding)


def text_dataset(texts_a: Sequence[str], texts_b: Optional[Sequence[str]], labels,
                 preprocessor, *, is_regression: bool = False, batch_size: int,
                 is_training: bool = False, seed: Optional[int] = 0,
                 drop_remainder: bool = False, repeat: bool = False,
                 dynamic_padding: bool = False) -> tf.data.Dataset:
  """Like `make_dataset`, from raw text lists and encoded labels (None: no labels,
  features only). Tokenized up front, in batches of 256, by `preprocessor`."""
  if not isinstance(batch_size, int) or batch_size < 1:
    raise UserInputError(f"batch_size {batch_size!r} must be a positive integer")
  ds = text_examples(texts_a, texts_b, labels, preprocessor,
                     is_regression=is_regression)
  return batched(ds, len(texts_a), batch_size, is_training=is_training,
                 seed=seed, drop_remainder=drop_remainder, repeat=repeat,
                 dynamic_padding=dynamic_padding)


def batched(examples: tf.data.Dataset, num_examples: int, batch_size: int, *,
            is_training: bool = False, seed: Optional[int] = 0,
            drop_remainder: bool = False, repeat: bool = False,
            dynamic_padding: bool = False) -> tf.data.Dataset:
  """`text_dataset`'s batches of unbatched `examples`."""
  ds = examples
  if is_training:
    ds = ds.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if dynamic_padding:
    ds = cut_padding(ds)
  return ds.prefetch(tf.data.AUTOTUNE)


def text_examples(texts_a: Sequence[str], texts_b: Optional[Sequence[str]],
                  labels, preprocessor, *, is_regression: bool = False,
                  tokenized: Optional[dict] = None) -> tf.data.Dataset:
  """The unbatched examples of `text_dataset`: features padded to the
  preprocessor's max_seq_length (with labels unless `labels` is None).
  `tokenized`: the texts' `tokenize` output (plus any per-example arrays,
  e.g. "example_index"), if already at hand."""
  features = tokenized if tokenized is not None else tokenize(
      preprocessor, texts_a, texts_b)
  if labels is None:
    return tf.data.Dataset.from_tensor_slices(features)
  dtype = np.float32 if is_regression else np.int32
  return tf.data.Dataset.from_tensor_slices(
      (features, np.asarray(labels, dtype)))


# preprocessor -> {is_pair: tf.function}. Tracing the tokenizer's graph costs
# seconds; a function per preprocessor traces it once per process instead of
# once per dataset, and keeps the tf.data graphs small.
_TOKENIZE_FUNCTIONS = weakref.WeakKeyDictionary()


def tokenize(preprocessor, texts_a: Sequence[str],
             texts_b: Optional[Sequence[str]] = None) -> dict:
  """{"input_word_ids", "input_mask", "input_type_ids"}: int32 numpy
  [len(texts_a), max_seq_length], by `preprocessor` in batches of 256."""
  is_pair = texts_b is not None
  functions = _TOKENIZE_FUNCTIONS.setdefault(preprocessor, {})
  if is_pair not in functions:
    functions[is_pair] = _tokenize_function(weakref.ref(preprocessor), is_pair)
  texts = [list(texts_a)] + ([list(texts_b)] if is_pair else [])
  batches = [functions[is_pair](*[tf.constant(t[i:i + _TOKENIZE_BATCH],
                                              tf.string) for t in texts])
             for i in range(0, max(len(texts_a), 1), _TOKENIZE_BATCH)]
  return {k: np.concatenate([b[k].numpy() for b in batches])
          for k in batches[0]}


def _tokenize_function(preprocessor_ref, is_pair):
  return tf.function(lambda *texts: preprocessor_ref()(*texts),
                     input_signature=[tf.TensorSpec([None], tf.string)] * (
                         2 if is_pair else 1), autograph=False)


def cut_padding(batches: tf.data.Dataset, multiple: int = 8) -> tf.data.Dataset:
  """Each batch of features (with or without labels) cut to its longest
  example, rounded up to a multiple of `multiple` (8 by default: few
  distinct shapes for oneDNN to plan). Per-example scalars (e.g.
  "example_index") stay as they are."""

  def cut(features, *labels):
    longest = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
    length = (longest + multiple - 1) // multiple * multiple
    features = {k: v[:, :length] if v.shape.rank == 2 else v
                for k, v in features.items()}
    return (features, *labels) if labels else features

  return batches.map(cut)
