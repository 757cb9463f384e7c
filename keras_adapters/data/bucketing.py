"""Length-bucketed training batches (`--bucket_by_length`).

Each example goes to the first bucket whose boundary is >= its length in
wordpieces (with [CLS]/[SEP]); a batch holds one bucket's examples and is cut
to that bucket's boundary. So a run pads little and sees one shape per
bucket: XLA (`--jit_compile`) and TPUs compile once per bucket, not once per
batch as with `--dynamic_padding`.

Every pass over the data is reshuffled (from the seed) and feeds each example
exactly once. A bucket's last batch of a pass is topped up to the full batch
size with copies of its first example at sample weight 0, so every batch has
the static global batch size (an even split over replicas, TPU-ready) and
adds nothing of the copies to the loss or metrics.

`--group_by_length` (`grouped_batches`) is the CPU/GPU alternative, as
transformers' Trainer groups: sorted groups of 50 batches, each batch cut to
its longest example, no top-ups. It pads least, but every batch length is a
shape of its own.

TensorFlow is imported by the pipeline functions only, so the driver checks
--bucket_boundaries before it loads.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from keras_adapters.errors import UserInputError

NUM_DEFAULT_BUCKETS = 4


def boundaries_for(max_seq_length: int,
                   boundaries: Optional[Sequence[int]] = None) -> list:
  """The bucket boundaries: `boundaries` checked (max_seq_length appended if
  they stop short of it), or by default 4 equal widths rounded up to a
  multiple of 8 (max_seq_length 128: 32, 64, 96, 128)."""
  if not boundaries:
    width = max_seq_length / NUM_DEFAULT_BUCKETS
    return sorted({min(max_seq_length, math.ceil(width * i / 8) * 8)
                   for i in range(1, NUM_DEFAULT_BUCKETS + 1)})
  values = [int(b) for b in boundaries]
  if (any(b < 1 for b in values) or values != sorted(set(values))
      or values[-1] > max_seq_length):
    raise UserInputError(
        f"--bucket_boundaries {','.join(map(str, boundaries))}: give "
        f"increasing lengths between 1 and --max_seq_length={max_seq_length}")
  return values if values[-1] == max_seq_length else values + [max_seq_length]


def steps_per_epoch(lengths, boundaries: Sequence[int], batch_size: int) -> int:
  """Batches per pass: each bucket's examples in batches, the last one
  topped up (so the count does not depend on the order)."""
  buckets = np.searchsorted(np.asarray(boundaries), np.asarray(lengths),
                            side="left")
  counts = np.bincount(buckets, minlength=len(boundaries))
  return int(sum(math.ceil(c / batch_size) for c in counts))


def example_lengths(examples: tf.data.Dataset) -> np.ndarray:
  """Wordpieces (mask sum) of every example of an unbatched
  `(features, label)` dataset, in order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  lengths = examples.map(lambda f, y: tf.reduce_sum(f["input_mask"]))
  return np.concatenate([b.numpy() for b in lengths.batch(4096)])


def training_batches(examples: tf.data.Dataset, num_examples: int,
                     boundaries: Sequence[int], batch_size: int,
                     seed: Optional[int]) -> tf.data.Dataset:
  """The repeated `(features, labels, sample_weights)` batches of `fit`:
  reshuffled each pass with `seed`, grouped by bucket
  (`tf.data.Dataset.group_by_window`), topped up and cut to the boundary."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  edges = tf.constant(boundaries, tf.int32)

  def bucket_of(length):
    return tf.searchsorted(edges, tf.reshape(length, [1]), side="left")[0]

  def key(features, label):
    del label
    return tf.cast(bucket_of(tf.reduce_sum(features["input_mask"])), tf.int64)

  def top_up_and_cut(features, labels):  # labels: a tensor or a tuple
    size = tf.shape(features["input_mask"])[0]
    missing = batch_size - size
    fill = lambda t: tf.concat(
        [t, tf.repeat(t[:1], missing, axis=0)], axis=0)
    longest = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
    boundary = tf.gather(edges, bucket_of(longest))
    cut = {k: tf.ensure_shape(fill(v)[:, :boundary], [batch_size, None])
           if v.shape.rank == 2 else tf.ensure_shape(fill(v), [batch_size])
           for k, v in features.items()}
    weights = tf.concat([tf.ones([size], tf.float32),
                         tf.zeros([missing], tf.float32)], axis=0)
    labels = tf.nest.map_structure(
        lambda t: tf.ensure_shape(fill(t), [batch_size]), labels)
    return cut, labels, tf.ensure_shape(weights, [batch_size])

  ds = examples.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
  ds = ds.group_by_window(key, lambda _, window: window.batch(batch_size),
                          window_size=batch_size)
  return ds.map(top_up_and_cut).repeat()


MEGABATCH = 50  # batches per sorted group, as transformers' LengthGroupedSampler


def grouped_batches(examples: tf.data.Dataset, num_examples: int,
                    batch_size: int, seed: Optional[int]) -> tf.data.Dataset:
  """The repeated `(features, labels)` batches of `fit` with
  `--group_by_length`, as transformers' LengthGroupedSampler makes them: each
  pass reshuffled with `seed` and cut into groups of MEGABATCH batches, each
  group sorted longest first and split into batches, each batch cut to its
  longest example. The pass's last partial batch is dropped (its shortest
  examples). Batch lengths vary freely: for CPUs and GPUs, not TPUs or XLA."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras_adapters.data import features as features_lib  # pylint: disable=g-import-not-at-top

  def longest_first(features, labels):  # labels: a tensor or a tuple
    order = tf.argsort(tf.reduce_sum(features["input_mask"], axis=1),
                       direction="DESCENDING", stable=True)
    return tf.nest.map_structure(lambda t: tf.gather(t, order),
                                 (features, labels))

  ds = examples.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
  ds = ds.batch(batch_size * MEGABATCH).map(longest_first).unbatch()
  ds = ds.batch(batch_size, drop_remainder=True)
  return features_lib.cut_padding(ds, multiple=1).repeat()
