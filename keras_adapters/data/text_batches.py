"""The batches `AdapterTextClassifier` trains and predicts on, from token
ids its preprocessor made: the training stream (shuffled, repeated, full
batches; dynamic padding, length buckets or length groups; the frozen
trunk's cached outputs in place of ids) and evaluation batches."""

import numpy as np
import tensorflow as tf

from keras_adapters.data import bucketing
from keras_adapters.data import features
from keras_adapters.data import trunk_cache
from keras_adapters.errors import UserInputError
from keras_adapters.training import distribute


def check_batching(bucket_by_length, group_by_length, strategy):
  """One line for batching options that cannot go together."""
  if bucket_by_length and group_by_length:
    raise UserInputError("give bucket_by_length or group_by_length, not "
                         "both")
  if group_by_length and isinstance(strategy, tf.distribute.TPUStrategy):
    raise UserInputError("group_by_length makes batch shapes vary, which "
                         "TPUs cannot run; use bucket_by_length")


def training_batches(tokenized, labels, preprocessor, batch_size, *,
                     is_regression, seed, dynamic_padding=False,
                     bucket_by_length=False, group_by_length=False,
                     trunk_states=None):
  """(dataset, steps per epoch or None): the repeated, shuffled global
  batches of `tokenized` (features.tokenize's arrays) and `labels`. With
  `trunk_states` (trunk_cache.trunk_states of the same examples) each
  batch carries the trunk's output as "trunk_output"."""
  num_examples = len(labels)
  if trunk_states is not None:
    tokenized = dict(tokenized, example_index=np.arange(num_examples))
  examples = features.text_examples(None, None, labels, preprocessor,
                                    is_regression=is_regression,
                                    tokenized=tokenized)
  steps = None
  if group_by_length:
    ds = bucketing.grouped_batches(examples, num_examples, batch_size, seed)
  elif bucket_by_length:
    boundaries = bucketing.boundaries_for(
        preprocessor.max_seq_length,
        None if bucket_by_length is True else bucket_by_length)
    steps = bucketing.steps_per_epoch(bucketing.example_lengths(examples),
                                      boundaries, batch_size)
    ds = bucketing.training_batches(examples, num_examples, boundaries,
                                    batch_size, seed)
  else:
    ds = features.batched(examples, num_examples, batch_size,
                          is_training=True, seed=seed, drop_remainder=True,
                          repeat=True, dynamic_padding=dynamic_padding)
  if trunk_states is not None:
    ds = trunk_cache.batches_from_states(ds, trunk_states)
  return ds.prefetch(tf.data.AUTOTUNE), steps


def evaluation_batches(texts_a, texts_b, labels, preprocessor, batch_size, *,
                       is_regression, pad, cut):
  """Batches of the texts in order: with `pad`, full batches (the last one
  padded with the first example, for an even replica split); with `cut`,
  each cut to its longest text."""
  ds = features.text_dataset(texts_a, texts_b, labels, preprocessor,
                             is_regression=is_regression,
                             batch_size=batch_size)
  if pad:
    ds = distribute.padded_batches(ds, len(texts_a), batch_size)
  return features.cut_padding(ds) if cut else ds
