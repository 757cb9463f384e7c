"""Multi-head attention whose score and context products are batched matmuls.

Keras computes them with `tf.einsum`. Transposing once and calling `tf.matmul`
gives bitwise the same numbers (tests/test_matmul_attention.py checks a real
MiniLM training step, dropout on) and, on this project's CPU, an adapter
training step 8 % less CPU time (benchmarks/attention_impl.py). It speeds up
the backbone for every fine-tuning mode alike; it is not part of the adapter
method."""

import math

import tensorflow as tf
import tf_keras

from keras_adapters import compat


@tf_keras.utils.register_keras_serializable(package="keras_adapters")
class MatmulAttention(tf_keras.layers.MultiHeadAttention):
  """`tf_keras.layers.MultiHeadAttention`, with BERT's self-attention
  (inputs [batch, length, heads, size], attention over the length axis)
  computed by `tf.matmul`. Other layouts use the parent's einsums.

  Example:

  >>> import tensorflow as tf
  >>> x = tf.random.normal([2, 5, 16])
  >>> fast = MatmulAttention(num_heads=2, key_dim=8)
  >>> slow = tf_keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)
  >>> _ = fast(x, x), slow(x, x)
  >>> slow.set_weights(fast.get_weights())
  >>> bool(tf.reduce_all(fast(x, x) == slow(x, x)))
  True
  """

  # Overrides the parent's private hook (compat.check_attention_hook).
  def _compute_attention(self, query, key, value, attention_mask=None,
                         training=None):
    if query.shape.rank != 4 or tuple(compat.attention_axes(self)) != (1,):
      return compat.einsum_attention(self, query, key, value, attention_mask,
                                     training)
    # As in the parent: scale the query, softmax, dropout on the scores.
    query = tf.multiply(
        query, 1.0 / math.sqrt(float(compat.attention_key_dim(self))))
    heads_first = lambda x: tf.transpose(x, [0, 2, 1, 3])  # [B, N, T, H]
    scores = tf.matmul(heads_first(query), heads_first(key), transpose_b=True)
    scores = compat.masked_softmax(self, scores, attention_mask)
    dropped = compat.attention_scores_dropout(self)(scores, training=training)
    return heads_first(tf.matmul(dropped, heads_first(value))), scores


def use_matmul_attention(encoder):
  """Switches the self-attention of every block of a built Model Garden
  encoder to `MatmulAttention` in place (same weights, same outputs) and
  returns the encoder. Blocks with another attention class are left alone."""
  compat.check_attention_hook()
  for block in getattr(encoder, "transformer_layers", []):
    attention = compat.self_attention(block)
    if type(attention) is tf_keras.layers.MultiHeadAttention:  # pylint: disable=unidiomatic-typecheck
      attention.__class__ = MatmulAttention
  return encoder
