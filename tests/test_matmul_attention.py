"""MatmulAttention: bitwise the numbers of Keras' einsum attention."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models

from harness import GLUE_DIR
from harness import assert_all_equal
from harness import minilm
from harness import run_saved_model_test
from harness import tiny_encoder
from keras_adapters.config import FINE_TUNE_MODES
from keras_adapters.models import tuning
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.data import glue
from keras_adapters.data.features import make_dataset
from keras_adapters.layers.matmul_attention import MatmulAttention
from keras_adapters.layers.matmul_attention import use_matmul_attention
from keras_adapters.loaders.pretrained import load_pretrained
from keras_adapters.networks.adapter_bert_encoder import add_adapters


def _pair(**kwargs):
  """A MatmulAttention and a Keras MultiHeadAttention of the same shape."""
  fast = MatmulAttention(**kwargs)
  slow = tf_keras.layers.MultiHeadAttention(**kwargs)
  return fast, slow


def _grads(layer, x, mask, training):
  with tf.GradientTape() as tape:
    tape.watch(x)
    out, scores = layer(x, x, attention_mask=mask, training=training,
                        return_attention_scores=True)
    loss = tf.reduce_sum(out * out)
  return [out, scores] + tape.gradient(loss, [x] + layer.trainable_variables)


def test_same_outputs_scores_and_gradients_as_keras():
  x = tf.random.stateless_normal([3, 7, 16], seed=[0, 1])
  mask = tf.sequence_mask([7, 4, 2], 7)[:, None, :] & tf.ones([3, 7, 1], bool)
  fast, slow = _pair(num_heads=4, key_dim=4)
  fast(x, x), slow(x, x)
  slow.set_weights(fast.get_weights())
  assert_all_equal(_grads(fast, x, mask, False), _grads(slow, x, mask, False))
  graph = tf.function(lambda x: fast(x, x)).get_concrete_function(x).graph
  ops = [op.type for op in graph.get_operations()]
  # Einsums only in the query/key/value/output projections: the fast path ran.
  assert ops.count("Einsum") == 4 and ops.count("BatchMatMulV2") == 2


def test_under_xla_matches_keras():
  # XLA may fuse differently from the eager kernels, so compare within float32
  # rounding, against Keras' layer compiled the same way.
  x = tf.random.stateless_normal([3, 7, 16], seed=[4, 1])
  mask = tf.sequence_mask([7, 4, 2], 7)[:, None, :] & tf.ones([3, 7, 1], bool)
  fast, slow = _pair(num_heads=4, key_dim=4)
  fast(x, x), slow(x, x)
  slow.set_weights(fast.get_weights())
  compiled = [tf.function(lambda x, layer=layer: _grads(layer, x, mask, False),
                          jit_compile=True)(x) for layer in (fast, slow)]
  for got, want in zip(*compiled):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_same_dropout_masks_from_generators():
  x = tf.random.stateless_normal([2, 9, 16], seed=[2, 1])
  tf_keras.backend.experimental.enable_tf_random_generator()
  try:
    outs = []
    for cls in (MatmulAttention, tf_keras.layers.MultiHeadAttention):
      tf_keras.utils.set_random_seed(5)
      layer = cls(num_heads=2, key_dim=8, dropout=0.3)
      outs.append(_grads(layer, x, None, True))
    fast_out, slow_out = outs
  finally:
    tf_keras.backend.experimental.disable_tf_random_generator()
  # The same masks: equal up to float32 rounding (a few ulp when oneDNN
  # picks another blocking on a busy machine); another mask would move
  # outputs by ~1e-1.
  for fast, slow in zip(fast_out, slow_out):
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6)
  assert np.abs(fast_out[0] - _grads(layer, x, None, False)[0]).max() > 1e-2


def test_other_attention_axes_use_the_parent_einsums():
  x = tf.random.stateless_normal([2, 3, 5, 8], seed=[1, 1])
  fast, slow = _pair(num_heads=2, key_dim=4, attention_axes=(1, 2))
  fast(x, x), slow(x, x)
  slow.set_weights(fast.get_weights())
  assert_all_equal(fast(x, x), slow(x, x))


@pytest.mark.large  # a fresh process
def test_config_round_trip_and_saved_model():
  x = tf.random.stateless_normal([2, 5, 16], seed=[3, 1])
  layer = MatmulAttention(num_heads=2, key_dim=8)
  output = layer(x, x)
  # Not harness.run_layer_test: Keras' own MultiHeadAttention adds its input
  # shapes to get_config once built, so configs never compare equal.
  serialized = tf_keras.layers.serialize(layer)
  assert serialized["registered_name"] == "keras_adapters>MatmulAttention"
  for clone in (MatmulAttention.from_config(layer.get_config()),
                tf_keras.layers.deserialize(serialized)):
    assert type(clone) is MatmulAttention
    clone(x, x)
    clone.set_weights(layer.get_weights())
    assert_all_equal(clone(x, x), output)
  inputs = tf_keras.Input((5, 16))
  model = tf_keras.Model(inputs, layer(inputs, inputs))
  assert "MatmulAttention" in run_saved_model_test(model, x)  # not a stub


def _tiny_encoder():
  return tiny_encoder(vocab_size=60, hidden_size=16, inner_dim=32,
                      max_sequence_length=16, seed=0)


@pytest.mark.parametrize("mode", FINE_TUNE_MODES)
def test_every_fine_tune_mode_gets_it(mode):
  fused = [4, 4] if mode == "fusion" else []
  _, encoder = build_classifier(_tiny_encoder(), 2, mode, adapter_size=4,
                                fused_adapter_sizes=fused)
  assert [type(b._attention_layer) for b in encoder.transformer_layers] == [
      MatmulAttention] * 2


@pytest.mark.large
def test_real_minilm_adapter_training_step_is_unchanged():
  """Loss, logits and every gradient of a dropout-on training step of the
  real all-MiniLM-L6-v2 with adapters, as `--deterministic` runs train:
  the same up to float32 rounding. Usually bit for bit; on a busy machine
  oneDNN may pick another blocking (measured: gradients up to 1.6e-9
  apart, at values ~1e-4). Other dropout masks would differ by orders of
  magnitude more."""
  _, vocab_file, lower = minilm()
  processor = glue.get_processor("MRPC")
  examples = processor.get_examples(str(GLUE_DIR / "MRPC"), "train")[:4]
  x, y = next(iter(make_dataset(
      examples, vocab_file=vocab_file, do_lower_case=lower, max_seq_length=64,
      label_list=processor.labels, is_regression=False, batch_size=4,
      is_training=False)))
  results = []
  tf_keras.backend.experimental.enable_tf_random_generator()
  try:
    for fast in (False, True):
      tf_keras.utils.set_random_seed(3)
      encoder = add_adapters(load_pretrained().encoder, adapter_size=64)
      if fast:
        use_matmul_attention(encoder)
      model = models.BertClassifier(  # as build_classifier, minus the swap
          encoder, num_classes=2,
          initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
      with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(
            tf_keras.losses.sparse_categorical_crossentropy(y, logits, True))
      grads = tape.gradient(loss, model.trainable_variables)
      results.append([loss, logits] + [tf.convert_to_tensor(g) for g in grads])
  finally:
    tf_keras.backend.experimental.disable_tf_random_generator()
  assert len(results[1]) == len(results[0])
  for fast, slow in zip(results[1], results[0]):
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-4,
                               atol=1e-7)
